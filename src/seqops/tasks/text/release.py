"""`text_classification`'s release part: the classifiers' McNemar scorer on the raw test
texts."""

from __future__ import annotations

from seqops.tasks.classifier.release import ClassifierRelease
from seqops.tasks.text.serve import TextClassificationServe
from seqops.tasks.text.task import TextMeta, TextReport


class TextClassificationRelease(ClassifierRelease[TextMeta, TextReport], TextClassificationServe):
    """Correctness of the served model on the raw test texts."""
