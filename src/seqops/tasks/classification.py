"""`sequence_classification`: variable-length multivariate float sequences → one class each.

Data: a UCR/UEA set bundled in sktime's wheel (`data.dataset`, official train/test split kept)
or a long-format file (`data.path`: id, time, features, label; stratified test split).
Validation is carved from train (stratified, seeded); the scaler is fitted on the training
split only. Evaluate reports accuracy, macro-F1 and ECE with per-class precision / recall, the
confusion matrix and micro-averaged ROC / precision-recall curves, beside a classical baseline
fitted on the same training split and scored on the same test sequences: MiniRocket features
(sktime, sequences zero-padded in standardised units) with a ridge classifier
(`minirocket_baseline`). The release compares the candidate with the champion, and with the
baseline, by McNemar's exact test on per-example correctness.

The text task (`seqops.tasks.text`) is the same classifier over token ids; it reuses the
evaluation, the scorer and the model-card parts defined here.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
import pandas as pd
from pydantic import model_validator

from seqops.contracts import Bundle, DataMeta, DataReport, MetricsReport, Scaler
from seqops.errors import DataError
from seqops.layout import split_file
from seqops.tasks.base import (
    Check,
    Codec,
    Evaluation,
    PairedScores,
    Prepared,
    Quality,
    RunModel,
    Scorer,
    Task,
    mcnemar,
)

if TYPE_CHECKING:
    import torch
    from mlflow.models import ModelSignature

    from seqops.config import DataConfig, TrainConfig
    from seqops.data.sequences import SequenceSet
    from seqops.model.network import SequenceNet
    from seqops.serving import Predictor

SPLITS = ("train", "val", "test")

#: Bootstrap resamples behind the model card's intervals.
BOOTSTRAP = 1000


class ClassificationMeta(DataMeta):
    classifier: ClassVar[bool] = True

    task: Literal["sequence_classification"] = "sequence_classification"
    input: Literal["x"] = "x"
    scaler: Scaler

    @model_validator(mode="after")
    def _scaler_per_feature(self) -> ClassificationMeta:
        self.scaler.check_features(len(self.feature_names))
        return self


# -- prepare ----------------------------------------------------------------------------------


def encode_labels(raw: list[str], names: list[str], where: str) -> np.ndarray:
    index = {name: i for i, name in enumerate(names)}
    unknown = sorted(set(raw) - set(index))
    if unknown:
        raise DataError(f"{where}: label(s) {unknown} never appear in the training split")
    return np.array([index[v] for v in raw], dtype=np.int64)


def check_nonempty(sequences: list[np.ndarray], where: str) -> None:
    if not sequences:
        raise DataError(f"{where}: no sequences")
    for i, s in enumerate(sequences):
        if len(s) == 0:
            raise DataError(f"{where}: sequence {i} has no steps")
        if not np.isfinite(s).all():
            raise DataError(f"{where}: sequence {i} holds NaN or infinite values")


def load_sequences(data: DataConfig) -> tuple[Any, Any | None, str]:
    """The raw labelled sequences: a bundled set's official train and test splits, or a user
    file (test None: carved out by the caller)."""
    from seqops.data.sources import load_bundled, load_long_file

    if data.dataset is not None:
        source = f"sktime:{data.dataset}"
        train, test = load_bundled(data.dataset, "train"), load_bundled(data.dataset, "test")
        check_nonempty(train.sequences, source)
        check_nonempty(test.sequences, source)
        return train, test, source
    assert data.path is not None
    raw = load_long_file(
        data.path,
        id_column=data.id_column,
        time_column=data.time_column,
        label_column=data.label_column,
        feature_columns=data.feature_columns,
        time_format=data.time_format,
    )
    check_nonempty(raw.sequences, str(data.path))
    return raw, None, str(data.path)


def longest_sequence(splits: dict[str, SequenceSet]) -> int:
    """Steps of the longest sequence in any split (export refuses a smaller max_length)."""
    return int(max(s.lengths.max() for s in splits.values()))


def class_report(splits: dict[str, SequenceSet], names: list[str]) -> dict[str, Any]:
    return {
        "n_classes": len(names),
        "class_counts": {
            split: {
                names[c]: int(n)
                for c, n in zip(*np.unique(s.labels, return_counts=True), strict=True)
            }
            for split, s in splits.items()
        },
    }


# -- evaluate ---------------------------------------------------------------------------------

#: MiniRocket's kernels span 9 steps: shorter sets are zero-padded to this length.
MINIROCKET_MIN_LENGTH = 9
#: Ridge penalties RidgeClassifierCV chooses from by leave-one-out on the training split (the
#: ROCKET papers' grid).
RIDGE_ALPHAS = tuple(np.logspace(-3, 3, 10).tolist())


def padded_panel(sequences: list[np.ndarray], length: int) -> np.ndarray:
    """`(N, F, length)`: each `(T_i, F)` sequence zero-padded at the end (standardised units,
    so padding is the training mean) or cut to `length`."""
    panel = np.zeros((len(sequences), sequences[0].shape[1], length))
    for i, s in enumerate(sequences):
        steps = min(len(s), length)
        panel[i, :, :steps] = s[:steps].T
    return panel


def minirocket_baseline(train: SequenceSet, test: SequenceSet) -> np.ndarray:
    """Test class indices of MiniRocket + RidgeClassifierCV fitted on `train` (Dempster et al.
    2021), the strong, cheap time-series classifier: 10k random convolution features
    (sktime's `MiniRocketMultivariate`, seeded) on sequences zero-padded to the longest
    training or test length, standardised, and a ridge classifier whose penalty leave-one-out
    picks on the training split. MiniRocket rather than ROCKET: as accurate on the UCR archive
    and about 10x faster; numba compiles its kernels on the first call in an environment
    (about 30 s, cached afterwards)."""
    from sklearn.linear_model import RidgeClassifierCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sktime.transformations.rocket import MiniRocketMultivariate

    length = max(int(train.lengths.max()), int(test.lengths.max()), MINIROCKET_MIN_LENGTH)
    features = MiniRocketMultivariate(random_state=0, n_jobs=1)
    x_train = features.fit_transform(padded_panel(train.sequences, length))
    x_test = features.transform(padded_panel(test.sequences, length))
    ridge = make_pipeline(StandardScaler(), RidgeClassifierCV(alphas=RIDGE_ALPHAS))
    ridge.fit(np.asarray(x_train), train.labels)
    return np.asarray(ridge.predict(np.asarray(x_test)), dtype=np.int64)


def warm_baseline() -> None:
    """Compile MiniRocket's numba kernels into the environment's cache (`make install` calls
    this), so no pipeline run or test pays the compilation."""
    from seqops.data.sequences import SequenceSet

    rng = np.random.default_rng(0)
    sequences = [rng.normal(size=(12, 2)).astype(np.float32) for _ in range(4)]
    tiny = SequenceSet(sequences, np.array([0, 1, 0, 1], dtype=np.int64))
    minirocket_baseline(tiny, tiny)


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


# -- serving ----------------------------------------------------------------------------------


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=-1, keepdims=True)


class ClassifierCodec(Codec):
    """Rows → model inputs (the subclass says how), logits → id, `label`, `p_<class>`."""

    def __init__(self, bundle: Bundle) -> None:
        self.bundle = bundle
        self.label_names = bundle.data.label_names

    @property
    def probability_columns(self) -> list[str]:
        return [f"p_{name}" for name in self.label_names]

    def inputs(self, frame: pd.DataFrame, where: str) -> tuple[list[Any], list[np.ndarray]]:
        raise NotImplementedError

    def predict_proba(self, sequences: list[np.ndarray], run: RunModel) -> np.ndarray:
        from seqops.serving import run_batches

        return softmax(run_batches(sequences, run))

    def predict_frame(self, frame: pd.DataFrame, run: RunModel, where: str) -> pd.DataFrame:
        ids, sequences = self.inputs(frame, where)
        probs = self.predict_proba(sequences, run)
        out = pd.DataFrame(probs.astype(np.float64), columns=self.probability_columns)
        out.insert(0, "label", [self.label_names[i] for i in probs.argmax(axis=1)])
        out.insert(0, self.bundle.id_column, ids)
        return out

    def output_columns(self) -> list[Any]:
        from mlflow.types.schema import AnyType, ColSpec, DataType

        columns: list[Any] = [
            ColSpec(AnyType(), self.bundle.id_column),
            ColSpec(DataType.string, "label"),
        ]
        return columns + [ColSpec(DataType.double, name) for name in self.probability_columns]


class SequenceCodec(ClassifierCodec):
    """Long-format rows (id, time, every feature) → standardised `(T, F)` sequences.

    Id and time accept any type (string or integer ids, integer or float or timestamp steps);
    features must be doubles, so the scoring server rejects text with a 400 before predict."""

    def __init__(self, bundle: Bundle) -> None:
        super().__init__(bundle)
        scaler = bundle.data.scaler  # type: ignore[attr-defined]
        self.mean = np.asarray(scaler.mean, dtype=np.float64)
        self.std = np.asarray(scaler.std, dtype=np.float64)

    def inputs(self, frame: pd.DataFrame, where: str) -> tuple[list[Any], list[np.ndarray]]:
        from seqops.serving import long_format_sequences

        return long_format_sequences(frame, self.bundle, self.mean, self.std, where)

    def signature(self) -> ModelSignature:
        from mlflow.models import ModelSignature
        from mlflow.types.schema import AnyType, ColSpec, DataType, Schema

        b = self.bundle
        inputs: list[Any] = [ColSpec(AnyType(), b.id_column), ColSpec(AnyType(), b.time_column)]
        inputs += [ColSpec(DataType.double, name) for name in b.data.feature_names]
        return ModelSignature(Schema(inputs), Schema(self.output_columns()))


def example_frame(test: SequenceSet, bundle: Bundle, n: int) -> pd.DataFrame:
    """The first `n` test sequences back in raw long format (un-standardised), ids `seq<i>`."""
    scaler = bundle.data.scaler  # type: ignore[attr-defined]
    mean, std = np.asarray(scaler.mean), np.asarray(scaler.std)
    rows = []
    for i in range(min(n, len(test))):
        raw = test.sequences[i].astype(np.float64) * std + mean  # (T, F)
        for t, step in enumerate(raw):
            rows.append(
                {
                    bundle.id_column: f"seq{i}",
                    bundle.time_column: t,
                    **dict(zip(bundle.data.feature_names, step.tolist(), strict=True)),
                }
            )
    return pd.DataFrame(rows)


# -- release ----------------------------------------------------------------------------------


def mcnemar_regression(
    candidate_correct: np.ndarray, champion_correct: np.ndarray, alpha: float
) -> Check:
    """Paired exact test: does the candidate get significantly fewer examples right?"""
    p_value, only_champion, only_candidate = mcnemar(candidate_correct, champion_correct)
    regressed = only_champion > only_candidate and p_value < alpha
    return Check(
        "no_regression_vs_champion",
        p_value,
        alpha,
        not regressed,
        f"McNemar exact: champion-only correct {only_champion}, candidate-only correct "
        f"{only_candidate}, p={p_value:.4g}",
    )


class CorrectnessScorer(Scorer):
    """Per-example correctness of a served classifier on the raw test requests; McNemar."""

    def __init__(self, requests: pd.DataFrame, truth: list[str], id_column: str) -> None:
        self.requests, self.truth, self.id_column = requests, truth, id_column

    def score(self, model: Any) -> np.ndarray:
        predictions = model.predict(self.requests)
        by_id = dict(zip(predictions[self.id_column], predictions["label"], strict=True))
        return np.array([by_id[f"seq{i}"] == label for i, label in enumerate(self.truth)])

    def compare(self, candidate: np.ndarray, champion: np.ndarray, alpha: float) -> Check:
        return mcnemar_regression(candidate, champion, alpha)


# -- model card -------------------------------------------------------------------------------


def resampled_f1_and_ece(
    counts: np.ndarray, actual: np.ndarray, probs: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Macro-F1 and ECE of each resample, `counts` `(B, n)` being how often each of the n
    examples (true class `actual`, class probabilities `probs` `(n, C)`) is drawn.

    Both are sums of per-example quantities, so all resamples are one matrix product, not a
    loop. Macro-F1 is sklearn's (`2 tp / (predicted + actual)` per class, 0 for a class absent
    from both); ECE is torchmetrics' (15 equal-width confidence bins, L1): a bin's share times
    |accuracy - confidence| is |Σ correct - Σ confidence| / n over its examples."""
    predicted = probs.argmax(axis=1)
    confidence = probs.max(axis=1).astype(np.float64)
    hit = (predicted == actual).astype(np.float64)
    bins = np.clip(np.searchsorted(np.linspace(0, 1, 16), confidence, side="right") - 1, 0, 14)

    classes = np.arange(probs.shape[1])
    is_actual = (actual[:, None] == classes).astype(np.float64)  # (n, C)
    is_predicted = (predicted[:, None] == classes).astype(np.float64)
    tp = counts @ (is_actual * is_predicted)  # (B, C)
    support = counts @ is_actual + counts @ is_predicted
    f1s = np.divide(2 * tp, support, out=np.zeros_like(tp), where=support > 0).mean(axis=1)

    in_bin = (bins[:, None] == np.arange(15)).astype(np.float64)  # (n, 15)
    gap = counts @ (in_bin * (hit - confidence)[:, None])  # (B, 15)
    return f1s, np.abs(gap).sum(axis=1) / counts.sum(axis=1)


def confidence_intervals(
    predictions: pd.DataFrame, seed: int = 0
) -> dict[str, tuple[float, float]]:
    """95 % intervals: Wilson for accuracy, percentile bootstrap (`BOOTSTRAP` resamples of the
    test examples, `resampled_f1_and_ece`) for macro-F1 and ECE."""
    from statsmodels.stats.proportion import proportion_confint

    correct = predictions["correct"].to_numpy()
    n = len(predictions)
    low, high = proportion_confint(int(correct.sum()), n, alpha=0.05, method="wilson")
    prob_cols = [c for c in predictions.columns if c.startswith("p_")]
    names = [c[2:] for c in prob_cols]
    actual = np.array([names.index(str(a)) for a in predictions["actual"]])
    probs = predictions[prob_cols].to_numpy(dtype=np.float32)
    idx = np.random.default_rng(seed).integers(0, n, (BOOTSTRAP, n))
    counts = np.zeros((BOOTSTRAP, n))
    np.add.at(counts, (np.arange(BOOTSTRAP)[:, None], idx), 1.0)
    f1s, eces = resampled_f1_and_ece(counts, actual, probs)
    return {
        "accuracy": (float(low), float(high)),
        "f1_macro": (float(np.percentile(f1s, 2.5)), float(np.percentile(f1s, 97.5))),
        "ece": (float(np.percentile(eces, 2.5)), float(np.percentile(eces, 97.5))),
    }


def classification_card_metrics(metrics: MetricsReport, predictions: pd.DataFrame) -> list[str]:
    from seqops.markdown import fmt, table

    ci = confidence_intervals(predictions)
    rows = [
        (f"test/{m}", fmt(metrics.test.get(m)), f"[{ci[m][0]:.4f}, {ci[m][1]:.4f}]", how)
        for m, how in (
            ("accuracy", "Wilson"),
            ("f1_macro", f"bootstrap ×{BOOTSTRAP}"),
            ("ece", f"bootstrap ×{BOOTSTRAP}"),
        )
    ]
    return [
        table(("metric", "value", "95 % CI", "method"), rows),
        "",
        f"On {metrics.test.get('n')} test sequences.",
    ]


# -- the task ---------------------------------------------------------------------------------


class ClassifierTask(Task):
    """What every classifier shares: objective, evaluation, parity, scorer, card metrics."""

    metrics: ClassVar[frozenset[str]] = frozenset({"accuracy", "f1_macro", "ece"})
    val_metrics: ClassVar[frozenset[str]] = frozenset({"accuracy", "f1_macro"})
    stratified_folds: ClassVar[bool] = True

    def objective(self, meta: Any, train: TrainConfig) -> dict[str, Any]:
        return {
            "kind": "classification",
            "n_classes": meta.n_outputs,
            "label_smoothing": train.label_smoothing,
        }

    def evaluate(self, system: SequenceNet, processed: Path, meta: Any) -> ClassificationEvaluation:
        import torch

        from seqops.data.sequences import SequenceSet

        test = SequenceSet.load(processed / split_file("test"))
        probs = predict_proba(system, test)
        return ClassificationEvaluation(
            probs,
            torch.from_numpy(test.labels),
            meta.label_names,
            self.name,
            self.baselines(processed),
        )

    def baselines(self, processed: Path) -> dict[str, np.ndarray]:
        """Test class indices of the classical baseline(s), fitted on the training split."""
        return {}

    def paired_scores(self, metrics: MetricsReport, predictions: pd.DataFrame) -> PairedScores:
        actual = predictions["actual"].astype(str)
        return PairedScores(
            "correct",
            predictions["correct"].to_numpy().astype(bool),
            {
                name: (predictions[name].astype(str) == actual).to_numpy()
                for name in metrics.baseline or {}
            },
        )

    def agreement(self, got: np.ndarray, expected: np.ndarray) -> int | None:
        return int((got.argmax(axis=1) == expected.argmax(axis=1)).sum())

    def quality(self, predictor: Predictor, processed: Path) -> Quality:
        from seqops.data.sequences import SequenceSet

        test = SequenceSet.load(processed / split_file("test"))
        logits = predictor.run_sequences(test.sequences)
        accuracy = float((logits.argmax(axis=1) == test.labels).mean())
        return Quality("test/accuracy", accuracy, lower_is_better=False)

    def scorer(self, processed: Path, bundle: Bundle) -> Scorer:
        from seqops.data.sequences import SequenceSet

        test = SequenceSet.load(processed / split_file("test"))
        requests = self.request_example(processed, bundle, n=len(test))
        truth = [bundle.data.label_names[y] for y in test.labels]
        return CorrectnessScorer(requests, truth, bundle.id_column)

    def card_targets(self, report: DataReport) -> str:
        return str(report.n_classes)

    def card_metrics(self, metrics: MetricsReport, predictions: pd.DataFrame) -> list[str]:
        return classification_card_metrics(metrics, predictions)


class SequenceClassification(ClassifierTask):
    name = "sequence_classification"
    # Chosen on validation splits carved from the training data (README, "Against classical
    # baselines"): lower validation loss on all five sets checked, accuracy level on average.
    augment: ClassVar[dict[str, float] | None] = {
        "augment_noise": 0.1,
        "augment_scale": 0.1,
        "augment_crop": 0.0,
    }
    meta_type = ClassificationMeta

    def prepare(self, data: DataConfig, seed: int) -> Prepared:
        from seqops.data.scaling import ChannelScaler
        from seqops.data.sequences import SequenceSet
        from seqops.data.splits import check_class_sizes, stratified_split

        raw, raw_test, source = load_sequences(data)
        names = sorted(set(raw.labels))
        everything = SequenceSet(raw.sequences, encode_labels(raw.labels, names, source))
        carved = ["train", "validation"] + (["test"] if raw_test is None else [])
        check_class_sizes(everything.labels, names, carved, source)
        if raw_test is None:
            keep, held = stratified_split(
                everything.labels, data.test_fraction, seed, names=names, what="test"
            )
            train_all, test = everything.subset(keep), everything.subset(held)
        else:
            train_all = everything
            test = SequenceSet(raw_test.sequences, encode_labels(raw_test.labels, names, source))
        if len(names) < 2:
            raise DataError(
                f"{source}: {data.label_column!r} has one class ({names}); need at least 2"
            )
        keep, held = stratified_split(
            train_all.labels, data.val_fraction, seed, names=names, what="validation"
        )
        train, val = train_all.subset(keep), train_all.subset(held)
        scaler = ChannelScaler.fit(train.sequences)
        splits = {
            name: SequenceSet(scaler.transform(part.sequences), part.labels)
            for name, part in zip(SPLITS, (train, val, test), strict=True)
        }
        meta = ClassificationMeta(
            feature_names=raw.feature_names,
            label_names=names,
            n_outputs=len(names),
            max_train_length=longest_sequence(splits),
            scaler=Scaler(**scaler.to_dict()),
        )
        return Prepared(splits, meta, source, class_report(splits, names), files={})

    def summary(self, report: DataReport) -> str:
        return (
            f"prepare: {report.n_train} train / {report.n_val} val / {report.n_test} test "
            f"sequences, {report.n_features} features, {report.n_classes} classes "
            f"from {report.source}"
        )

    def baselines(self, processed: Path) -> dict[str, np.ndarray]:
        from seqops.data.sequences import SequenceSet

        train = SequenceSet.load(processed / split_file("train"))
        test = SequenceSet.load(processed / split_file("test"))
        return {"minirocket": minirocket_baseline(train, test)}

    def request_example(self, processed: Path, bundle: Bundle, n: int) -> pd.DataFrame:
        from seqops.data.sequences import SequenceSet

        return example_frame(SequenceSet.load(processed / split_file("test")), bundle, n)

    def codec(self, bundle: Bundle, files: dict[str, Path]) -> Codec:
        return SequenceCodec(bundle)

    def card_inputs(self, report: DataReport) -> str:
        return str(report.n_features)

    def card_use(self, report: DataReport) -> str:
        return (
            f"Classifies variable-length multivariate sequences shaped like `{report.source}` "
            f"({report.n_features} standardised channels) into one of {report.n_classes} "
            "classes. Inputs go through `preprocessing.json` (the training split's scaler); "
            "sequences longer than the export's `max_length` are rejected, not truncated. "
            "The test set is finite, so read the intervals above; the model has not been "
            "checked for distribution shift or adversarial input. Use the probabilities with "
            "care: see the calibration error above."
        )
