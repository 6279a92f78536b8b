"""One Optuna trial: sample the space, train with `seqops.model.training.fit`, prune, track.

Each trial is a nested MLflow run under the study's parent run, with the sampled params
(dotted names), the per-epoch validation metrics and its final state as the tag
`optuna.trial.state` (COMPLETE, PRUNED or FAIL), so the MLflow UI compares trials.
"""

from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import mlflow
import optuna
from optuna.trial import TrialState
from optuna_integration import PyTorchLightningPruningCallback

from seqops.config import Choice, Config, FloatRange, IntRange, apply_overrides, parse_config
from seqops.model.training import fit
from seqops.tuning.study import WORKER_ATTR, trial_base, worker_id

#: MLflow run status for each final trial state (a pruned trial ended as intended).
_RUN_STATUS = {
    TrialState.COMPLETE: "FINISHED",
    TrialState.PRUNED: "FINISHED",
    TrialState.FAIL: "FAILED",
}


def suggest(
    trial: optuna.Trial, space: dict[str, IntRange | FloatRange | Choice]
) -> dict[str, Any]:
    """Sample one value per dotted path of the search space."""
    params: dict[str, Any] = {}
    for path, dim in space.items():
        if isinstance(dim, Choice):
            params[path] = trial.suggest_categorical(path, dim.choices)
        elif isinstance(dim, IntRange):
            params[path] = trial.suggest_int(path, dim.low, dim.high, step=dim.step, log=dim.log)
        else:
            params[path] = trial.suggest_float(path, dim.low, dim.high, step=dim.step, log=dim.log)
    return params


def trial_config(cfg: Config, params: dict[str, Any]) -> Config:
    """The capped base config with the sampled dotted paths replaced, validated again."""
    raw = trial_base(cfg).model_dump(mode="json")
    return parse_config(apply_overrides(raw, params), "trial params")


def best_value(history: list[dict[str, float]], metric: str, direction: str) -> float:
    values = [row[metric] for row in history if metric in row and math.isfinite(row[metric])]
    if not values:
        raise RuntimeError(f"{metric!r} was never logged with a finite value")
    return min(values) if direction == "minimize" else max(values)


class ValMetricsLogger(pl.Callback):
    """Logs `val/*` to the active MLflow run at each validation end, before the pruner can stop
    the trial, so a pruned trial's curve includes the epoch that pruned it. `epochs` counts
    the epochs the trial trained, the cost the tuning benchmark compares."""

    def __init__(self) -> None:
        self.epochs = 0

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        self.epochs = trainer.current_epoch + 1
        if mlflow.active_run() is None:
            return
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val/")}
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
        val_logger = ValMetricsLogger()
        try:
            with tempfile.TemporaryDirectory(prefix="seqops-trial-") as tmp:
                result = fit(
                    cfg,
                    self.processed,
                    Path(tmp),
                    callbacks=[
                        val_logger,
                        PyTorchLightningPruningCallback(trial, monitor=self.cfg.tune.metric),
                    ],
                    progress_bar=False,
                )
            value = best_value(result.history, self.cfg.tune.metric, self.cfg.tune.goal)
            state = TrialState.COMPLETE
            if run:
                mlflow.log_metric("trial/value", value)
            return value
        except optuna.TrialPruned:
            state = TrialState.PRUNED
            raise
        finally:
            trial.set_user_attr("epochs", val_logger.epochs)
            if run:
                mlflow.set_tag("optuna.trial.state", state.name)
                mlflow.end_run(status=_RUN_STATUS[state])

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
