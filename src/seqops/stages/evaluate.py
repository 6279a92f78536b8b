"""evaluate: test-set metrics of the trained checkpoint, into reports and the training run.

    seqops evaluate [--params params.yaml]

Writes `reports/metrics.json` (`{"test": {accuracy, f1_macro, ece}, "per_class": ...}`),
per-example predictions `reports/predictions.csv` (what a paired regression test against a
previous model needs), the confusion matrix as a DVC plot
(`reports/plots/evaluate/confusion.csv`) and as a PNG in the MLflow run recorded in
`models/run.json`, and the ROC and precision-recall curves (`reports/plots/evaluate/roc.csv`,
`reports/plots/evaluate/pr.csv`): of the second class against the first
for two classes (SST-2: positive), micro-averaged one-vs-rest for more.

Forecasting (`data.task: forecasting`) writes instead: MAE, RMSE, sMAPE and MASE of the model
on the test block, the same for the seasonal-naive and Holt-Winters baselines (`baseline`),
the model's RMSE relative to each (`skill`) and per step ahead, in `reports/metrics.json`;
every test forecast point in `reports/predictions.csv` (what the release stage's paired test
compares); and history, actuals and forecasts as `reports/plots/evaluate/forecast.{csv,png}`. The
plots folder is one DVC output, so each task writes only the plots that mean something for it.
"""

from __future__ import annotations

import csv
import io
import json
import tempfile
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torchmetrics.classification import (
    BinaryPrecisionRecallCurve,
    BinaryROC,
    MulticlassAccuracy,
    MulticlassCalibrationError,
    MulticlassConfusionMatrix,
    MulticlassF1Score,
    MulticlassPrecision,
    MulticlassRecall,
)

from seqops import outputs
from seqops.config import load_config
from seqops.data.datamodule import loader
from seqops.data.sequences import SequenceSet
from seqops.data.windows import ForecastSpec
from seqops.forecasting import METRICS, ForecastTest, forecast_errors
from seqops.layout import Layout
from seqops.model.system import LitSequenceModel


@torch.no_grad()
def predict_proba(
    model: LitSequenceModel, data: SequenceSet, batch_size: int = 256
) -> torch.Tensor:
    """Class probabilities `(N, C)` in the order of `data`."""
    model.eval()
    chunks = [
        torch.softmax(model(x, lengths), dim=-1)
        for x, lengths, _ in loader(data, batch_size, shuffle=False)
    ]
    return torch.cat(chunks)


def classification_metrics(
    probs: torch.Tensor, target: torch.Tensor, label_names: list[str]
) -> dict[str, Any]:
    n = len(label_names)
    precision = MulticlassPrecision(n, average=None)(probs, target)
    recall = MulticlassRecall(n, average=None)(probs, target)
    return {
        "test": {
            "accuracy": float(MulticlassAccuracy(n, average="micro")(probs, target)),
            "f1_macro": float(MulticlassF1Score(n, average="macro")(probs, target)),
            "ece": float(MulticlassCalibrationError(n, n_bins=15, norm="l1")(probs, target)),
            "n": len(target),
        },
        "per_class": {
            name: {"precision": float(precision[i]), "recall": float(recall[i])}
            for i, name in enumerate(label_names)
        },
    }


def _predictions_csv(probs: torch.Tensor, target: torch.Tensor, names: list[str]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["index", "actual", "predicted", "correct", *[f"p_{n}" for n in names]])
    predicted = probs.argmax(dim=-1)
    for i, (p, y, row) in enumerate(
        zip(predicted.tolist(), target.tolist(), probs.tolist(), strict=True)
    ):
        writer.writerow([i, names[y], names[p], int(p == y), *[f"{v:.6f}" for v in row]])
    return buf.getvalue()


def _confusion_csv(probs: torch.Tensor, target: torch.Tensor, names: list[str]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["actual", "predicted"])
    for p, y in zip(probs.argmax(dim=-1).tolist(), target.tolist(), strict=True):
        writer.writerow([names[y], names[p]])
    return buf.getvalue()


