"""train: fit LitSequenceModel on the processed splits, track it in MLflow, keep the best epoch.

    seqops train [--params params.yaml]

`fit()` is the typed function the train stage, the tuner and the tests all call. `main()`
merges `models/best_params.yaml` (written by the tune stage, if present) over params.yaml,
opens one MLflow run, and writes `models/model.ckpt`, `models/run.json`, `reports/train.json`
and the learning curves `reports/plots/learning_curves.csv`.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint

from seqops import outputs
from seqops.config import Config, load_config, read_yaml
from seqops.data.datamodule import SequenceDataModule
from seqops.errors import ConfigError
from seqops.layout import Layout
from seqops.model.system import LitSequenceModel


class EpochHistory(pl.Callback):
    """Keeps every epoch's logged metrics, for the learning curves."""

    def __init__(self) -> None:
        self.rows: list[dict[str, float]] = []

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        row = {"epoch": float(trainer.current_epoch)}
        row.update({k: float(v) for k, v in trainer.callback_metrics.items() if "/" in k})
        self.rows.append(row)


@dataclass
class FitResult:
    model: LitSequenceModel
    best_checkpoint: Path
    best_score: float
    best_epoch: int
    epochs_run: int
    history: list[dict[str, float]] = field(default_factory=list)
    wall_s: float = 0.0


#: ModelConfig keys that only text models read (kept out of float models' hyperparameters).
_TEXT_ONLY = {"embedding_dim", "embeddings_path", "freeze_embeddings"}


def forecast_hparams(preprocessing: dict[str, Any]) -> dict[str, Any]:
    """What the forecasting system needs from prepare's preprocessing: the horizon, and the
    lag and target scale that turn its scaled (differenced) outputs into level errors."""
    from seqops.data.windows import ForecastSpec

    spec = ForecastSpec.from_dict(preprocessing["forecast"])
    return {
        "horizon": spec.horizon,
        "lag": spec.lag,
        "target_std": spec.std[spec.target_index].tolist(),
    }


def build_model(
    cfg: Config,
    n_features: int,
    n_classes: int,
    vocab: dict[str, int] | None = None,
    forecast: dict[str, Any] | None = None,
) -> LitSequenceModel:
    """The system for float features, for token ids over `vocab` (text), with the pretrained
    vectors of `model.embeddings_path` copied in when set, or for forecasting `n_classes`
    target series (`forecast`: see `forecast_hparams`)."""
    network = cfg.model.model_dump(exclude=_TEXT_ONLY)
    if vocab is not None:
        network.update(vocab_size=len(vocab), embedding_dim=cfg.model.embedding_dim)
    model = LitSequenceModel(
        n_features=n_features,
        n_classes=n_classes,
        network=network,
        lr=cfg.train.lr,
        weight_decay=cfg.train.weight_decay,
        scheduler=cfg.train.scheduler,
        max_epochs=cfg.train.max_epochs,
        monitor=cfg.train.monitor,
        monitor_mode=cfg.train.monitor_mode,
        noise_std=cfg.train.noise_std,
        label_smoothing=cfg.train.label_smoothing,
        forecast=forecast,
    )
    if vocab is not None and cfg.model.embeddings_path is not None:
        from seqops.data.text import load_word_vectors

        weights, _ = load_word_vectors(cfg.model.embeddings_path, vocab, cfg.model.embedding_dim)
        embedding = model.net.embedding
        assert embedding is not None
        embedding.weight.data.copy_(torch.from_numpy(weights))
        embedding.weight.requires_grad_(not cfg.model.freeze_embeddings)
    return model


