"""The Optuna study of the tune stage: its name, storage, sampler, pruner and crash recovery.

    study = open_study(cfg, storage_spec(cfg.tune, root, name), name)

The study name is a digest of everything that makes trial values comparable (search space,
the capped per-trial base config, metric, data hash, seed), so a changed search never mixes
with an old one while a rerun of the same search resumes it. The default storage is a journal
file under `optuna/` (append-only, so a SIGKILL loses at most the running trial); a URL selects
an RDB that workers on several machines share.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import BaseStorage, JournalStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock
from optuna.trial import TrialState

from seqops import credentials
from seqops.config import Choice, Config, FloatRange, IntRange, TuneConfig
from seqops.errors import ConfigError, SeqopsError
from seqops.tracking import process_alive

#: Exceptions that fail one trial (recorded as FAIL) instead of the whole search.
TRIAL_ERRORS = (RuntimeError, ValueError, FloatingPointError)

#: Trials that count against `tune.n_trials`; FAIL ones (crashes, kills) are re-run.
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
#: User attribute naming the process that runs a trial, to fail it after a crash.
WORKER_ATTR = "seqops.worker"
PARENT_RUN_ATTR = "mlflow.parent_run_id"
#: How long a RUNNING trial may lack its worker tag before it counts as orphaned.
OWNERLESS_GRACE = timedelta(seconds=60)


#: What every trial trains on: one process (trials are small and run side by side with
#: `--workers`; DDP would re-launch the tuner's command line for each rank).
TRIAL_DEVICE = {"devices": 1, "strategy": "auto"}


@dataclass(frozen=True)
class Job:
    """What a worker process needs to work on the study: picklable, opened again there."""

    cfg: Config
    processed: Path
    storage: str
    study_name: str
    n_trials: int
    worker: int = 0
    threads: int = 0
    tracking_uri: str | None = None
    parent_run_id: str | None = None
    experiment_id: str | None = None


def trial_base(cfg: Config) -> Config:
    """The config every trial starts from: `train.max_epochs` capped by `tune.max_epochs`, on
    one device (`TRIAL_DEVICE`) with one intra-op thread per worker (`train.threads: 0` keeps
    PyTorch's default, one per core)."""
    update: dict[str, Any] = {**TRIAL_DEVICE, "threads": min(cfg.train.threads, 1)}
    cap = cfg.tune.max_epochs
    if cap is not None and cap < cfg.train.max_epochs:
        update["max_epochs"] = cap
    return cfg.model_copy(update={"train": cfg.train.model_copy(update=update)})


def suggest(
    trial: optuna.Trial, space: dict[str, IntRange | FloatRange | Choice]
) -> dict[str, Any]:
    """Sample one value per dotted path of the search space.

    A choice with conditional dimensions (`Choice.when`) is drawn first; the dimensions of
    the drawn choice's branch are then sampled in place of the top-level ones of the same
    path, under their own Optuna names (`branch_name`), so a path's distribution never
    differs between trials. A space without `when` samples exactly as it always has."""
    params: dict[str, Any] = {}
    branch: dict[str, tuple[str, IntRange | FloatRange | Choice]] = {}
    for path, dim in space.items():
        if isinstance(dim, Choice) and dim.when:
            params[path] = _suggest_one(trial, path, dim)
            for sub, sub_dim in dim.when.get(str(params[path]), {}).items():
                branch[sub] = (branch_name(path, params[path], sub), sub_dim)
    for path, dim in space.items():
        if path not in params and path not in branch:
            params[path] = _suggest_one(trial, path, dim)
    for path, (name, dim) in branch.items():
        params[path] = _suggest_one(trial, name, dim)
    return params


def branch_name(path: str, choice: object, sub: str) -> str:
    """The Optuna name of the conditional dimension `sub` sampled when `path` drew `choice`."""
    return f"{path}={choice}/{sub}"


def dotted_params(params: dict[str, Any]) -> dict[str, Any]:
    """A trial's Optuna params as dotted config paths (a branch's own names resolved)."""
    return {name.rpartition("/")[2]: value for name, value in params.items()}


def _suggest_one(trial: optuna.Trial, name: str, dim: IntRange | FloatRange | Choice) -> Any:
    if isinstance(dim, Choice):
        return trial.suggest_categorical(name, dim.choices)
    if isinstance(dim, IntRange):
        return trial.suggest_int(name, dim.low, dim.high, step=dim.step, log=dim.log)
    return trial.suggest_float(name, dim.low, dim.high, step=dim.step, log=dim.log)


def single_device_note(cfg: Config) -> str | None:
    """What the tuner says when `train` asks for several devices: trials run on one."""
    train = cfg.train
    if train.devices in (1, "1") and not train.strategy.startswith("ddp"):
        return None
    return (
        f"tune: train.devices={train.devices} / train.strategy={train.strategy!r} apply to the "
        "train stage only; each trial runs in one process on one device"
    )


def study_name(cfg: Config, data_hash: str) -> str:
    """`seqops-<12 hex>`: equal for a rerun of the same search, different for any other."""
    base = trial_base(cfg).model_dump(mode="json", include={"model", "train"})
    searched = set(cfg.tune.space)
    fixed = {
        f"{section}.{key}": value
        for section, values in base.items()
        for key, value in values.items()
        if f"{section}.{key}" not in searched
    }
    identity = {
        "space": {k: v.model_dump(mode="json") for k, v in sorted(cfg.tune.space.items())},
        "fixed": fixed,
        "metric": cfg.tune.metric,
        "direction": cfg.tune.goal,
        "data": data_hash,
        "seed": cfg.seed,
    }
    if cfg.tune.folds > 1:  # another objective: a study scored on one split is not reused
        identity["folds"] = cfg.tune.folds
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()
    return f"seqops-{digest[:12]}"


def storage_spec(tune: TuneConfig, root: Path, name: str) -> str:
    """A string each worker process can open: an RDB URL or an absolute journal file path.

    The URL comes from `tune.storage` or from the environment variable `tune.storage_env`
    names; show it only through `credentials.mask`."""
    storage = tune.storage
    if tune.storage_env is not None:
        storage = os.environ.get(tune.storage_env)
        if not storage:
            raise ConfigError(
                f"tune.storage_env = {tune.storage_env!r}: the environment variable "
                f"{tune.storage_env} is not set (expected the Optuna storage URL)"
            )
    if storage is None:
        return str((root / "optuna" / f"{name}.journal").resolve())
    if "://" in storage:
        return credentials.rdb_url(storage)
    return str((root / storage).resolve())


def open_storage(spec: str) -> BaseStorage:
    """The study's storage; an unreachable database is one `SeqopsError` naming host:port."""
    if "://" in spec:
        from sqlalchemy.exc import OperationalError

        try:
            # Heartbeats let any worker fail a trial whose process died on another machine.
            return RDBStorage(spec, heartbeat_interval=10, grace_period=30)
        except OperationalError as exc:
            message = credentials.connection_error("tune.storage", spec, exc.orig)
            raise SeqopsError(message) from None
        except ImportError as exc:
            raise SeqopsError(
                f"tune.storage = {credentials.mask(spec)!r}: its database driver is not "
                f"installed ({exc}); for PostgreSQL: pip install 'seqops[postgres]'"
            ) from None
    path = Path(spec)
    path.parent.mkdir(parents=True, exist_ok=True)
    # The open(2)-based lock works on every filesystem (the symlink lock does not on some).
    return JournalStorage(JournalFileBackend(str(path), lock_obj=JournalFileOpenLock(str(path))))


def sampler(tune: TuneConfig, seed: int) -> optuna.samplers.BaseSampler:
    # constant_liar keeps parallel workers from sampling the same point while trials run.
    return optuna.samplers.TPESampler(
        seed=seed, n_startup_trials=tune.startup_trials, constant_liar=True
    )


def pruner(tune: TuneConfig, max_epochs: int) -> optuna.pruners.BasePruner:
    warmup = tune.pruner_warmup_epochs
    if tune.pruner == "median":
        return optuna.pruners.MedianPruner(
            n_startup_trials=tune.pruner_startup_trials, n_warmup_steps=warmup
        )
    if tune.pruner == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=max(1, warmup))
    if tune.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=max(1, warmup), max_resource=max_epochs)
    return optuna.pruners.NopPruner()


