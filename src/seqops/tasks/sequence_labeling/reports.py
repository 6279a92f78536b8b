"""What prepare and evaluate report about a labeling run (`reports/data.json`,
`reports/metrics.json`), one type per input, told apart by `input`.

Both reports carry the input prepare read (`tokens`: CoNLL text, `x`: numeric series, as
`LabelingMeta.input`), so a reader picks the text or the series type from that field, never
from which other keys the file holds:

    report = LABELING_REPORT.validate_python(raw)     # TextLabelingReport | SeriesLabelingReport
    if report.input == "x": report.n_steps            # narrowed to SeriesLabelingReport
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, TypeAdapter

from seqops.contracts import DataReport, MetricsReport


class LabelingReport(DataReport):
    """The fields both inputs share: the task, its input and the number of labels."""

    task: Literal["sequence_labeling"] = "sequence_labeling"
    input: Literal["tokens", "x"]
    """The input prepare read: `tokens` (CoNLL text) or `x` (numeric series)."""
    n_classes: int
    """Tags (text) or labels (series) of the training split."""

    def task_numbers(self) -> dict[str, Any]:
        return {"n_classes": self.n_classes}


class TextLabelingReport(LabelingReport):
    """Text: the vocabularies, the unknown-word rate and tags, entities and tokens per split."""

    input: Literal["tokens"] = "tokens"
    vocab_size: int
    """Word ids, `[PAD]` and `[UNK]` included, from the training split."""
    test_unknown_token_rate: float
    """Share of the test tokens whose word is `[UNK]`."""
    tag_counts: dict[str, dict[str, int]]
    """Tokens per tag, per split."""
    entity_counts: dict[str, dict[str, int]]
    """Entities per type, per split."""
    n_tokens: dict[str, int]
    """Tokens per split."""
    char_vocab_size: int
    """Character ids (padding and unknown included), from the training split."""

    def task_numbers(self) -> dict[str, Any]:
        return {
            **super().task_numbers(),
            "vocab_size": self.vocab_size,
            "test_unknown_token_rate": self.test_unknown_token_rate,
        }


class SeriesLabelingReport(LabelingReport):
    """Series: steps per split, and steps and segments per label, per split."""

    input: Literal["x"] = "x"
    n_steps: dict[str, int]
    """Time steps per split."""
    step_counts: dict[str, dict[str, int]]
    """Steps per label, per split."""
    segment_counts: dict[str, dict[str, int]]
    """Segments (maximal runs of one label) per label, per split."""


#: prepare's `reports/data.json` for either input (`Task.data_report_type`).
TextOrSeriesReport = Annotated[
    TextLabelingReport | SeriesLabelingReport, Field(discriminator="input")
]
LABELING_REPORT: TypeAdapter[TextLabelingReport | SeriesLabelingReport] = TypeAdapter(
    TextOrSeriesReport
)


class TextLabelingMetrics(MetricsReport):
    """Text: entity scores (conlleval) and token accuracy, per entity type in `per_class`."""

    task: Literal["sequence_labeling"] = "sequence_labeling"
    input: Literal["tokens"] = "tokens"


class SeriesLabelingMetrics(MetricsReport):
    """Series: segment and step scores, per label in `per_class`."""

    task: Literal["sequence_labeling"] = "sequence_labeling"
    input: Literal["x"] = "x"


#: evaluate's `reports/metrics.json` for either input (`Task.metrics_type`).
TextOrSeriesMetrics = Annotated[
    TextLabelingMetrics | SeriesLabelingMetrics, Field(discriminator="input")
]
LABELING_METRICS: TypeAdapter[TextLabelingMetrics | SeriesLabelingMetrics] = TypeAdapter(
    TextOrSeriesMetrics
)