def _scores_and_hits(
    probs: torch.Tensor, target: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Binary scores / targets: class 1 for two classes, every (example, class) pair otherwise."""
    if probs.shape[1] == 2:
        return probs[:, 1], target
    one_hot = torch.nn.functional.one_hot(target, probs.shape[1])
    return probs.flatten(), one_hot.flatten()


def curves_csv(probs: torch.Tensor, target: torch.Tensor) -> tuple[str, str]:
    """ROC (`fpr,tpr,threshold`) and precision-recall (`recall,precision,threshold`) as CSV."""
    scores, hits = _scores_and_hits(probs, target)
    fpr, tpr, roc_thresholds = BinaryROC()(scores, hits)
    precision, recall, pr_thresholds = BinaryPrecisionRecallCurve()(scores, hits)
    roc = ["fpr,tpr,threshold"] + [
        f"{f:.6f},{t:.6f},{min(th, 1.0):.6f}"
        for f, t, th in zip(fpr.tolist(), tpr.tolist(), roc_thresholds.tolist(), strict=True)
    ]
    # The curve's last point (recall 0, precision 1) has no threshold: left empty.
    thresholds = [f"{th:.6f}" for th in pr_thresholds.tolist()] + [""]
    pr = ["recall,precision,threshold"] + [
        f"{r:.6f},{p:.6f},{th}"
        for r, p, th in zip(recall.tolist(), precision.tolist(), thresholds, strict=True)
    ]
    return "\n".join(roc) + "\n", "\n".join(pr) + "\n"


def confusion_png(probs: torch.Tensor, target: torch.Tensor, names: list[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    matrix = MulticlassConfusionMatrix(len(names))(probs, target).numpy()
    fig, ax = plt.subplots(figsize=(1.0 + 0.6 * len(names), 1.0 + 0.6 * len(names)))
    ax.imshow(matrix, cmap="Blues")
    for (i, j), count in np.ndenumerate(matrix):
        ax.text(
            j,
            i,
            str(count),
            ha="center",
            va="center",
            color="white" if count > matrix.max() / 2 else "black",
        )
    ax.set_xticks(range(len(names)), names)
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("actual")
    ax.set_title("test confusion matrix")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def evaluate(
    checkpoint: Path, processed_dir: Path
) -> tuple[dict[str, Any], torch.Tensor, torch.Tensor]:
    """Metrics, probabilities and targets of the checkpoint on the test split."""
    model = LitSequenceModel.load_from_checkpoint(checkpoint, map_location="cpu")
    test = SequenceSet.load(processed_dir / "test.npz")
    names = json.loads((processed_dir / "preprocessing.json").read_text())["label_names"]
    probs = predict_proba(model, test)
    target = torch.from_numpy(test.labels)
    return classification_metrics(probs, target, names), probs, target


@dataclass(frozen=True)
class ForecastEvaluation:
    """Test forecasts of the model and the baselines, `(N, H, K)` in the series' units."""

    test: ForecastTest
    forecasts: dict[str, np.ndarray]
    """`model`, `seasonal_naive`, `holt_winters`."""

    @cached_property
    def actual(self) -> np.ndarray:
        return self.test.actual()

    def metrics(self) -> dict[str, Any]:
        scale = self.test.mase_scale()

        def errors(name: str) -> dict[str, float]:
            return forecast_errors(self.actual, self.forecasts[name], scale)

        test = errors("model")
        baselines = {name: errors(name) for name in self.forecasts if name != "model"}
        step_rmse = np.sqrt(((self.forecasts["model"] - self.actual) ** 2).mean(axis=(0, 2)))
        return {
            "test": {**test, "n": int(self.actual.size), "n_windows": len(self.test.origins)},
            "baseline": baselines,
            "skill": {f"rmse_vs_{name}": test["rmse"] / b["rmse"] for name, b in baselines.items()},
            "per_step": {"rmse": [float(v) for v in step_rmse]},
        }

    def predictions_csv(self) -> str:
        """One row per (origin, step, target): the actual value and every forecast."""
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        names = list(self.forecasts)
        writer.writerow(["origin", "time", "horizon", "target", "actual", *names, "error"])
        times = self.test.series.times
        for i, o in enumerate(self.test.origins):
            for h in range(self.test.spec.horizon):
                for k, target in enumerate(self.test.spec.target_names):
                    got = [self.forecasts[n][i, h, k] for n in names]
                    actual = self.actual[i, h, k]
                    writer.writerow(
                        [str(times[o]), str(times[o + h]), h + 1, target, f"{actual:.6g}"]
                        + [f"{v:.6g}" for v in got]
                        + [f"{got[0] - actual:.6g}"]
                    )
        return buf.getvalue()

    def plot_csv(self, history_steps: int) -> str:
        """The last `history_steps` observed steps and the last origin's forecasts (DVC plot)."""
        times, origin, last = self.test.series.times, self.test.origins[-1], -1
        rows = ["time,series,value"]
        for t in range(max(origin - history_steps, 0), len(times)):
            rows.append(f"{times[t]},actual,{self.test.targets[t, 0]:.6g}")
        for name, forecast in self.forecasts.items():
            for h in range(self.test.spec.horizon):
                rows.append(f"{times[origin + h]},{name},{forecast[last, h, 0]:.6g}")
        return "\n".join(rows) + "\n"

    def plot_png(self, path: Path, history_steps: int) -> None:
        """History, actuals and every forecast of the last test origin, per target."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        o, last, h = self.test.origins[-1], len(self.test.origins) - 1, self.test.spec.horizon
        times = self.test.series.times
        start = max(o - history_steps, 0)
        targets = self.test.spec.target_names
        fig, axes = plt.subplots(len(targets), 1, figsize=(10, 3.5 * len(targets)), squeeze=False)
        for k, (ax, name) in enumerate(zip(axes[:, 0], targets, strict=True)):
            history = self.test.targets[start:o, k]
            ax.plot(times[start:o], history, color="black", label="history")
            ax.plot(
                times[o : o + h], self.actual[last, :, k], color="black", ls="--", label="actual"
            )
            styles = {"model": "tab:red", "seasonal_naive": "tab:gray", "holt_winters": "tab:blue"}
            for method, forecast in self.forecasts.items():
                ax.plot(
                    times[o : o + h], forecast[last, :, k], color=styles.get(method), label=method
                )
            ax.axvline(times[o], color="gray", lw=0.8)
            ax.set_title(f"{name}: {h}-step forecast from {times[o]}")
            ax.legend(loc="upper left")
        fig.tight_layout()
        with outputs.atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=100, format="png")
        plt.close(fig)


@torch.no_grad()
def model_forecast(
    model: LitSequenceModel, spec: ForecastSpec, values: np.ndarray, origins: list[int]
) -> np.ndarray:
    """The model's forecasts `(N, H, K)` in units from the histories before each origin."""
    model.eval()
    inputs = np.stack([spec.model_input(values[:o]) for o in origins])  # (N, L, F)
    lengths = torch.full((len(origins),), spec.lookback, dtype=torch.int64)
    z = model(torch.from_numpy(inputs), lengths).numpy()
    return spec.invert(z, np.stack([spec.tail(values[:o]) for o in origins]))


def evaluate_forecast(checkpoint: Path, processed_dir: Path) -> ForecastEvaluation:
    """Model, seasonal-naive and Holt-Winters forecasts at every test origin."""
    test = ForecastTest.load(processed_dir)
    model = LitSequenceModel.load_from_checkpoint(checkpoint, map_location="cpu")
    model_forecasts = model_forecast(model, test.spec, test.series.values, test.origins)
    return ForecastEvaluation(test, {"model": model_forecasts, **test.baselines()})


#: Observed steps drawn before the forecast in the forecast plot.
_PLOT_HISTORY = 60


def main_forecast(layout: Layout) -> dict[str, Any]:
    import mlflow

    from seqops import tracking

    metrics_file = layout.reports / "metrics.json"
    predictions = layout.reports / "predictions.csv"
    plots = layout.evaluation_plots
    plot_csv, plot_png = plots / "forecast.csv", plots / "forecast.png"
    outputs.remove(metrics_file, predictions, plots)
    result = evaluate_forecast(layout.checkpoint, layout.processed)
    metrics = result.metrics()
    with tracking.resume_run(layout.run_file):
        logged = {f"test/{k}": v for k, v in metrics["test"].items() if k in METRICS}
        for name, errors in metrics["baseline"].items():
            logged.update({f"baseline/{name}/{k}": v for k, v in errors.items()})
        mlflow.log_metrics(logged)
        outputs.write_text(predictions, result.predictions_csv())
        outputs.write_text(plot_csv, result.plot_csv(_PLOT_HISTORY))
        result.plot_png(plot_png, _PLOT_HISTORY)
        mlflow.log_artifact(str(plot_png), "plots")
        outputs.write_json(metrics_file, metrics)
        mlflow.log_artifact(str(metrics_file), "reports")
    test, naive = metrics["test"], metrics["baseline"]["seasonal_naive"]
    print(
        f"evaluate: test RMSE {test['rmse']:.4g}, MAE {test['mae']:.4g}, sMAPE "
        f"{test['smape']:.3g} %, MASE {test['mase']:.3g} over {test['n_windows']} window(s); "
        f"seasonal naive RMSE {naive['rmse']:.4g} "
        f"({metrics['skill']['rmse_vs_seasonal_naive']:.2f}x), Holt-Winters RMSE "
        f"{metrics['baseline']['holt_winters']['rmse']:.4g}"
    )
    return metrics


def main(params: str | Path = "params.yaml", layout: Layout | None = None) -> dict[str, Any]:
    import mlflow

    from seqops import tracking

    layout = layout or Layout()
    cfg = load_config(params)  # fail early on a bad params file, as every stage does
    if cfg.data.task == "forecasting":
        return main_forecast(layout)
    metrics_file = layout.reports / "metrics.json"
    predictions = layout.reports / "predictions.csv"
    plots = layout.evaluation_plots
    confusion, roc, pr = plots / "confusion.csv", plots / "roc.csv", plots / "pr.csv"
    outputs.remove(metrics_file, predictions, plots)
    metrics, probs, target = evaluate(layout.checkpoint, layout.processed)
    names = list(metrics["per_class"])
    with tempfile.TemporaryDirectory() as tmp, tracking.resume_run(layout.run_file):
        mlflow.log_metrics({f"test/{k}": v for k, v in metrics["test"].items() if k != "n"})
        png = Path(tmp) / "confusion_matrix.png"
        confusion_png(probs, target, names, png)
        mlflow.log_artifact(str(png), "plots")
        outputs.write_text(predictions, _predictions_csv(probs, target, names))
        outputs.write_text(confusion, _confusion_csv(probs, target, names))
        roc_text, pr_text = curves_csv(probs, target)
        outputs.write_text(roc, roc_text)
        outputs.write_text(pr, pr_text)
        outputs.write_json(metrics_file, metrics)
        mlflow.log_artifact(str(metrics_file), "reports")
    test = metrics["test"]
    print(
        f"evaluate: test accuracy {test['accuracy']:.4f}, macro-F1 {test['f1_macro']:.4f}, "
        f"ECE {test['ece']:.4f} on {test['n']} sequences"
    )
    return metrics
