"""MLflow runs and lineage: one run per trained model, shared metric and param names.

The tracking URI is `MLFLOW_TRACKING_URI` when set, else `tracking.uri` from params.yaml
(default: the embedded `sqlite:///mlflow.db` at the project root). Nothing happens at import
time; stages call `use_tracking()` in their `main()`.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import mlflow

from seqops.config import TrackingConfig, read_yaml
from seqops.contracts import RunInfo


def resolve_uri(cfg: TrackingConfig) -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or cfg.uri


def use_tracking(cfg: TrackingConfig) -> str:
    """Point MLflow at the configured store and experiment; returns the URI used."""
    uri = resolve_uri(cfg)
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment(cfg.experiment)
    return uri


def _git(root: Path, *args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args], cwd=root, capture_output=True, text=True, check=True, timeout=30
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def dvc_stage_hashes(lock_file: Path) -> dict[str, str]:
    """A short digest per stage of `dvc.lock` (its command, deps, params and outs)."""
    if not lock_file.is_file():
        return {}
    lock = read_yaml(lock_file) or {}
    return {
        name: hashlib.sha256(json.dumps(entry, sort_keys=True).encode()).hexdigest()[:16]
        for name, entry in (lock.get("stages") or {}).items()
    }


def lineage_tags(root: Path, data_hash: str | None) -> dict[str, str]:
    """git commit and dirty flag, data hash, and dvc.lock stage hashes, as MLflow tags."""
    tags: dict[str, str] = {}
    commit = _git(root, "rev-parse", "HEAD")
    if commit:
        tags["git.commit"] = commit
        status = _git(root, "status", "--porcelain", "--untracked-files=no")
        tags["git.dirty"] = str(bool(status)).lower()
    if data_hash:
        tags["data.hash"] = data_hash
    for stage, digest in dvc_stage_hashes(root / "dvc.lock").items():
        tags[f"dvc.stage.{stage}"] = digest
    return tags


@contextmanager
def resume_run(run_file: Path) -> Iterator[mlflow.ActiveRun]:
    """Reopen the training run recorded in `models/run.json` to add results to it."""
    info = RunInfo.read(run_file)
    mlflow.set_tracking_uri(info.tracking_uri)
    with mlflow.start_run(run_id=info.run_id) as run:
        yield run


def log_flat_params(params: dict[str, Any]) -> None:
    mlflow.log_params({k: ("null" if v is None else v) for k, v in params.items()})


class EpochMetricsLogger(pl.Callback):
    """Logs each epoch's `train/*` and `val/*` metrics to the active MLflow run, step = epoch."""

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if mlflow.active_run() is None or trainer.sanity_checking:
            return
        metrics = {
            name: float(value)
            for name, value in trainer.callback_metrics.items()
            if name.startswith(("train/", "val/"))
        }
        mlflow.log_metrics(metrics, step=trainer.current_epoch)
