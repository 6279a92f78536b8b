"""train: fit LitSequenceModel on the processed splits, track it in MLflow, keep the best epoch.

    seqops train [--params params.yaml]

`seqops.model.training.fit` is the typed function the train stage, the tuner and the tests
all call; `main()` merges `models/best_params.yaml` (written by the tune stage, if present)
over params.yaml, opens one MLflow run, and writes `models/model.ckpt`, `models/run.json`,
`reports/train.json` and the learning curves `reports/plots/learning_curves.csv`.

With `train.strategy: ddp` and `train.devices: N`, Lightning re-runs `seqops train` for ranks
1..N-1: those only train (`_train_rank`); rank 0 alone opens the MLflow run and writes every
output, so N processes leave what one process leaves.
"""

from __future__ import annotations

import csv
import io
import shutil
import tempfile
from pathlib import Path
from typing import Any

from seqops import outputs
from seqops.config import Config, load_merged_config
from seqops.contracts import RunInfo, TrainReport, TuneReport
from seqops.layout import Layout
from seqops.model.training import (
    EpochMetricsLogger,
    FitResult,
    check_trainer,
    fit,
    fit_final,
    is_rank_zero,
)
from seqops.tasks import get_task, read_data_report


def _study_tags(tune_report: Path) -> dict[str, str]:
    """Link the model to the Optuna study (and its MLflow parent run) its params came from."""
    if not tune_report.is_file():
        return {}
    report = TuneReport.read(tune_report)
    if not report.study or not report.parent_run_id:  # tuning disabled: base params
        return {}
    return {"optuna.study": report.study, "optuna.parent_run_id": report.parent_run_id}


def _curves_csv(rows: list[dict[str, float]]) -> str:
    names = sorted({k for row in rows for k in row if k != "epoch"})
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=["epoch", *names], lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({"epoch": int(row["epoch"]), **{k: row.get(k, "") for k in names}})
    return buf.getvalue()


def _curves_png(rows: list[dict[str, float]], path: Path, best_epoch: int, monitor: str) -> None:
    """Losses and the task's validation metrics per epoch, the kept (best) epoch marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (loss_ax, score_ax) = plt.subplots(1, 2, figsize=(10, 4))
    epochs = [row["epoch"] for row in rows]
    for name in ("train/loss", "val/loss"):
        loss_ax.plot(epochs, [row.get(name) for row in rows], label=name)
    scores = sorted({k for row in rows for k in row if k.startswith("val/") and k != "val/loss"})
    for name in scores:
        score_ax.plot(epochs, [row.get(name) for row in rows], label=name)
    for ax, ylabel in ((loss_ax, "loss"), (score_ax, "validation metric")):
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        if best_epoch >= 0:
            ax.axvline(best_epoch, color="gray", ls="--", lw=1, label=f"best {monitor}")
        ax.legend()
    loss_ax.set_title("loss")
    score_ax.set_title("validation metrics")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def headline_step(result: FitResult) -> int:
    """The step of the kept epoch's metrics in the MLflow run: one past its last epoch, after
    the per-epoch history (step = epoch), so that MLflow takes them as each key's latest."""
    return max([result.epochs_run, *(int(row["epoch"]) + 1 for row in result.history)])


def train_report(cfg: Config, result: FitResult) -> TrainReport:
    final = result.history[result.best_epoch] if result.best_epoch >= 0 else {}
    return TrainReport(
        monitor=cfg.train.monitor,
        best_score=result.best_score,
        best_epoch=result.best_epoch,
        epochs_run=result.epochs_run,
        best={k: v for k, v in final.items() if k != "epoch"},
        n_parameters=sum(p.numel() for p in result.model.parameters()),
        wall_s=round(result.wall_s, 2),
        refit_examples=result.refit_examples,
    )


def _path_weights(model: object) -> dict[str, float]:
    """A trained text network's weights of its recurrent and n-gram paths (`model.ngram_buckets`),
    or a forecaster's weight against the drift forecast (`train.forecast_shrink`), as validation
    set them, for the MLflow run; none for any other model (an ensemble's members each have
    their own). `model`: the system, or an ensemble's `EnsembleNet`."""
    net: Any = getattr(model, "net", model)
    if getattr(net, "horizon", None) is not None:
        return {"train/forecast_weight": float(net.forecast_scale)}
    if getattr(net, "ngrams", None) is None:
        return {}
    scales = {"recurrent": "recurrent_scale", "ngram": "ngram_scale"}
    return {f"train/{path}_weight": float(getattr(net, name)) for path, name in scales.items()}


