"""The model card's sections for a language model (what it reads, predicts, scores, is for)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from seqops.markdown import fmt, table
from seqops.stats import BOOTSTRAP
from seqops.tasks.language_modeling.meta import (
    LanguageModelMeta,
    LanguageModelMetrics,
    LanguageModelReport,
)
from seqops.tasks.language_modeling.metrics import METRIC
from seqops.tasks.language_modeling.release import metric_value, paired_block_scores
from seqops.tasks.language_modeling.task import LanguageModeling
from seqops.tasks.parts.card import CardTask

UNITS = {"char": "characters", "word": "words and punctuation marks"}


def inputs(report: LanguageModelReport) -> str:
    vocabulary = f"{report.vocab_size:,} token ids (training documents)"
    return f"a stream of {UNITS[report.units]}: {vocabulary}"


def targets(report: LanguageModelReport) -> str:
    return f"the next token: {report.vocab_size:,} scores per step"


def data(report: LanguageModelReport) -> str:
    return (
        "Documents (tokens): "
        + ", ".join(
            f"{split} {report.n_documents[split]:,} ({report.n_tokens[split]:,})"
            for split in ("train", "val", "test")
        )
        + f". Test documents: {', '.join(report.documents['test'])}. Test tokens outside the "
        f"training vocabulary ([UNK]): {report.test_unknown_rate:.2%}."
    )


def metrics_lines(metrics: LanguageModelMetrics, predictions: pd.DataFrame) -> list[str]:
    """The test metric with a bootstrap interval over test blocks (the comparison with
    Kneser-Ney is the card's baseline section)."""
    metric = METRIC[metrics.units]
    model = paired_block_scores(metrics, predictions).model
    idx = np.random.default_rng(0).integers(0, len(model), (BOOTSTRAP, len(model)))
    samples = [metric_value(metrics.units, model[i]) for i in idx]
    low, high = np.percentile(samples, [2.5, 97.5])
    test = metrics.test
    rows = [
        (f"test/{metric}", fmt(float(test[metric])), f"[{low:.4f}, {high:.4f}]",
         f"bootstrap of {len(model)} test blocks ×{BOOTSTRAP}"),
        ("test tokens", f"{int(test['n_tokens']):,}", "—", "all but each document's first"),
    ]  # fmt: skip
    return [
        table(("metric", "value", "95 % CI", "how"), rows),
        "",
        "Each test document is read whole from its start, the recurrent state carried, so every "
        "token is predicted from its document's whole history; lower is better.",
    ]


def use(report: LanguageModelReport) -> str:
    return (
        f"Scores and writes text like `{report.source}` ({UNITS[report.units]}): "
        "`seqops predict` gives a text's likelihood, `seqops generate` continues a prompt from "
        "the exported step graph. It knows only the training documents' vocabulary "
        "(anything else is [UNK]) and their style; generated text is not checked for facts "
        "or for reproducing the training text verbatim."
    )


class LanguageModelingCard(
    CardTask[LanguageModelMeta, LanguageModelReport, LanguageModelMetrics],
    LanguageModeling,
):
    """The sections above, as the model card asks for them."""

    def card_inputs(self, report: LanguageModelReport) -> str:
        return inputs(report)

    def card_targets(self, report: LanguageModelReport) -> str:
        return targets(report)

    def card_data(self, report: LanguageModelReport) -> str:
        return data(report)

    def card_metrics(self, metrics: LanguageModelMetrics, predictions: pd.DataFrame) -> list[str]:
        return metrics_lines(metrics, predictions)

    def card_use(self, report: LanguageModelReport) -> str:
        return use(report)
