"""The tune stage end to end on JapaneseVowels: outputs, nested MLflow runs, resume after SIGKILL.

Real Optuna journal files, a real MLflow SQLite store read back with MlflowClient, the real
`seqops` CLI in a temporary git + DVC project (see tests/conftest.py).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml
from mlflow.tracking import MlflowClient
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

from seqops.config import load_config
from seqops.tuning import choice
from tests.conftest import BIN, run, run_env, write_params

SEQOPS = str(BIN / "seqops")

#: A search that finishes in seconds: 2 dims, 3 epochs a trial, pruning from epoch 1.
TINY_TUNE: dict[str, Any] = {
    "n_trials": 4,
    "max_epochs": 3,
    "startup_trials": 2,
    "pruner": "median",
    "pruner_startup_trials": 1,
    "pruner_warmup_epochs": 1,
    "space": {
        "model.hidden_size": {"type": "int", "low": 4, "high": 16},
        "train.lr": {"type": "float", "low": 1e-3, "high": 3e-2, "log": True},
    },
}


def _params(project: Path, **tune: Any) -> None:
    write_params(project / "params.yaml", {"tune": {**TINY_TUNE, **tune}})


def _study(project: Path) -> optuna.Study:
    (journal,) = (project / "optuna").glob("*.journal")
    storage = JournalStorage(JournalFileBackend(str(journal)))
    return optuna.load_study(study_name=journal.stem, storage=storage)


@pytest.mark.slow
def test_tune_writes_best_params_report_plots_and_one_nested_run_per_trial(project: Path) -> None:
    _params(project)
    run([SEQOPS, "prepare"], project)
    run([SEQOPS, "tune"], project)

    report = json.loads((project / "reports" / "tune.json").read_text())
    study = _study(project)
    trials = study.get_trials()
    assert report["study"] == study.study_name
    assert report["n_trials"] == len(trials) == 4
    assert report["complete"] + report["pruned"] + report["failed"] == 4
    assert report["pruned"] > 0 and report["complete"] > 0
    assert (report["metric"], report["direction"]) == ("val/loss", "minimize")
    assert report["best_value"] == pytest.approx(study.best_value)
    assert report["epochs"] == sum(t.user_attrs["epochs"] for t in trials)

    best = yaml.safe_load((project / "models" / "best_params.yaml").read_text())
    assert best == study.best_params  # flat dotted paths of the space only
    names = ("history", "intermediate_values", "parallel_coordinates", "importance")
    for name in names:
        assert (project / "reports" / "plots" / "tune" / f"{name}.png").read_bytes()[:4] == (
            b"\x89PNG"
        )

    client = MlflowClient(f"sqlite:///{project / 'mlflow.db'}")
    parent = client.get_run(report["parent_run_id"])
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["optuna.study"] == study.study_name
    assert {a.path for a in client.list_artifacts(parent.info.run_id, "tune")} >= {
        "tune/tune.json",
        *(f"tune/{name}.png" for name in names),
        "tune/best_params.yaml",
    }
    children = client.search_runs(
        [parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'"
    )
    by_number = {int(r.data.tags["optuna.trial.number"]): r for r in children}
    assert sorted(by_number) == [t.number for t in trials]
    for trial in trials:
        child = by_number[trial.number]
        assert child.data.tags["optuna.trial.state"] == trial.state.name
        # A pruned trial was stopped before its epochs were done: not a FINISHED run.
        assert child.info.status == {"COMPLETE": "FINISHED", "PRUNED": "KILLED"}[trial.state.name]
        assert child.data.params == {k: str(v) for k, v in trial.params.items()}
        curve = client.get_metric_history(child.info.run_id, "val/loss")
        # One point per epoch trained, the pruning epoch included.
        assert [m.step for m in curve] == list(range(trial.user_attrs["epochs"]))
        last = max(trial.intermediate_values)
        assert curve[-1].value == pytest.approx(trial.intermediate_values[last])
        if trial.state == TrialState.COMPLETE:
            assert child.data.metrics["trial/value"] == pytest.approx(trial.value)

    # train merges the best params and points back at the study and its parent run.
    run([SEQOPS, "train"], project)
    run_id = json.loads((project / "models" / "run.json").read_text())["run_id"]
    trained = client.get_run(run_id)
    assert trained.data.tags["optuna.study"] == study.study_name
    assert trained.data.tags["optuna.parent_run_id"] == parent.info.run_id
    assert trained.data.params["model.hidden_size"] == str(best["model.hidden_size"])
    assert float(trained.data.params["train.lr"]) == pytest.approx(best["train.lr"])


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_sigkill_mid_study_then_rerun_keeps_finished_trials_and_runs_only_the_rest(
    project: Path, workers: int
) -> None:
    n_trials = 4  # killed once two finished, so the rerun tops up at least one
    _params(project, n_trials=n_trials, pruner="none", workers=workers)
    run([SEQOPS, "prepare"], project)
    proc = subprocess.Popen(
        [SEQOPS, "tune"],
        cwd=project,
        env=run_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, "tune finished before it could be killed"
            assert time.monotonic() < deadline, "no trial finished within 120 s"
            journals = list((project / "optuna").glob("*.journal"))
            if journals:
                trials = _study(project).get_trials(deepcopy=False)
                done = sum(t.state == TrialState.COMPLETE for t in trials)
                # Kill mid-training: the running trial has reported at least one epoch.
                if done >= 2 and any(
                    t.state == TrialState.RUNNING and t.intermediate_values for t in trials
                ):
                    break
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

    before = {t.number: t for t in _study(project).get_trials()}
    kept = {n: t for n, t in before.items() if t.state == TrialState.COMPLETE}
    killed = [n for n, t in before.items() if t.state == TrialState.RUNNING]
    assert killed and not (project / "reports" / "tune.json").exists()

    rerun = run([SEQOPS, "tune"], project)
    assert f"{len(kept)} finished trials kept, {len(killed)} orphaned marked failed" in rerun.stdout

    after = {t.number: t for t in _study(project).get_trials()}
    for number, trial in kept.items():  # untouched: same params, value and state
        assert after[number].params == trial.params
        assert after[number].value == trial.value
        assert after[number].state == TrialState.COMPLETE
    assert all(after[n].state == TrialState.FAIL for n in killed)
    finished = [t for t in after.values() if t.state == TrialState.COMPLETE]
    assert len(finished) == n_trials
    new = set(after) - set(before)
    assert len(new) == n_trials - len(kept) and min(new) > max(before)
    report = json.loads((project / "reports" / "tune.json").read_text())
    assert (report["complete"], report["failed"]) == (n_trials, len(killed))


def test_invalid_space_stops_the_cli_before_any_work(project: Path) -> None:
    _params(project, space={"model.hidden_size": {"type": "int", "low": 64, "high": 9000}})
    proc = run([SEQOPS, "tune"], project, check=False)
    assert proc.returncode == 2
    assert "tune.space.model.hidden_size: 9000 is not a valid model.hidden_size" in proc.stderr
    assert not (project / "optuna").exists() and not (project / "models").exists()


@pytest.mark.slow
def test_cross_validated_trials_score_the_mean_of_their_folds(project: Path) -> None:
    """`tune.folds: 3`: each finished trial trained on three folds of train + val, and its
    value is their mean (also in MLflow, with each fold's). The study's own identity is in
    tests/unit/stages/test_tune.py."""
    _params(project, n_trials=2, pruner="none", folds=3)
    run([SEQOPS, "prepare"], project)
    run([SEQOPS, "tune"], project)
    report = json.loads((project / "reports" / "tune.json").read_text())
    study = _study(project)
    assert study.study_name == report["study"]
    trials = study.get_trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 2
    client = MlflowClient(f"sqlite:///{project / 'mlflow.db'}")
    children = client.search_runs(
        [client.get_run(report["parent_run_id"]).info.experiment_id],
        f"tags.mlflow.parentRunId = '{report['parent_run_id']}'",
    )
    by_number = {int(r.data.tags["optuna.trial.number"]): r for r in children}
    for trial in trials:
        folds = trial.user_attrs["fold_values"]
        assert len(folds) == 3 and len(set(folds)) == 3  # three different trainings
        assert trial.value == pytest.approx(sum(folds) / 3)
        metrics = by_number[trial.number].data.metrics
        assert [metrics[f"trial/fold_{i}"] for i in range(3)] == pytest.approx(folds)
        assert metrics["trial/value"] == pytest.approx(trial.value)
        assert trial.user_attrs["epochs"] == 3 * 3  # every fold trains tune.max_epochs
    assert report["epochs"] == 2 * 3 * 3


@pytest.mark.slow
def test_a_chosen_value_is_cross_validated_before_the_search(
    project: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """`tune.choose`: each value trains on every fold before the search; the preferred one is
    in the report, the card's words and models/best_params.yaml (what train reads), and two
    workers choose exactly as one does. The rule itself is in tests/unit/test_choice.py."""
    choose = {"model.kernel_features": [0, 84]}
    _params(project, n_trials=1, pruner="none", choose=choose, choose_folds=2, workers=2)
    run([SEQOPS, "prepare"], project)
    printed = run([SEQOPS, "tune"], project).stdout
    report = json.loads((project / "reports" / "tune.json").read_text())
    row = report["choice"]["model.kernel_features"]
    assert row["folds"] == 2 and [c["value"] for c in row["candidates"]] == [0, 84]
    first, second = row["candidates"]
    assert first["fold_loss"] != second["fold_loss"]  # the kernel path changed the model
    best = max(row["candidates"], key=lambda c: (c["accuracy"], -c["loss"]))
    assert row["chosen"] == best["value"]
    best_params = yaml.safe_load((project / "models" / "best_params.yaml").read_text())
    assert best_params["model.kernel_features"] == row["chosen"]
    assert f"`model.kernel_features` = {row['chosen']}, chosen by 2-fold" in printed
    # The pool's two processes trained what one process trains, to the last bit.
    cfg = load_config(project / "params.yaml")
    work = tmp_path_factory.mktemp("serial")
    _, serial = choice.choose(cfg, project / "data" / "processed", work)
    assert serial == report["choice"]


@pytest.mark.slow
def test_two_workers_give_the_same_study_on_every_run(project: Path) -> None:
    """Rounds of two trials side by side: sampled before the round, pruned against earlier
    rounds only, so a rerun from scratch gives the same trials, values and best params."""
    _params(project, workers=2)
    run([SEQOPS, "prepare"], project)
    runs = []
    for _ in range(2):
        shutil.rmtree(project / "optuna", ignore_errors=True)
        run([SEQOPS, "tune"], project)
        trials = _study(project).get_trials()
        assert len({t.user_attrs["seqops.worker"] for t in trials}) == 2  # both processes
        best = (project / "models" / "best_params.yaml").read_text()
        runs.append(([(t.state, t.params, t.value, t.intermediate_values) for t in trials], best))
    assert runs[0] == runs[1]
    states = [state for state, *_ in runs[0][0]]
    assert len(states) == TINY_TUNE["n_trials"] and TrialState.RUNNING not in states