def _train_rank(cfg: Config, layout: Layout) -> None:
    """A DDP rank other than 0: train in step with rank 0, which saves and reports."""
    with tempfile.TemporaryDirectory() as tmp:
        fit(cfg, layout.processed, Path(tmp), progress_bar=False)


def main(params: str | Path = "params.yaml", layout: Layout | None = None) -> TrainReport | None:
    """Train and write the outputs; None in a DDP rank other than 0 (it writes nothing)."""
    import mlflow

    from seqops import tracking

    layout = layout or Layout()
    cfg = load_merged_config(params, layout.best_params)
    if not is_rank_zero():
        _train_rank(cfg, layout)
        return None
    curves = layout.learning_curves
    report_file = layout.train_report
    numbers = layout.stage_metrics("train")
    check_trainer(cfg)  # a bad Lightning option stops here, with the previous model kept
    tracking.preflight(cfg.tracking)  # so does a password in the URI or a server that is down
    outputs.remove(layout.checkpoint, layout.run_file, report_file, curves, numbers)
    data_report = read_data_report(layout.data_report)
    # As configured (a relative store stays relative), read before MLflow exports the
    # resolved URI to this process's environment.
    store = tracking.configured_uri(cfg.tracking)
    tracking.use_tracking(cfg.tracking)
    name = tracking.experiment_name()
    with tempfile.TemporaryDirectory() as tmp, mlflow.start_run(run_name=name) as run:
        mlflow.set_tags(
            {
                "seqops.stage": "train",
                **tracking.owner_tags(),
                **tracking.lineage_tags(layout.root, data_report.data_hash),
            }
        )
        mlflow.set_tags(_study_tags(layout.tune_report))
        # What determines the trained model, the keys that apply to its task; tune/export/...
        # sections are logged by their stages.
        flat = cfg.to_flat_dict(("seed", "data", "model", "train"))
        tracking.log_flat_params(get_task(cfg.data.task).applicable(flat))
        tracking.log_dataset(
            data_report.source,
            data_report.data_hash,
            "training",
            {"n_train": str(data_report.n_train), "n_val": str(data_report.n_val)},
        )
        result = fit_final(cfg, layout.processed, Path(tmp), callbacks=[EpochMetricsLogger()])
        report = train_report(cfg, result)
        mlflow.log_metrics(
            {
                "train/best_epoch": report.best_epoch,
                "train/wall_s": result.wall_s,
                "train/refit_examples": result.refit_examples,
                **_path_weights(result.model),
            }
        )
        # The run's headline (what the runs table shows: each key's value at its latest
        # step) is the kept epoch's, the one reports/train.json records.
        if report.best:
            mlflow.log_metrics(report.best, step=headline_step(result))
        png = Path(tmp) / "learning_curves.png"
        _curves_png(result.history, png, result.best_epoch, cfg.train.monitor)
        mlflow.log_artifact(str(png), "plots")
        mlflow.log_artifact(str(layout.data_report), "reports")
        layout.models.mkdir(parents=True, exist_ok=True)
        with outputs.atomic_path(layout.checkpoint) as tmp_ckpt:
            shutil.copyfile(result.best_checkpoint, tmp_ckpt)
        outputs.write_text(curves, _curves_csv(result.history))
        report.write(report_file, numbers)
        mlflow.log_artifact(str(report_file), "reports")
        RunInfo(
            run_id=run.info.run_id,
            experiment_id=run.info.experiment_id,
            tracking_uri=store,
        ).write(layout.run_file)
    print(
        f"train: best {cfg.train.monitor}={result.best_score:.4f} at epoch {result.best_epoch} "
        f"of {result.epochs_run}"
        + (
            f", refit on train + val ({result.refit_examples} examples)"
            if result.refit_examples
            else ""
        )
        + (
            f"; kept an ensemble of {cfg.train.ensemble} seeds (the first one's curve shown)"
            if cfg.train.ensemble > 1
            else ""
        )
        + f"; MLflow run {run.info.run_id}"
    )
    return report
