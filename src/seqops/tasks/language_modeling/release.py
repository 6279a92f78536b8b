"""release for a language model: per-block NLL, the paired sign test and its scorer.

    scores = paired_block_scores(metrics, predictions)    # model and Kneser-Ney per test block
    scorer = BlockScorer(requests, id_column, units)      # a served model on the raw test blocks
    scorer.compare(candidate, champion, alpha)

Per block (`data.block_tokens` tokens of one test document) what is kept is `(nll_nats,
n_tokens)`; the value of a set of blocks is the unit's metric of their sums (bits per char,
or perplexity: lower is better). The paired test is a one-sided exact sign test over blocks
on each block's NLL per token (`stats.sign_test`); the interval a paired bootstrap of blocks.
The model against the baseline reads evaluate's blocks (each token predicted from its
document's whole history); candidate against champion serves each raw test block on its own
(the first token of a block is context only), both models the same way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from seqops.contracts import Bundle
from seqops.stats import BOOTSTRAP, PairedScores, sign_test
from seqops.tasks.base import Check
from seqops.tasks.language_modeling.meta import (
    LanguageModelMeta,
    LanguageModelMetrics,
    LanguageModelReport,
)
from seqops.tasks.language_modeling.metrics import METRIC, unit_metrics
from seqops.tasks.language_modeling.serve import LanguageModelingServe, block_requests
from seqops.tasks.parts.release import ReleaseTask, Scorer


def metric_value(units: str, scores: np.ndarray) -> float:
    """The unit's metric of `(n, 2)` per-block `(nll_nats, n_tokens)`, summed."""
    nll, n = np.asarray(scores, dtype=np.float64).reshape(-1, 2).sum(axis=0)
    return next(iter(unit_metrics(units, float(nll), int(n)).values()))  # type: ignore[arg-type]


def per_token(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each block's mean NLL per token, and which blocks score any token."""
    scores = np.asarray(scores, dtype=np.float64).reshape(-1, 2)
    scored = scores[:, 1] > 0
    return np.where(scored, scores[:, 0] / np.maximum(scores[:, 1], 1), 0.0), scored


def block_sign_test(candidate: np.ndarray, reference: np.ndarray) -> tuple[float, int, int]:
    """The sign test over the blocks both score: p, blocks where the candidate's NLL per
    token is higher, blocks where it is lower."""
    ours, scored = per_token(candidate)
    theirs, _ = per_token(reference)
    return sign_test(ours[scored], theirs[scored])


def bootstrap_difference(
    units: str, model: np.ndarray, reference: np.ndarray, seed: int = 0, resamples: int = BOOTSTRAP
) -> tuple[float, float]:
    """Percentile bootstrap 95 % interval of metric(model) - metric(reference), blocks
    resampled in pairs."""
    n = len(model)
    idx = np.random.default_rng(seed).integers(0, n, (resamples, n))
    weights = np.zeros((resamples, n))
    np.add.at(weights, (np.arange(resamples)[:, None], idx), 1.0)

    def values(scores: np.ndarray) -> np.ndarray:
        nll, tokens = (weights @ np.asarray(scores, dtype=np.float64)).T
        mean = nll / np.maximum(tokens, 1)
        return mean / math.log(2) if units == "char" else np.exp(mean)

    diffs = values(model) - values(reference)
    return float(np.percentile(diffs, 2.5)), float(np.percentile(diffs, 97.5))


@dataclass(frozen=True)
class BlockPairedScores(PairedScores):
    """`PairedScores` whose per-example scores are `(n_blocks, 2)` `(nll_nats, n_tokens)`;
    `kind="error"` tells the gate that lower is better."""

    units: str = "char"

    @property
    def metric(self) -> str:
        return METRIC[self.units]  # type: ignore[index]

    def value(self, scores: np.ndarray) -> float:
        return metric_value(self.units, scores)

    def difference(self, name: str) -> float:
        return self.value(self.model) - self.value(self.baselines[name])

    def interval(self, name: str, seed: int = 0, resamples: int = BOOTSTRAP) -> tuple[float, float]:
        return bootstrap_difference(self.units, self.model, self.baselines[name], seed, resamples)

    def worse_than(self, name: str) -> tuple[float, bool, str]:
        baseline = self.baselines[name]
        p_value, worse, better = block_sign_test(self.model, baseline)
        ours, theirs = self.value(self.model), self.value(baseline)
        return (
            p_value,
            ours > theirs,
            f"{self.metric} {ours:.4f} vs {name} {theirs:.4f}; the model's NLL per token higher "
            f"on {worse} blocks, lower on {better} (sign test, one-sided p={p_value:.3g})",
        )


def paired_block_scores(
    metrics: LanguageModelMetrics, predictions: pd.DataFrame
) -> BlockPairedScores:
    """The model's and each baseline's per-block `(nll, n_tokens)` from `predictions.csv`."""
    tokens = predictions["n_tokens"].to_numpy(dtype=np.float64)

    def scores(column: str) -> np.ndarray:
        return np.stack([predictions[column].to_numpy(dtype=np.float64), tokens], axis=1)

    return BlockPairedScores(
        "error",
        scores("model"),
        {name: scores(name) for name in metrics.baseline or {}},
        units=metrics.units,
    )


def no_regression(candidate: np.ndarray, champion: np.ndarray, alpha: float, units: str) -> Check:
    """The candidate's metric must not be significantly worse than the champion's over the
    same served blocks (one-sided sign test on each block's NLL per token)."""
    p_value, worse, better = block_sign_test(candidate, champion)
    ours, theirs = metric_value(units, candidate), metric_value(units, champion)
    metric = METRIC[units]  # type: ignore[index]
    return Check(
        "no_regression_vs_champion",
        p_value,
        alpha,
        not (ours > theirs and p_value < alpha),
        f"{metric} candidate {ours:.4f} vs champion {theirs:.4f} on {len(candidate)} test "
        f"blocks; candidate worse on {worse}, better on {better} (sign test, one-sided "
        f"p={p_value:.4g})",
    )


class BlockScorer(Scorer):
    """Per-block `(nll_nats, n_tokens)` of a served language model on the raw test blocks."""

    def __init__(self, requests: pd.DataFrame, id_column: str, units: str) -> None:
        self.requests, self.id_column, self.units = requests, id_column, units

    def score(self, model: Any) -> np.ndarray:
        answer = model.predict(self.requests)
        by_id = answer.set_index(self.id_column)
        rows = by_id.loc[self.requests[self.id_column]]
        return np.stack(
            [rows["nll"].to_numpy(dtype=np.float64), rows["n_tokens"].to_numpy(dtype=np.float64)],
            axis=1,
        )

    def compare(self, candidate: np.ndarray, champion: np.ndarray, alpha: float) -> Check:
        return no_regression(candidate, champion, alpha, self.units)


class LanguageModelingRelease(
    ReleaseTask[LanguageModelMeta, LanguageModelReport, LanguageModelMetrics],
    LanguageModelingServe,
):
    """Blocks of the test documents: the sign test against the champion, bits (or nats) per
    token beside Kneser-Ney's."""

    def scorer(self, processed: Path, bundle: Bundle[LanguageModelMeta]) -> Scorer:
        return BlockScorer(block_requests(processed, bundle), bundle.id_column, bundle.data.units)

    def paired_scores(
        self, metrics: LanguageModelMetrics, predictions: pd.DataFrame
    ) -> PairedScores:
        return paired_block_scores(metrics, predictions)
