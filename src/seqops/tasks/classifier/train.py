"""What every classifier's train part shares: the classification objective (`ClassifierTrain`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from seqops.contracts import MetaT, MetricsReport
from seqops.tasks.classifier.task import ClassReportT
from seqops.tasks.parts.train import TrainTask

if TYPE_CHECKING:
    from seqops.config import ModelConfig, TrainConfig


class ClassifierTrain(TrainTask[MetaT, ClassReportT, MetricsReport]):
    """A classifier's train part: cross-entropy over its classes."""

    def objective(self, meta: MetaT, train: TrainConfig, model: ModelConfig) -> dict[str, Any]:
        return {
            "kind": "classification",
            "n_classes": meta.n_outputs,
            "label_smoothing": train.label_smoothing,
        }
