"""One Optuna trial: sample the space, train with `seqops.model.training.fit`, prune, track.

Each trial is a nested MLflow run under the study's parent run, with the sampled params
(dotted names), the per-epoch validation metrics and its final state as the tag
`optuna.trial.state` (COMPLETE, PRUNED or FAIL), so the MLflow UI compares trials. A pruned
trial's run ends KILLED (stopped before its epochs were done, not FINISHED) with the epoch
and the reason as the tags `seqops.pruned_at_epoch` and `seqops.pruned_reason`.
"""

from __future__ import annotations

import math
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import mlflow
import numpy as np
import optuna
from optuna.trial import TrialState
from optuna_integration import PyTorchLightningPruningCallback

from seqops.config import Config, replaced
from seqops.data.sequences import SequenceSet
from seqops.data.splits import stratified_folds
from seqops.layout import split_file
from seqops.model.training import fit
from seqops.tuning.study import WORKER_ATTR, suggest, trial_base, worker_id

#: MLflow run status for each final trial state: a pruned trial was stopped before its
#: epochs were done, so its run does not read as a finished one in the MLflow UI.
RUN_STATUS = {
    TrialState.COMPLETE: "FINISHED",
    TrialState.PRUNED: "KILLED",
    TrialState.FAIL: "FAILED",
}

#: Tags of a pruned trial's run: the epoch whose value pruned it, and why.
PRUNED_AT_EPOCH = "seqops.pruned_at_epoch"
PRUNED_REASON = "seqops.pruned_reason"

#: What each pruner compared the trial's value with (`tune.pruner`).
_PRUNER_RULE = {
    "median": "worse than the median of the earlier trials at that epoch",
    "successive_halving": "not among the best trials that reached that rung",
    "hyperband": "not among the best trials of its bracket at that rung",
}


def trial_config(cfg: Config, params: dict[str, Any]) -> Config:
    """The capped base config with the sampled dotted paths replaced, validated again."""
    return replaced(trial_base(cfg), params, "trial params")


def best_value(history: list[dict[str, float]], metric: str, direction: str) -> float:
    values = [row[metric] for row in history if metric in row and math.isfinite(row[metric])]
    if not values:
        raise RuntimeError(f"{metric!r} was never logged with a finite value")
    return min(values) if direction == "minimize" else max(values)


def pruned_tags(pruner: str, metric: str, epoch: int, value: float | None) -> dict[str, str]:
    """The MLflow tags of a trial `pruner` stopped after `epoch` on `metric` = `value`."""
    rule = _PRUNER_RULE.get(pruner, "judged not worth finishing")
    shown = "(not logged)" if value is None else f"{value:.4g}"
    return {
        PRUNED_AT_EPOCH: str(epoch),
        PRUNED_REASON: f"{pruner} pruner: {metric} {shown} at epoch {epoch} was {rule}",
    }


def write_folds(processed: Path, out: Path, folds: int, seed: int) -> list[Path]:
    """`folds` copies of the processed directory whose train / val splits are the seeded
    stratified folds of train + val pooled (test and metadata unchanged)."""
    pooled = SequenceSet.concat(
        [SequenceSet.load(processed / split_file(name)) for name in ("train", "val")]
    )
    directories = []
    for i, held in enumerate(stratified_folds(pooled.labels, folds, seed)):
        directory = out / f"fold-{i}"
        shutil.copytree(processed, directory)
        kept = np.setdiff1d(np.arange(len(pooled)), held)
        pooled.subset(kept).save(directory / split_file("train"))
        pooled.subset(held).save(directory / split_file("val"))
        directories.append(directory)
    return directories


class ValMetricsLogger(pl.Callback):
    """Logs `val/*` to the active MLflow run at each validation end, before the pruner can stop
    the trial, so a pruned trial's curve includes the epoch that pruned it. `epochs` counts
    the epochs the trial trained, the cost the tuning benchmark compares; `last` holds the
    latest epoch's `val/*` values (what the pruner judged)."""

    def __init__(self) -> None:
        self.epochs = 0
        self.last: dict[str, float] = {}

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        self.epochs = trainer.current_epoch + 1
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val/")}
        self.last = metrics
        if mlflow.active_run() is None:
            return
        mlflow.log_metrics(metrics, step=trainer.current_epoch)


@dataclass
class Objective:
    """Picklable objective: one instance per worker process."""

    cfg: Config
    processed: Path
    parent_run_id: str | None
    experiment_id: str | None = None

    def __call__(self, trial: optuna.Trial) -> float:
        trial.set_user_attr(WORKER_ATTR, worker_id())
        params = suggest(trial, self.cfg.tune.space)
        cfg = trial_config(self.cfg, params)
        run = self._start_run(trial, params)
        state = TrialState.FAIL
        tags: dict[str, str] = {}
        val_logger = ValMetricsLogger()
        later_folds_epochs: list[int] = []
        try:
            with tempfile.TemporaryDirectory(prefix="seqops-trial-") as tmp:
                values = self._fold_values(trial, cfg, Path(tmp), val_logger, later_folds_epochs)
            value = float(np.mean(values))
            state = TrialState.COMPLETE
            if run:
                mlflow.log_metric("trial/value", value)
            return value
        except optuna.TrialPruned:
            state = TrialState.PRUNED
            metric = self.cfg.tune.metric
            epoch = val_logger.epochs - 1  # the pruner judged the epoch that just ended
            tags = pruned_tags(self.cfg.tune.pruner, metric, epoch, val_logger.last.get(metric))
            raise
        finally:
            trial.set_user_attr("epochs", val_logger.epochs + sum(later_folds_epochs))
            if run:
                mlflow.set_tags({"optuna.trial.state": state.name, **tags})
                mlflow.end_run(status=RUN_STATUS[state])

    def _fold_values(
        self,
        trial: optuna.Trial,
        cfg: Config,
        tmp: Path,
        val_logger: ValMetricsLogger,
        later_folds_epochs: list[int],
    ) -> list[float]:
        """The trial's best `tune.metric`: on the validation split, or one per fold
        (`tune.folds`). The pruner and the per-epoch MLflow curve follow the first fold."""
        tune = self.cfg.tune
        if tune.folds == 1:
            directories = [self.processed]
        else:
            directories = write_folds(self.processed, tmp / "folds", tune.folds, cfg.seed)
        values = []
        for i, directory in enumerate(directories):
            callbacks: list[pl.Callback] = []
            if i == 0:
                pruning = PyTorchLightningPruningCallback(trial, monitor=tune.metric)
                callbacks = [val_logger, pruning]
            result = fit(cfg, directory, tmp / f"checkpoints-{i}", callbacks=callbacks,
                         progress_bar=False)  # fmt: skip
            values.append(best_value(result.history, tune.metric, tune.goal))
            if i > 0:
                later_folds_epochs.append(result.epochs_run)
        if tune.folds > 1:
            trial.set_user_attr("fold_values", values)
            if mlflow.active_run() is not None:
                mlflow.log_metrics({f"trial/fold_{i}": v for i, v in enumerate(values)})
        return values

    def _start_run(self, trial: optuna.Trial, params: dict[str, Any]) -> bool:
        if self.parent_run_id is None:
            return False
        mlflow.start_run(
            experiment_id=self.experiment_id,
            run_name=f"trial-{trial.number}",
            # In the coordinating process the parent run is active; in a worker it is not.
            nested=mlflow.active_run() is not None,
            parent_run_id=self.parent_run_id,
            tags={
                "seqops.stage": "tune",
                "optuna.study": trial.study.study_name,
                "optuna.trial.number": str(trial.number),
            },
        )
        mlflow.log_params(params)
        return True
