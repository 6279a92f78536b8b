"""`sequence_classification`'s release part: the classifiers' McNemar scorer on long-format
requests."""

from __future__ import annotations

from seqops.tasks.classification.serve import SequenceClassificationServe
from seqops.tasks.classification.task import ClassificationMeta, ClassificationReport
from seqops.tasks.classifier.release import ClassifierRelease


class SequenceClassificationRelease(
    ClassifierRelease[ClassificationMeta, ClassificationReport], SequenceClassificationServe
):
    """Correctness of the served model on the test sequences' long-format rows."""
