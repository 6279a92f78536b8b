"""evaluate: test-set metrics of the trained checkpoint, into reports and the training run.

    seqops evaluate [--params params.yaml]

Writes `reports/metrics.json` (`{"test": {accuracy, f1_macro, ece}, "per_class": ...}`),
per-example predictions `reports/predictions.csv` (what a paired regression test against a
previous model needs), the confusion matrix as a DVC plot (`reports/plots/confusion.csv`)
and as a PNG in the MLflow run recorded in `models/run.json`, and the ROC and precision-recall
curves (`reports/plots/roc.csv`, `reports/plots/pr.csv`): of the second class against the first
for two classes (SST-2: positive), micro-averaged one-vs-rest for more.
"""

from __future__ import annotations

import csv
import io
import json
import tempfile
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


def main(params: str | Path = "params.yaml", layout: Layout | None = None) -> dict[str, Any]:
    import mlflow

    from seqops import tracking

    layout = layout or Layout()
    load_config(params)  # fail early on a bad params file, as every stage does
    metrics_file = layout.reports / "metrics.json"
    predictions = layout.reports / "predictions.csv"
    confusion = layout.plots / "confusion.csv"
    roc, pr = layout.plots / "roc.csv", layout.plots / "pr.csv"
    outputs.remove(metrics_file, predictions, confusion, roc, pr)
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
