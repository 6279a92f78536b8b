"""What every classifier's seam and prepare / train parts share: label encoding, the class
report and the classification objective (`ClassifierTask`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import numpy as np

from seqops.contracts import DataReport, MetaT, MetricsReport
from seqops.errors import DataError
from seqops.tasks.base import Task

if TYPE_CHECKING:
    from seqops.config import ModelConfig, TrainConfig
    from seqops.data.sequences import SequenceSet


def encode_labels(raw: list[str], names: list[str], where: str) -> np.ndarray:
    index = {name: i for i, name in enumerate(names)}
    unknown = sorted(set(raw) - set(index))
    if unknown:
        raise DataError(f"{where}: label(s) {unknown} never appear in the training split")
    return np.array([index[v] for v in raw], dtype=np.int64)


class ClassReport(DataReport):
    """A classifier's `reports/data.json`: the shared fields, then its classes (each
    classification task subclasses it with its `task` literal)."""

    n_classes: int
    class_counts: dict[str, dict[str, int]]
    """Examples per class, per split."""

    def task_numbers(self) -> dict[str, Any]:
        return {"n_classes": self.n_classes}

    def examples_per_class(self) -> dict[str, dict[str, int]]:
        return self.class_counts


#: A classification task's own data report.
ClassReportT = TypeVar("ClassReportT", bound=ClassReport)


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


class ClassifierTask(Task[MetaT, ClassReportT, MetricsReport]):
    """What every classifier's seam shares: its metrics and its objective."""

    metrics: ClassVar[frozenset[str]] = frozenset({"accuracy", "f1_macro", "ece"})
    val_metrics: ClassVar[frozenset[str]] = frozenset({"accuracy", "f1_macro"})
    stratified_folds: ClassVar[bool] = True

    def objective(self, meta: MetaT, train: TrainConfig, model: ModelConfig) -> dict[str, Any]:
        return {
            "kind": "classification",
            "n_classes": meta.n_outputs,
            "label_smoothing": train.label_smoothing,
        }
