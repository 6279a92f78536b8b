"""A classifier's evaluate part: accuracy, macro-F1, ECE with per-class precision / recall,
the confusion matrix and ROC / precision-recall curves, beside the task's classical
baselines (`ClassifierEvaluate.baselines`)."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from seqops.contracts import MetaT, MetricsReport
from seqops.layout import split_file
from seqops.tasks.classifier.task import ClassReportT
from seqops.tasks.parts.evaluate import EvaluateTask, Evaluation

if TYPE_CHECKING:
    import torch

    from seqops.config import DataConfig
    from seqops.data.sequences import SequenceSet
    from seqops.model.network import SequenceNet


def baseline_metrics(predicted: np.ndarray, target: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import f1_score

    return {
        "accuracy": float(np.mean(predicted == target)),
        "f1_macro": float(f1_score(target, predicted, average="macro")),
    }


def predict_proba(model: Any, data: SequenceSet, batch_size: int = 256) -> torch.Tensor:
    """Class probabilities `(N, C)` of a trained system in the order of `data`."""
    import torch

    from seqops.data.batches import loader

    model.eval()
    with torch.no_grad():
        chunks = [
            torch.softmax(model(x, lengths), dim=-1)
            for x, lengths, _ in loader(data, batch_size, shuffle=False)
        ]
    return torch.cat(chunks)


def classification_metrics(
    probs: torch.Tensor, target: torch.Tensor, label_names: list[str], task: str
) -> MetricsReport:
    from torchmetrics.classification import (
        MulticlassAccuracy,
        MulticlassCalibrationError,
        MulticlassF1Score,
        MulticlassPrecision,
        MulticlassRecall,
    )

    n = len(label_names)
    precision = MulticlassPrecision(n, average=None)(probs, target)
    recall = MulticlassRecall(n, average=None)(probs, target)
    return MetricsReport(
        task=task,
        test={
            "accuracy": float(MulticlassAccuracy(n, average="micro")(probs, target)),
            "f1_macro": float(MulticlassF1Score(n, average="macro")(probs, target)),
            "ece": float(MulticlassCalibrationError(n, n_bins=15, norm="l1")(probs, target)),
            "roc_auc": roc_auc(probs, target),
            "n": len(target),
        },
        per_class={
            name: {"precision": float(precision[i]), "recall": float(recall[i])}
            for i, name in enumerate(label_names)
        },
    )


def binary_scores(probs: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Scores and hits of the ROC / PR curves: the second class against the first for two
    classes, micro-averaged one-vs-rest (every example × class pair) for more."""
    import torch

    if probs.shape[1] == 2:
        return probs[:, 1], target
    return probs.flatten(), torch.nn.functional.one_hot(target, probs.shape[1]).flatten()


def roc_auc(probs: torch.Tensor, target: torch.Tensor) -> float:
    """Area under the ROC curve of `binary_scores` (micro-averaged for more than 2 classes)."""
    from torchmetrics.classification import BinaryAUROC

    return float(BinaryAUROC()(*binary_scores(probs, target)))


def curves_csv(probs: torch.Tensor, target: torch.Tensor) -> tuple[str, str]:
    """ROC (`fpr,tpr,threshold`) and precision-recall (`recall,precision,threshold`) as CSV,
    of `binary_scores`."""
    from torchmetrics.classification import BinaryPrecisionRecallCurve, BinaryROC

    scores, hits = binary_scores(probs, target)
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


