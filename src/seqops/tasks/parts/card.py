"""The model card's task-specific sections: the `CardTask` part and its registry.

    card = get_card(data.task)   # only `seqops.model_card` (the release stage) looks it up
    card.card_inputs(report), card.card_metrics(metrics, predictions), ...

Each task's part lives in its own package (`seqops.tasks.<task>.card`); no other stage
imports one, so editing a card's wording leaves prepare, tune, train, evaluate and export
up to date.
"""

from __future__ import annotations

from abc import abstractmethod
from functools import cache
from typing import Any

import pandas as pd

from seqops.contracts import MetaT
from seqops.stats import PairedScores
from seqops.tasks.base import MetricsT, ReportT, Task


class CardTask(Task[MetaT, ReportT, MetricsT]):
    """A task's model-card sections (what `seqops.model_card` renders around them)."""

    @abstractmethod
    def card_inputs(self, report: ReportT) -> str: ...

    @abstractmethod
    def card_targets(self, report: ReportT) -> str: ...

    def card_data(self, report: ReportT) -> str:
        """The paragraph under the data table."""
        return "Sequence lengths (min / median / max): " + ", ".join(
            f"{split} {v.min} / {v.median:g} / {v.max}" for split, v in report.length.items()
        )

    @abstractmethod
    def card_metrics(self, metrics: MetricsT, predictions: pd.DataFrame) -> list[str]:
        """The test-metrics section's lines (with confidence intervals)."""

    @abstractmethod
    def card_use(self, report: ReportT) -> str:
        """Intended use and limits."""


def baseline_card_lines(scores: PairedScores) -> list[str]:
    """The model card's comparison with the classical baselines: each one's test score, the
    model's difference and its paired-bootstrap interval."""
    from seqops.markdown import fmt, table

    rows = [("model", fmt(scores.value(scores.model)), "—", "—")]
    for name, baseline in scores.baselines.items():
        low, high = scores.interval(name)
        rows.append(
            (name, fmt(scores.value(baseline)), f"{scores.difference(name):+.4g}",
             f"[{low:+.4g}, {high:+.4g}]")
        )  # fmt: skip
    better = "higher" if scores.kind == "correct" else "lower"
    return [
        table(("predictor", f"test {scores.metric}", "model − baseline", "95 % CI"), rows),
        "",
        f"Classical baselines fitted on the examples the model learned from (the training "
        f"split; train + val for a kernel-only model) and scored on the same test "
        f"examples; {better} {scores.metric} is better. Intervals: paired percentile bootstrap "
        "×1000 over test examples.",
    ]


@cache
def _cards() -> dict[str, CardTask[Any, Any, Any]]:
    from seqops.tasks.classification.card import SequenceClassificationCard
    from seqops.tasks.forecasting.card import ForecastingCard
    from seqops.tasks.language_modeling.card import LanguageModelingCard
    from seqops.tasks.regression.card import SequenceRegressionCard
    from seqops.tasks.sequence_labeling.card import SequenceLabelingCard
    from seqops.tasks.text.card import TextClassificationCard

    parts: tuple[CardTask[Any, Any, Any], ...] = (
        SequenceClassificationCard(),
        TextClassificationCard(),
        ForecastingCard(),
        SequenceRegressionCard(),
        SequenceLabelingCard(),
        LanguageModelingCard(),
    )
    return {part.name: part for part in parts}


def get_card(name: str) -> CardTask[Any, Any, Any]:
    """The model-card part of task `name` (a name `get_task` knows)."""
    from seqops.tasks import get_task

    get_task(name)  # an unknown name raises the same DataError as every lookup
    return _cards()[name]
