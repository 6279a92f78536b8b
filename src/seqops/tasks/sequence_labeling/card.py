"""The model card's sections for a text tagger (what it reads, tags, scores and is for)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from seqops.markdown import fmt, table
from seqops.tasks.parts.card import CardTask
from seqops.tasks.sequence_labeling.meta import TextOrSeriesMeta
from seqops.tasks.sequence_labeling.release import (
    BOOTSTRAP,
    bootstrap_weights,
    paired_entity_scores,
    resampled_f1,
)
from seqops.tasks.sequence_labeling.reports import TextLabelingMetrics, TextLabelingReport
from seqops.tasks.sequence_labeling.task import LabelingMetrics, LabelingReport, SequenceLabeling

CHECKED = ("entity_f1", "entity_precision", "entity_recall", "token_accuracy")


def inputs(report: TextLabelingReport) -> str:
    return (
        f"tokens: {report.vocab_size:,} words and {report.char_vocab_size:,} characters "
        "(training split)"
    )


def targets(report: TextLabelingReport) -> str:
    return f"{report.n_classes} tags, one per token"


def data(report: TextLabelingReport) -> str:
    tokens = report.n_tokens
    entities = report.entity_counts
    return (
        "Sentences (tokens, entities): "
        + ", ".join(
            f"{split} {n:,} ({tokens.get(split, 0):,}, {sum(entities.get(split, {}).values()):,})"
            for split, n in (
                ("train", report.n_train),
                ("val", report.n_val),
                ("test", report.n_test),
            )
        )
        + f". Test tokens with a word outside the vocabulary: {report.test_unknown_token_rate:.1%}."
    )


def metrics_lines(metrics: TextLabelingMetrics, predictions: pd.DataFrame) -> list[str]:
    """The test scores with a sentence-bootstrap interval for entity F1, and per-type F1."""
    counts = paired_entity_scores(metrics, predictions).model
    samples = resampled_f1(bootstrap_weights(len(counts)), counts)
    low, high = float(np.percentile(samples, 2.5)), float(np.percentile(samples, 97.5))
    test = metrics.test
    rows = [("test/entity_f1", fmt(test.get("entity_f1")), f"[{low:.4f}, {high:.4f}]",
             f"bootstrap of sentences ×{BOOTSTRAP}")]  # fmt: skip
    rows += [(f"test/{m}", fmt(test.get(m)), "—", "—") for m in CHECKED[1:]]
    per_type = [
        (
            kind,
            fmt(v.get("f1")),
            fmt(v.get("precision")),
            fmt(v.get("recall")),
            f"{v.get('support', 0):.0f}",
        )
        for kind, v in (metrics.per_class or {}).items()
    ]
    return [
        table(("metric", "value", "95 % CI", "method"), rows),
        "",
        f"Entity scores as conlleval counts them (exact span and type), on {test.get('n')} test "
        f"sentences, {test.get('n_tokens')} tokens, {test.get('n_entities')} entities.",
        "",
        table(("entity type", "F1", "precision", "recall", "support"), per_type),
    ]


def use(report: TextLabelingReport) -> str:
    return (
        f"Tags each token of sentences like those of `{report.source}` with one of "
        f"{report.n_classes} BIO tags (named entities). Input is whitespace-separated tokens, "
        "looked up in `vocab.json` (built from the training split; unseen words become `[UNK]` "
        "and are read through their characters); sentences longer than the export's "
        "`max_length` are rejected, not cut. Entity F1 on noisy user text is low in absolute "
        "terms (read the interval and the per-type table: rare types are scored on few "
        "entities); the model has not been checked for distribution shift, other domains or "
        "adversarial input. Do not use its tags for decisions about the people it names."
    )


class SequenceLabelingCard(
    CardTask[TextOrSeriesMeta, LabelingReport, LabelingMetrics],
    SequenceLabeling,
):
    """The text tagger's sections (above) or the series labeller's (`series_card`)."""

    def card_inputs(self, report: LabelingReport) -> str:
        from seqops.tasks.sequence_labeling import series_card

        return series_card.inputs(report) if report.input == "x" else inputs(report)

    def card_targets(self, report: LabelingReport) -> str:
        from seqops.tasks.sequence_labeling import series_card

        return series_card.targets(report) if report.input == "x" else targets(report)

    def card_data(self, report: LabelingReport) -> str:
        from seqops.tasks.sequence_labeling import series_card

        return series_card.data(report) if report.input == "x" else data(report)

    def card_metrics(self, metrics: LabelingMetrics, predictions: pd.DataFrame) -> list[str]:
        if metrics.input == "x":
            from seqops.tasks.sequence_labeling import series_card

            return series_card.metrics_lines(metrics, predictions)
        return metrics_lines(metrics, predictions)

    def card_use(self, report: LabelingReport) -> str:
        from seqops.tasks.sequence_labeling import series_card

        return series_card.use(report) if report.input == "x" else use(report)
