"""release for text tagging: entity F1 per sentence counts, and the paired test on them.

    scorer = EntityScorer(requests, gold, id_column)    # the raw test sentences and their tags
    counts = scorer.score(model)                        # (n_sentences, 3): correct, predicted, gold
    scorer.compare(candidate_counts, champion_counts, alpha)

Entity F1 is not a mean of per-sentence scores, so what is kept per test sentence is its
entity counts (correct, predicted, gold; `scoring.SentenceCounts`) and the paired test is
approximate randomisation over sentences (`scoring.paired_counts_test`, the test of
`scoring.paired_f1_test`). The same counts, of the model and of the CRF baseline, read from
`reports/predictions.csv`, are `EntityPairedScores`: the gate's baseline check and the model
card's comparison, with F1 computed from summed counts and a sentence bootstrap interval.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from seqops.contracts import Bundle
from seqops.stats import PairedScores
from seqops.tasks.base import Check
from seqops.tasks.parts.release import ReleaseTask, Scorer
from seqops.tasks.sequence_labeling.meta import TextOrSeriesMeta
from seqops.tasks.sequence_labeling.reports import TextLabelingMetrics
from seqops.tasks.sequence_labeling.scoring import SentenceCounts, paired_counts_test, score
from seqops.tasks.sequence_labeling.serve import (
    SequenceLabelingServe,
    _series,
    _series_requests,
    _test_requests,
)
from seqops.tasks.sequence_labeling.task import LabelingMetrics, LabelingReport

#: Resamples of the approximate-randomisation test and of the bootstrap interval.
RESAMPLES = 10_000
BOOTSTRAP = 1000


def counts_array(gold: list[tuple[str, ...]], predicted: list[list[str]]) -> np.ndarray:
    """`(n_sentences, 3)` int64 entity counts of `predicted` against `gold`: correct,
    predicted, gold per sentence."""
    sentences = score(gold, predicted).sentences
    return np.stack([sentences.correct, sentences.predicted, sentences.gold], axis=1)


def as_counts(array: np.ndarray) -> SentenceCounts:
    return SentenceCounts(*np.asarray(array, dtype=np.int64).T)


def entity_f1(array: np.ndarray) -> float:
    """Micro entity F1 of `(n, 3)` per-sentence counts."""
    return as_counts(array).total().f1


def no_regression(
    candidate: np.ndarray,
    champion: np.ndarray,
    alpha: float,
    shown: str = "entity F1",
    unit: str = "sentences",
) -> Check:
    """The candidate's F1 of summed `(n, 3)` counts (entities per sentence, or segments per
    series: `shown` and `unit` name them) must not be significantly below the champion's
    (one-sided approximate randomisation over the same test examples)."""
    p_value = paired_counts_test(as_counts(candidate), as_counts(champion), resamples=RESAMPLES)
    ours, theirs = entity_f1(candidate), entity_f1(champion)
    return Check(
        "no_regression_vs_champion",
        p_value,
        alpha,
        not (ours < theirs and p_value < alpha),
        f"{shown} candidate {ours:.4f} vs champion {theirs:.4f} on {len(candidate)} test "
        f"{unit} (approximate randomisation ×{RESAMPLES}, one-sided p={p_value:.4g})",
    )


def bootstrap_weights(n: int, seed: int = 0, resamples: int = BOOTSTRAP) -> np.ndarray:
    """`(resamples, n)`: how often each of n sentences is drawn in each bootstrap resample."""
    idx = np.random.default_rng(seed).integers(0, n, (resamples, n))
    weights = np.zeros((resamples, n))
    np.add.at(weights, (np.arange(resamples)[:, None], idx), 1.0)
    return weights


def resampled_f1(weights: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Entity F1 of each resample's summed `(n, 3)` counts, `weights` from
    `bootstrap_weights` (one matrix product, no loop)."""
    correct, predicted, gold = (weights @ counts).T  # (resamples,) each
    return np.where(correct > 0, 2 * correct / np.maximum(predicted + gold, 1), 0.0)


