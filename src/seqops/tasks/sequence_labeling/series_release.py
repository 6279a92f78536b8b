"""release for series labeling: segment counts per test series, and the paired test on them.

    scorer = SegmentScorer(requests, gold, id_column)   # the raw test rows and their labels
    counts = scorer.score(model)                        # (n_series, 3): correct, predicted, gold
    scorer.compare(candidate_counts, champion_counts, alpha)

The headline `segment_f1` (segments matched at IoU ≥ 0.5, `series.matched`) is not a mean of
per-series scores, so what is kept per test series is its segment counts (matched, predicted,
gold) and the paired test is the text tagger's: approximate randomisation over series
(`scoring.paired_counts_test`, via `release.no_regression`). The same counts of the model and
of the window baseline, read from `reports/predictions.csv`, are `SegmentPairedScores`: the
gate's baseline check and the model card's comparison, F1 computed from summed counts with a
series bootstrap interval. With a handful of test series (BasicMotions: 8) the test has
little power: a regression it lets pass is not proof of none.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from seqops.tasks.base import Check
from seqops.tasks.parts.release import Scorer
from seqops.tasks.sequence_labeling.release import EntityPairedScores, no_regression
from seqops.tasks.sequence_labeling.reports import SeriesLabelingMetrics
from seqops.tasks.sequence_labeling.series import MIN_IOU, matched, segments
from seqops.tasks.sequence_labeling.series_codec import LABEL

SHOWN = f"segment F1 (IoU >= {MIN_IOU})"


def segment_counts(gold: Sequence[np.ndarray], predicted: Sequence[np.ndarray]) -> np.ndarray:
    """`(n_series, 3)` int64 segment counts of `predicted` against `gold` (IoU ≥ `MIN_IOU`):
    matched, predicted, gold per series."""
    rows = []
    for i, (want, got) in enumerate(zip(gold, predicted, strict=True)):
        want, got = np.asarray(want).astype(str), np.asarray(got).astype(str)
        if want.shape != got.shape:
            raise ValueError(f"series {i}: {want.size} gold labels but {got.size} predicted")
        truth, found = segments(want), segments(got)
        rows.append((len(matched(truth, found, MIN_IOU)), len(found), len(truth)))
    return np.array(rows, dtype=np.int64).reshape(-1, 3)


class SegmentScorer(Scorer):
    """Per-series segment counts of a served labeler on the raw test rows."""

    def __init__(self, requests: pd.DataFrame, gold: list[np.ndarray], id_column: str) -> None:
        self.requests, self.gold, self.id_column = requests, gold, id_column
        self.ids = list(dict.fromkeys(requests[id_column].tolist()))

    def score(self, model: Any) -> np.ndarray:
        answer = model.predict(self.requests)
        by_series = {
            key: rows[LABEL].to_numpy() for key, rows in answer.groupby(self.id_column, sort=False)
        }
        return segment_counts(self.gold, [by_series.get(key, np.array([])) for key in self.ids])

    def compare(self, candidate: np.ndarray, champion: np.ndarray, alpha: float) -> Check:
        return no_regression(candidate, champion, alpha, SHOWN, "series")


@dataclass(frozen=True)
class SegmentPairedScores(EntityPairedScores):
    """`EntityPairedScores` of per-series segment counts: segment F1, series resampled."""

    METRIC: ClassVar[str] = "segment_f1"
    SHOWN: ClassVar[str] = SHOWN
    UNIT: ClassVar[str] = "series"


def paired_segment_scores(
    metrics: SeriesLabelingMetrics, predictions: pd.DataFrame
) -> SegmentPairedScores:
    """The model's and each baseline's per-series segment counts from `predictions.csv` (one
    row per test step, `series_evaluate.PREDICTION_COLUMNS` and a column per baseline)."""
    series = [rows for _, rows in predictions.groupby("series", sort=False)]
    gold = [rows["actual"].to_numpy() for rows in series]

    def counts(column: str) -> np.ndarray:
        return segment_counts(gold, [rows[column].to_numpy() for rows in series])

    return SegmentPairedScores(
        "correct", counts("model"), {name: counts(name) for name in metrics.baseline or {}}
    )
