"""A classifier's model-card part: its targets (the classes) and its test metrics with
Wilson and bootstrap intervals."""

from __future__ import annotations

import pandas as pd

from seqops.contracts import MetaT, MetricsReport
from seqops.stats import BOOTSTRAP, confidence_intervals
from seqops.tasks.classifier.task import ClassReportT
from seqops.tasks.parts.card import CardTask


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


class ClassifierCard(CardTask[MetaT, ClassReportT, MetricsReport]):
    """The classes as targets; accuracy, macro-F1 and ECE with their intervals."""

    def card_targets(self, report: ClassReportT) -> str:
        return str(report.n_classes)

    def card_metrics(self, metrics: MetricsReport, predictions: pd.DataFrame) -> list[str]:
        return classification_card_metrics(metrics, predictions)