def roc_png(probs: torch.Tensor, target: torch.Tensor, path: Path) -> None:
    """The ROC curve with its AUC, saying how the classes were combined."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from torchmetrics.classification import BinaryROC

    fpr, tpr, _ = BinaryROC()(*binary_scores(probs, target))
    how = "positive class" if probs.shape[1] == 2 else "micro-averaged one-vs-rest"
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot(fpr.numpy(), tpr.numpy(), label=f"AUC {roc_auc(probs, target):.4f}")
    ax.plot([0, 1], [0, 1], color="gray", ls="--", lw=0.8, label="chance")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title(f"test ROC ({how})")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def confusion_png(probs: torch.Tensor, target: torch.Tensor, names: list[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from torchmetrics.classification import MulticlassConfusionMatrix

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
    ax.set_xlabel("predicted label")
    ax.set_ylabel("true label")
    ax.set_title("test confusion matrix")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


class ClassificationEvaluation(Evaluation):
    """Test probabilities of a classifier and what they give."""

    def __init__(
        self,
        probs: torch.Tensor,
        target: torch.Tensor,
        names: list[str],
        task: str,
        baselines: dict[str, np.ndarray],
    ):
        self.probs, self.target, self.names = probs, target, names
        self.baselines = baselines
        """Class indices each classical baseline predicts for the test examples."""
        model = classification_metrics(probs, target, names, task)
        truth = target.numpy()
        scores = {name: baseline_metrics(p, truth) for name, p in baselines.items()}
        self.metrics = model.model_copy(
            update={
                "baseline": scores or None,
                "skill": {
                    f"accuracy_minus_{name}": float(model.test["accuracy"]) - b["accuracy"]
                    for name, b in scores.items()
                }
                or None,
            }
        )

    def predictions_csv(self) -> str:
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        names = self.names
        writer.writerow(
            ["index", "actual", "predicted", "correct", *[f"p_{n}" for n in names], *self.baselines]
        )
        predicted = self.probs.argmax(dim=-1)
        for i, (p, y, row) in enumerate(
            zip(predicted.tolist(), self.target.tolist(), self.probs.tolist(), strict=True)
        ):
            writer.writerow(
                [i, names[y], names[p], int(p == y), *[f"{v:.6f}" for v in row]]
                + [names[b[i]] for b in self.baselines.values()]
            )
        return buf.getvalue()

    def confusion_csv(self) -> str:
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(["actual", "predicted"])
        for p, y in zip(self.probs.argmax(dim=-1).tolist(), self.target.tolist(), strict=True):
            writer.writerow([self.names[y], self.names[p]])
        return buf.getvalue()

    def write_plots(self, plots: Path, scratch: Path) -> list[Path]:
        from seqops import outputs

        confusion, roc = scratch / "confusion_matrix.png", scratch / "roc.png"
        confusion_png(self.probs, self.target, self.names, confusion)
        roc_png(self.probs, self.target, roc)
        outputs.write_text(plots / "confusion.csv", self.confusion_csv())
        roc_csv, pr_csv = curves_csv(self.probs, self.target)
        outputs.write_text(plots / "roc.csv", roc_csv)
        outputs.write_text(plots / "pr.csv", pr_csv)
        return [confusion, roc]

    def logged_metrics(self) -> dict[str, float]:
        logged = {f"test/{k}": float(v) for k, v in self.metrics.test.items() if k != "n"}
        return {**logged, **self.logged_baselines()}

    def summary(self) -> str:
        test = self.metrics.test
        baselines = "".join(
            f"; {name} accuracy {b['accuracy']:.4f}"
            for name, b in (self.metrics.baseline or {}).items()
        )
        return (
            f"evaluate: test accuracy {test['accuracy']:.4f}, macro-F1 {test['f1_macro']:.4f}, "
            f"ECE {test['ece']:.4f} on {test['n']} sequences{baselines}"
        )


class ClassifierEvaluate(EvaluateTask[MetaT, ClassReportT, MetricsReport]):
    """Test probabilities of the model and the task's baselines' test classes."""

    def evaluate(
        self,
        system: SequenceNet,
        processed: Path,
        meta: MetaT,
        data: DataConfig | None = None,
    ) -> ClassificationEvaluation:
        import torch

        from seqops.data.sequences import SequenceSet
        from seqops.model.network import fitted_splits

        test = SequenceSet.load(processed / split_file("test"))
        probs = predict_proba(system, test)
        return ClassificationEvaluation(
            probs,
            torch.from_numpy(test.labels),
            meta.label_names,
            self.name,
            self.baselines(processed, fitted_splits(system)),
        )

    def baselines(self, processed: Path, splits: tuple[str, ...]) -> dict[str, np.ndarray]:
        """Test class indices of the classical baseline(s), fitted on the labelled `splits`
        the model learned from (`seqops.model.network.fitted_splits`)."""
        return {}
