"""`sequence_classification`'s train part: the classifier's objective, and the random-kernel
path's network arguments (`model.kernel_features`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from seqops.tasks.base import kernel_network_args
from seqops.tasks.classification.task import (
    ClassificationMeta,
    ClassificationReport,
    SequenceClassification,
)
from seqops.tasks.classifier.train import ClassifierTrain

if TYPE_CHECKING:
    from seqops.config import ModelConfig


class SequenceClassificationTrain(
    ClassifierTrain[ClassificationMeta, ClassificationReport], SequenceClassification
):
    def network_args(
        self, meta: ClassificationMeta, processed: Path, model: ModelConfig
    ) -> dict[str, Any]:
        return kernel_network_args(meta.max_train_length, model)
