"""What every classifier's seam shares: the class report and the metrics (`ClassifierTask`)."""

from __future__ import annotations

from typing import Any, ClassVar, TypeVar

from seqops.contracts import DataReport, MetaT, MetricsReport
from seqops.tasks.base import Task


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


class ClassifierTask(Task[MetaT, ClassReportT, MetricsReport]):
    """What every classifier's seam shares: its metrics."""

    metrics: ClassVar[frozenset[str]] = frozenset({"accuracy", "f1_macro", "ece"})
    val_metrics: ClassVar[frozenset[str]] = frozenset({"accuracy", "f1_macro"})
    stratified_folds: ClassVar[bool] = True