def open_study(cfg: Config, spec: str, name: str, worker: int = 0) -> optuna.Study:
    """Create or load the study; worker `i` seeds its sampler with `seed + i`."""
    return optuna.create_study(
        study_name=name,
        storage=open_storage(spec),
        direction=cfg.tune.goal,
        sampler=sampler(cfg.tune, cfg.seed + worker),
        pruner=pruner(cfg.tune, trial_base(cfg).train.max_epochs),
        load_if_exists=True,
    )


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def fail_orphans(study: optuna.Study) -> list[int]:
    """Mark RUNNING trials whose process on this host is gone as FAIL; returns their numbers.

    A SIGKILL leaves its trial RUNNING forever in a journal file (no heartbeat there); it
    did not finish, so it is failed and re-run instead of counting against the budget. A
    trial is created a moment before its worker tags it; one still untagged after
    `OWNERLESS_GRACE` was killed in that moment.
    """
    host = socket.gethostname()
    now = datetime.now()
    failed = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        owner: Any = trial.user_attrs.get(WORKER_ATTR)
        owner_host, _, pid = str(owner).rpartition(":")
        started = trial.datetime_start or now
        if (owner is None and now - started > OWNERLESS_GRACE) or (
            owner_host == host and pid.isdigit() and not process_alive(int(pid))
        ):
            study.tell(trial.number, state=TrialState.FAIL)
            failed.append(trial.number)
    return failed


def count(study: optuna.Study) -> dict[str, int]:
    trials = study.get_trials(deepcopy=False)
    states = {
        "complete": TrialState.COMPLETE,
        "pruned": TrialState.PRUNED,
        "failed": TrialState.FAIL,
        "running": TrialState.RUNNING,
    }
    out = {"n_trials": len(trials)}
    out.update({k: sum(t.state == s for t in trials) for k, s in states.items()})
    return out