def fit(
    cfg: Config,
    processed_dir: Path,
    checkpoint_dir: Path,
    *,
    callbacks: list[pl.Callback] | None = None,
    progress_bar: bool = True,
) -> FitResult:
    """Train one model; the best epoch by `train.monitor` is saved under `checkpoint_dir`."""
    start = time.perf_counter()
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    data = SequenceDataModule(processed_dir, cfg.train.batch_size, cfg.seed)
    preprocessing = json.loads((processed_dir / "preprocessing.json").read_text())
    vocab, forecast = None, None
    n_outputs = len(preprocessing["label_names"])
    if preprocessing["task"] == "text_classification":
        from tokenizers import Tokenizer

        vocab = Tokenizer.from_file(str(processed_dir / preprocessing["tokenizer"])).get_vocab()
    elif preprocessing["task"] == "forecasting":
        forecast = forecast_hparams(preprocessing)
        n_outputs = len(preprocessing["forecast"]["target_names"])
    model = build_model(cfg, len(preprocessing["feature_names"]), n_outputs, vocab, forecast)
    checkpoint = ModelCheckpoint(
        dirpath=checkpoint_dir,
        filename="best",
        monitor=cfg.train.monitor,
        mode=cfg.train.monitor_mode,
        save_top_k=1,
        enable_version_counter=False,
    )
    history = EpochHistory()
    trainer = pl.Trainer(
        max_epochs=cfg.train.max_epochs,
        accelerator=cfg.train.accelerator,
        devices=cfg.train.devices,
        strategy=cfg.train.strategy,
        deterministic=cfg.train.deterministic,
        gradient_clip_val=cfg.train.gradient_clip_val or None,
        callbacks=[
            checkpoint,
            EarlyStopping(
                cfg.train.monitor, mode=cfg.train.monitor_mode, patience=cfg.train.patience
            ),
            history,
            *(callbacks or []),
        ],
        logger=False,
        enable_progress_bar=progress_bar,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    trainer.fit(model, datamodule=data)
    if not checkpoint.best_model_path:
        raise RuntimeError(f"no checkpoint written: was {cfg.train.monitor!r} ever logged?")
    best = LitSequenceModel.load_from_checkpoint(checkpoint.best_model_path, map_location="cpu")
    scores = [row.get(cfg.train.monitor, float("nan")) for row in history.rows]
    best_score = float(checkpoint.best_model_score)  # type: ignore[arg-type]
    return FitResult(
        model=best,
        best_checkpoint=Path(checkpoint.best_model_path),
        best_score=best_score,
        best_epoch=scores.index(best_score) if best_score in scores else -1,
        epochs_run=trainer.current_epoch,
        history=history.rows,
        wall_s=time.perf_counter() - start,
    )


def load_merged_config(params: str | Path, best_params: Path) -> Config:
    """params.yaml with the tuner's dotted-path overrides (if any) merged over it."""
    overrides = read_yaml(best_params) if best_params.is_file() else None
    if overrides is not None and not isinstance(overrides, dict):
        raise ConfigError(f"{best_params}: expected a mapping of dotted param paths")
    return load_config(params, overrides=overrides or None)


def _study_tags(tune_report: Path) -> dict[str, str]:
    """Link the model to the Optuna study (and its MLflow parent run) its params came from."""
    if not tune_report.is_file():
        return {}
    report = json.loads(tune_report.read_text())
    if not report.get("study"):  # tuning disabled: base params
        return {}
    return {"optuna.study": report["study"], "optuna.parent_run_id": report["parent_run_id"]}


def _curves_csv(rows: list[dict[str, float]]) -> str:
    names = sorted({k for row in rows for k in row if k != "epoch"})
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=["epoch", *names], lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({"epoch": int(row["epoch"]), **{k: row.get(k, "") for k in names}})
    return buf.getvalue()


def _curves_png(rows: list[dict[str, float]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (loss_ax, score_ax) = plt.subplots(1, 2, figsize=(10, 4))
    epochs = [row["epoch"] for row in rows]
    for name in ("train/loss", "val/loss"):
        loss_ax.plot(epochs, [row.get(name) for row in rows], label=name)
    for name in ("val/accuracy", "val/f1_macro", "val/rmse", "val/mae"):
        if any(name in row for row in rows):
            score_ax.plot(epochs, [row.get(name) for row in rows], label=name)
    for ax, title in ((loss_ax, "loss"), (score_ax, "validation score")):
        ax.set_xlabel("epoch")
        ax.set_title(title)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def train_report(cfg: Config, result: FitResult) -> dict[str, Any]:
    final = result.history[result.best_epoch] if result.best_epoch >= 0 else {}
    return {
        "monitor": cfg.train.monitor,
        "best_score": result.best_score,
        "best_epoch": result.best_epoch,
        "epochs_run": result.epochs_run,
        "best": {k: v for k, v in final.items() if k != "epoch"},
        "n_parameters": sum(p.numel() for p in result.model.parameters()),
        "wall_s": round(result.wall_s, 2),
    }


def main(params: str | Path = "params.yaml", layout: Layout | None = None) -> dict[str, Any]:
    import mlflow

    from seqops import tracking

    layout = layout or Layout()
    cfg = load_merged_config(params, layout.best_params)
    curves = layout.plots / "learning_curves.csv"
    report_file = layout.reports / "train.json"
    outputs.remove(layout.checkpoint, layout.run_file, report_file, curves)
    data_report = json.loads((layout.reports / "data.json").read_text())
    uri = tracking.use_tracking(cfg.tracking)
    with tempfile.TemporaryDirectory() as tmp, mlflow.start_run() as run:
        mlflow.set_tags(
            {
                "seqops.stage": "train",
                **tracking.lineage_tags(layout.root, data_report["data_hash"]),
            }
        )
        mlflow.set_tags(_study_tags(layout.reports / "tune.json"))
        # What determines the trained model; tune/export/... sections are logged by their stages.
        tracking.log_flat_params(cfg.to_flat_dict(("seed", "data", "model", "train")))
        result = fit(cfg, layout.processed, Path(tmp), callbacks=[tracking.EpochMetricsLogger()])
        report = train_report(cfg, result)
        mlflow.log_metrics(
            {"train/best_epoch": report["best_epoch"], "train/wall_s": result.wall_s}
        )
        png = Path(tmp) / "learning_curves.png"
        _curves_png(result.history, png)
        mlflow.log_artifact(str(png), "plots")
        mlflow.log_artifact(str(layout.reports / "data.json"), "reports")
        layout.models.mkdir(parents=True, exist_ok=True)
        with outputs.atomic_path(layout.checkpoint) as tmp_ckpt:
            shutil.copyfile(result.best_checkpoint, tmp_ckpt)
        outputs.write_text(curves, _curves_csv(result.history))
        outputs.write_json(report_file, report)
        mlflow.log_artifact(str(report_file), "reports")
        outputs.write_json(
            layout.run_file,
            {
                "run_id": run.info.run_id,
                "experiment_id": run.info.experiment_id,
                "tracking_uri": uri,
            },
        )
    print(
        f"train: best {cfg.train.monitor}={result.best_score:.4f} at epoch {result.best_epoch} "
        f"of {result.epochs_run}; MLflow run {run.info.run_id}"
    )
    return report
