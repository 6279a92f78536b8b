"""A classifier's release part: per-example correctness of a served model, McNemar's exact
test against the champion, and correctness beside each baseline's for the baseline check."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from seqops.contracts import Bundle, MetaT, MetricsReport
from seqops.layout import split_file
from seqops.stats import PairedScores
from seqops.tasks.base import Check
from seqops.tasks.classifier.task import ClassReportT
from seqops.tasks.parts.release import ReleaseTask, Scorer, mcnemar_regression


class CorrectnessScorer(Scorer):
    """Per-example correctness of a served classifier on the raw test requests; McNemar."""

    def __init__(self, requests: pd.DataFrame, truth: list[str], id_column: str) -> None:
        self.requests, self.truth, self.id_column = requests, truth, id_column

    def score(self, model: Any) -> np.ndarray:
        predictions = model.predict(self.requests)
        by_id = dict(zip(predictions[self.id_column], predictions["label"], strict=True))
        return np.array([by_id[f"seq{i}"] == label for i, label in enumerate(self.truth)])

    def compare(self, candidate: np.ndarray, champion: np.ndarray, alpha: float) -> Check:
        return mcnemar_regression(candidate, champion, alpha)


class ClassifierRelease(ReleaseTask[MetaT, ClassReportT, MetricsReport]):
    """McNemar on the served model's correctness; correctness beside the baselines'."""

    def scorer(self, processed: Path, bundle: Bundle[MetaT]) -> Scorer:
        from seqops.data.sequences import SequenceSet

        test = SequenceSet.load(processed / split_file("test"))
        requests = self.request_example(processed, bundle, n=len(test))
        truth = [bundle.data.label_names[y] for y in test.labels]
        return CorrectnessScorer(requests, truth, bundle.id_column)

    def paired_scores(self, metrics: MetricsReport, predictions: pd.DataFrame) -> PairedScores:
        actual = predictions["actual"].astype(str)
        return PairedScores(
            "correct",
            predictions["correct"].to_numpy().astype(bool),
            {
                name: (predictions[name].astype(str) == actual).to_numpy()
                for name in metrics.baseline or {}
            },
        )
