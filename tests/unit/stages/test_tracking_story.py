"""What MLflow is told about a pruned trial and where a training run's headline goes (a real
SQLite tracking store in a temp dir; no training: the trial's fit is stood in for)."""

from __future__ import annotations

from pathlib import Path

import mlflow
import optuna
import pytest

from seqops.config import parse_config
from seqops.model.training import FitResult
from seqops.stages.train import headline_step
from seqops.tuning import trial as trials


def test_the_headline_step_follows_the_last_epoch() -> None:
    history = [{"epoch": float(e), "val/loss": 1.0 / (e + 1)} for e in range(5)]
    result = FitResult(model=None, best_checkpoint=Path("x"), best_score=0.5, best_epoch=1,  # type: ignore[arg-type]
                       epochs_run=5, history=history)  # fmt: skip
    assert headline_step(result) == 5
    result.epochs_run = 3  # never onto or before an epoch the curve holds
    assert headline_step(result) == 5


def test_pruned_tags_name_the_epoch_the_value_and_the_rule() -> None:
    tags = trials.pruned_tags("median", "val/loss", 3, 0.123456)
    assert tags == {
        trials.PRUNED_AT_EPOCH: "3",
        trials.PRUNED_REASON: "median pruner: val/loss 0.1235 at epoch 3 was worse than the "
        "median of the earlier trials at that epoch",
    }


def test_a_pruned_trial_run_ends_killed_with_its_epoch_and_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = parse_config(
        {"tune": {"space": {"train.lr": {"type": "float", "low": 1e-3, "high": 1e-2}}}}, "test"
    )

    def pruned_at_epoch_2(self, trial, cfg, tmp, val_logger, later):  # type: ignore[no-untyped-def]
        val_logger.epochs, val_logger.last = 3, {"val/loss": 0.75, "val/accuracy": 0.5}
        raise optuna.TrialPruned("Trial was pruned at epoch 2.")

    def completes(self, trial, cfg, tmp, val_logger, later):  # type: ignore[no-untyped-def]
        val_logger.epochs = 4
        return [0.25]

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)  # restored afterwards, as is MLflow's own
    mlflow.set_tracking_uri(uri)
    try:
        experiment = mlflow.create_experiment("t")
        parent = mlflow.MlflowClient().create_run(experiment).info.run_id
        objective = trials.Objective(cfg, tmp_path, parent, experiment)
        study = optuna.create_study()
        monkeypatch.setattr(trials.Objective, "_fold_values", pruned_at_epoch_2)
        study.optimize(objective, n_trials=1)
        monkeypatch.setattr(trials.Objective, "_fold_values", completes)
        study.optimize(objective, n_trials=1)
        found = mlflow.search_runs([experiment], output_format="list")
    finally:
        mlflow.set_tracking_uri(None)  # type: ignore[arg-type]  # back to the environment
    runs = {r.data.tags.get("optuna.trial.state"): r for r in found}
    pruned, complete = runs["PRUNED"], runs["COMPLETE"]
    assert pruned.info.status == "KILLED"
    assert pruned.data.tags[trials.PRUNED_AT_EPOCH] == "2"
    assert pruned.data.tags[trials.PRUNED_REASON].startswith(
        "median pruner: val/loss 0.75 at epoch 2"
    )
    assert complete.info.status == "FINISHED"
    assert trials.PRUNED_AT_EPOCH not in complete.data.tags


def test_the_dataset_a_run_trained_on_is_found_again_by_its_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from seqops import tracking

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    try:
        with mlflow.start_run() as trained:
            tracking.log_dataset("data/raw/vowels.csv", "ab" * 32, "training", {"n_train": "9"})
        with mlflow.start_run() as bare:
            pass
        found = tracking.trained_on(trained.info.run_id)
        assert tracking.trained_on(bare.info.run_id) is None
    finally:
        mlflow.set_tracking_uri(None)  # type: ignore[arg-type]  # back to the environment
    assert (found.name, found.digest) == ("vowels.csv", "ab" * 8)
