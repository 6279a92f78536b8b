"""`sequence_classification`'s model-card part."""

from __future__ import annotations

from seqops.tasks.classification.task import (
    ClassificationMeta,
    ClassificationReport,
    SequenceClassification,
)
from seqops.tasks.classifier.card import ClassifierCard


class SequenceClassificationCard(
    ClassifierCard[ClassificationMeta, ClassificationReport], SequenceClassification
):
    def card_inputs(self, report: ClassificationReport) -> str:
        return str(report.n_features)

    def card_use(self, report: ClassificationReport) -> str:
        return (
            f"Classifies variable-length multivariate sequences shaped like `{report.source}` "
            f"({report.n_features} standardised channels) into one of {report.n_classes} "
            "classes. Inputs go through `preprocessing.json` (the training split's scaler); "
            "sequences longer than the export's `max_length` are rejected, not truncated. "
            "The test set is finite, so read the intervals above; the model has not been "
            "checked for distribution shift or adversarial input. Use the probabilities with "
            "care: see the calibration error above."
        )