class EntityScorer(Scorer):
    """Per-sentence entity counts of a served tagger on the raw test sentences."""

    def __init__(self, requests: pd.DataFrame, gold: list[tuple[str, ...]], id_column: str) -> None:
        self.requests, self.gold, self.id_column = requests, gold, id_column

    def score(self, model: Any) -> np.ndarray:
        answer = model.predict(self.requests)
        by_sentence = {
            key: list(rows["tag"]) for key, rows in answer.groupby(self.id_column, sort=False)
        }
        predicted = [by_sentence.get(key, []) for key in self.requests[self.id_column]]
        return counts_array(self.gold, predicted)

    def compare(self, candidate: np.ndarray, champion: np.ndarray, alpha: float) -> Check:
        return no_regression(candidate, champion, alpha)


@dataclass(frozen=True)
class EntityPairedScores(PairedScores):
    """`PairedScores` whose per-example scores are `(n_sentences, 3)` entity counts: the
    value is entity F1 of the summed counts (higher is better, as `kind="correct"` tells the
    gate), the paired test approximate randomisation over sentences, the interval a
    bootstrap of sentences. Other counts of the same shape (segments per series) subclass it
    with their own names."""

    METRIC: ClassVar[str] = "entity_f1"
    SHOWN: ClassVar[str] = "entity F1"
    UNIT: ClassVar[str] = "sentences"

    @property
    def metric(self) -> str:
        return self.METRIC

    def value(self, scores: np.ndarray) -> float:
        return entity_f1(scores)

    def interval(self, name: str, seed: int = 0, resamples: int = BOOTSTRAP) -> tuple[float, float]:
        """Percentile bootstrap 95 % interval of the F1 difference, resampling examples in
        pairs."""
        weights = bootstrap_weights(len(self.model), seed, resamples)
        diffs = resampled_f1(weights, self.model) - resampled_f1(weights, self.baselines[name])
        return float(np.percentile(diffs, 2.5)), float(np.percentile(diffs, 97.5))

    def worse_than(self, name: str) -> tuple[float, bool, str]:
        baseline = self.baselines[name]
        p_value = paired_counts_test(
            as_counts(self.model), as_counts(baseline), resamples=RESAMPLES
        )
        ours, theirs = self.value(self.model), self.value(baseline)
        return (
            p_value,
            theirs > ours,
            f"{self.SHOWN} {ours:.4f} vs {name} {theirs:.4f} on {len(self.model)} {self.UNIT} "
            f"(approximate randomisation ×{RESAMPLES}, one-sided p={p_value:.3g})",
        )


def paired_entity_scores(
    metrics: TextLabelingMetrics, predictions: pd.DataFrame
) -> EntityPairedScores:
    """The model's and each baseline's per-sentence entity counts from `predictions.csv`
    (one row per test token, `evaluate.PREDICTION_COLUMNS` and a column per baseline)."""
    sentences = [rows for _, rows in predictions.groupby("sentence", sort=True)]
    gold = [tuple(rows["gold"].astype(str)) for rows in sentences]

    def counts(column: str) -> np.ndarray:
        return counts_array(gold, [list(rows[column].astype(str)) for rows in sentences])

    return EntityPairedScores(
        "correct", counts("model"), {name: counts(name) for name in metrics.baseline or {}}
    )


class SequenceLabelingRelease(
    ReleaseTask[TextOrSeriesMeta, LabelingReport, LabelingMetrics],
    SequenceLabelingServe,
):
    """Entity F1 per sentence (text) or segment F1 per series counts, by approximate
    randomisation."""

    def scorer(self, processed: Path, bundle: Bundle[TextOrSeriesMeta]) -> Scorer:
        if _series(bundle):
            from seqops.tasks.sequence_labeling.series_prepare import read_steps
            from seqops.tasks.sequence_labeling.series_release import SegmentScorer

            steps = read_steps(processed)
            label = bundle.data.label_column
            gold = [
                rows[label].to_numpy() for _, rows in steps.groupby(bundle.id_column, sort=False)
            ]
            return SegmentScorer(_series_requests(processed, bundle), gold, bundle.id_column)
        from seqops.tasks.sequence_labeling.conll_prepare import read_sentences

        sentences = [s.tags for s in read_sentences(processed, "test")]
        return EntityScorer(_test_requests(processed, bundle), sentences, bundle.id_column)

    def paired_scores(self, metrics: LabelingMetrics, predictions: pd.DataFrame) -> PairedScores:
        if metrics.input == "x":
            from seqops.tasks.sequence_labeling.series_release import paired_segment_scores

            return paired_segment_scores(metrics, predictions)
        return paired_entity_scores(metrics, predictions)
