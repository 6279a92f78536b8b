"""`text_classification`'s model-card part."""

from __future__ import annotations

from typing import TYPE_CHECKING

from seqops.tasks.classifier.card import ClassifierCard
from seqops.tasks.text.task import (
    TextClassification,
    TextMeta,
    TextReport,
)

if TYPE_CHECKING:
    pass

#: Logistic regression's inverse penalties, the one scoring best on validation is kept.
TFIDF_CS = (0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0)


class TextClassificationCard(ClassifierCard[TextMeta, TextReport], TextClassification):
    def card_inputs(self, report: TextReport) -> str:
        return f"{report.vocab_size:,}-token vocabulary"

    def card_use(self, report: TextReport) -> str:
        return (
            f"Classifies texts like those of `{report.source}` into one of {report.n_classes} "
            "classes. Raw text goes through `tokenizer.json` (fitted on the training split; "
            "unseen words become `[UNK]`, texts are truncated to the tokenizer's `max_len`). "
            "The test set is finite, so read the intervals above; the model has not been "
            "checked for distribution shift or adversarial input. Use the probabilities with "
            "care: see the calibration error above."
        )
