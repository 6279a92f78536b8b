"""Trials side by side, deterministically: rounds of `tune.workers` trials on a process pool.

    with start_pool(2) as pool:                 # what `seqops tune` runs for tune.workers: 2
        run_rounds(job, pool, 2, setup_worker)

Free-running workers on one study give a different study on every run: what TPE samples and
what the median pruner compares with depend on which trial happened to finish first. Here the
coordinating process asks the sampler for a whole round (TPE's constant liar keeps the round's
trials apart) and fixes every sampled value before the round starts; each trial's pruner sees
only the trials of earlier rounds (`RoundPruner`). Each trial trains with the same seed and
one torch thread in a pool process started once, so the study (values, prunes, best params)
is the same on every run with the same worker count. (The hyperband pruner builds its own
bracket views of the study, which see round-mates: with it, rounds are not reproducible.)
"""

from __future__ import annotations

import multiprocessing as mp
import signal
import sys
import time
from collections.abc import Callable, Container
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from seqops.tuning import study as studies
from seqops.tuning.study import TRIAL_ERRORS, Job


class _EarlierRounds(optuna.study.Study):
    """A view of a study holding only the trials numbered below `first` (earlier rounds)."""

    def __init__(self, study: optuna.Study, first: int) -> None:
        super().__init__(
            study_name=study.study_name,
            storage=study._storage,
            sampler=study.sampler,
            pruner=study.pruner,
        )
        self._first = first

    def get_trials(
        self, deepcopy: bool = True, states: Container[TrialState] | None = None
    ) -> list[FrozenTrial]:
        trials = super()._get_trials(deepcopy=deepcopy, states=states)
        return [t for t in trials if t.number < self._first]


class RoundPruner(optuna.pruners.BasePruner):
    """`inner`, deciding from the trials of earlier rounds only (never a round-mate's curve,
    whose progress depends on timing). The trial's own reported values are unaffected."""

    def __init__(self, inner: optuna.pruners.BasePruner, first: int) -> None:
        self.inner = inner
        self.first = first

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        return self.inner.prune(_EarlierRounds(study, self.first), trial)


#: Per pool process: the study and objective of the job it works on (opened on first use).
_WORKER: dict[str, Any] = {}


def _warm() -> None:
    """Pool initializer: die with the coordinator (a killed `seqops tune` leaves no orphan
    training on), then import what a trial trains with while the coordinator sets up."""
    if sys.platform == "linux":
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None).prctl(pr_set_pdeathsig, signal.SIGKILL)
    import seqops.tuning.trial  # noqa: F401  (torch, Lightning, MLflow)


def _open(job: Job, setup: Callable[[Job], None]) -> None:
    from seqops.tuning.trial import Objective

    setup(job)
    study = studies.open_study(job.cfg, job.storage, job.study_name)
    _WORKER.update(
        job=job,
        study=study,
        pruner=study.pruner,
        objective=Objective(job.cfg, job.processed, job.parent_run_id, job.experiment_id),
    )


def _run_trial(job: Job, setup: Callable[[Job], None], trial_id: int, first: int) -> str:
    """Train one asked trial in this pool process and tell its outcome; returns its state."""
    if _WORKER.get("job") != job:
        _open(job, setup)
    study: optuna.Study = _WORKER["study"]
    study.pruner = RoundPruner(_WORKER["pruner"], first)
    trial = optuna.trial.Trial(study, trial_id)
    try:
        value = _WORKER["objective"](trial)
    except optuna.TrialPruned:
        study.tell(trial, state=TrialState.PRUNED)
        return TrialState.PRUNED.name
    except TRIAL_ERRORS as exc:
        print(f"tune: trial {trial.number} failed: {type(exc).__name__}: {exc}")
        study.tell(trial, state=TrialState.FAIL)
        return TrialState.FAIL.name
    study.tell(trial, value)
    return TrialState.COMPLETE.name


def start_pool(workers: int) -> Any:
    """`workers` spawned processes (fork would copy torch's thread pools and MLflow clients)
    that start importing torch and Lightning at once: open it before the coordinator's own
    set-up so that the two overlap. Use it as a context manager."""
    return mp.get_context("spawn").Pool(workers, initializer=_warm)


def run_rounds(
    job: Job,
    pool: Any,
    workers: int,
    setup: Callable[[Job], None],
    on_round: Callable[[int], None] | None = None,
) -> None:
    """Run `job.n_trials` trials in rounds of `workers` on `pool` (from `start_pool`).
    `setup(job)` runs first in each process (threads, logging, tracking URI); `on_round(n)`
    after each round."""
    cfg = job.cfg
    study = studies.open_study(cfg, job.storage, job.study_name)
    deadline = None if cfg.tune.timeout_s is None else time.monotonic() + cfg.tune.timeout_s
    remaining = job.n_trials
    while remaining > 0 and (deadline is None or time.monotonic() < deadline):
        finished = sum(1 for t in study.get_trials(deepcopy=False) if t.state in studies.FINISHED)
        budget = cfg.tune.n_trials - finished  # workers elsewhere share the study
        size = min(workers, remaining, budget)
        if size <= 0:
            break
        asked = [study.ask() for _ in range(size)]
        for trial in asked:
            # Owned by this process until a pool process takes it (a kill in between leaves
            # it to `fail_orphans`); every sampled value is fixed now: the pool only trains.
            trial.set_user_attr(studies.WORKER_ATTR, studies.worker_id())
            studies.suggest(trial, cfg.tune.space)
        first = asked[0].number
        tasks = [(job, setup, t._trial_id, first) for t in asked]
        pool.starmap(_run_trial, tasks, chunksize=1)
        remaining -= size
        if on_round:
            on_round(size)
