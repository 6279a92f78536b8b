"""What the release gate runs of a task: the `ReleaseTask` part, the checks and paired
tests the tasks share, and the registry.

    release = get_release(metrics.task)
    release.scorer(processed, bundle)        # per-example scores of a served model + its test
    release.extra_checks(metrics), release.paired_scores(metrics, predictions)

Each task's part is `seqops.tasks.<task>.release`. It subclasses the task's serve part: the
scorer sends the release's test set through a served model as its requests.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from seqops.contracts import Bundle, MetaT, MetricsReport
from seqops.stats import PairedScores, diebold_mariano, mcnemar
from seqops.tasks.base import Check, MetricsT, ReportT
from seqops.tasks.parts.serve import ServeTask


def beats_baseline(name: str, ours: float, baseline: float, label: str) -> Check:
    """The model's test RMSE must be below a classical baseline's on the same test set (the
    ratio of the two as the value; none when the baseline made no error)."""
    return Check(
        name,
        ours / baseline if baseline > 0 else None,
        1.0,
        ours < baseline,
        f"test RMSE {ours:.4g} vs {label} {baseline:.4g}",
    )


def error_scores(metrics: MetricsReport, predictions: pd.DataFrame) -> PairedScores:
    """Signed errors of the `model` column and of each baseline's column against `actual`
    (forecasting: one row per forecast point; regression: one per sequence)."""
    actual = predictions["actual"].to_numpy(dtype=np.float64)

    def errors(column: str) -> np.ndarray:
        return predictions[column].to_numpy(dtype=np.float64) - actual

    return PairedScores(
        "error", errors("model"), {name: errors(name) for name in metrics.baseline or {}}
    )


def baseline_check(scores: PairedScores, alpha: float) -> Check:
    """The release check `not_worse_than_baseline`: the model must not be significantly worse
    than any of its classical baselines on the same test examples (the task's paired test at
    `alpha`). Its value is the smallest p-value of a baseline that did better."""
    verdicts = {name: scores.worse_than(name) for name in scores.baselines}
    better = {name: v for name, v in verdicts.items() if v[1]}
    if not better:
        details = "; ".join(v[2] for v in verdicts.values())
        return Check(
            "not_worse_than_baseline", None, alpha, True, f"no baseline did better: {details}"
        )
    name, (p_value, _, detail) = min(better.items(), key=lambda item: item[1][0])
    if p_value < alpha:
        return Check(
            "not_worse_than_baseline",
            p_value,
            alpha,
            False,
            f"the baseline won: {name} is significantly better than the model ({detail})",
        )
    return Check(
        "not_worse_than_baseline",
        p_value,
        alpha,
        True,
        f"{name} did better, not significantly: {detail}",
    )


def mcnemar_regression(
    candidate_correct: np.ndarray, champion_correct: np.ndarray, alpha: float
) -> Check:
    """Paired exact test: does the candidate get significantly fewer examples right?"""
    p_value, only_champion, only_candidate = mcnemar(candidate_correct, champion_correct)
    regressed = only_champion > only_candidate and p_value < alpha
    return Check(
        "no_regression_vs_champion",
        p_value,
        alpha,
        not regressed,
        f"McNemar exact: champion-only correct {only_champion}, candidate-only correct "
        f"{only_candidate}, p={p_value:.4g}",
    )


def diebold_mariano_regression(
    candidate_errors: np.ndarray,
    champion_errors: np.ndarray,
    alpha: float,
    points: str = "forecast points",
    too_few: str = " (raise data.forecast.horizon or test_windows)",
) -> Check:
    """Paired test on numeric errors (forecast points, or one per test sequence for
    regression): are the candidate's squared errors significantly larger?"""
    if candidate_errors.size < 2:
        return Check(
            "no_regression_vs_champion",
            None,
            alpha,
            True,
            f"{candidate_errors.size} of {points}: too few for a paired test{too_few}",
        )
    test = diebold_mariano(candidate_errors, champion_errors)
    rmse = [float(np.sqrt((e**2).mean())) for e in (candidate_errors, champion_errors)]
    return Check(
        "no_regression_vs_champion",
        test.p_value,
        alpha,
        not test.p_value < alpha,
        f"Diebold-Mariano (squared error, HLN) on {test.n} {points}: RMSE candidate "
        f"{rmse[0]:.4g} vs champion {rmse[1]:.4g}, statistic {test.statistic:.3g}, "
        f"one-sided p={test.p_value:.4g}",
    )


class Scorer(ABC):
    """The release's regression test: score any served model per test example, and compare two
    such scores with the task's paired test."""

    @abstractmethod
    def score(self, model: Any) -> np.ndarray:
        """Per-example scores of a loaded MLflow pyfunc model on the raw test inputs."""

    @abstractmethod
    def compare(self, candidate: np.ndarray, champion: np.ndarray, alpha: float) -> Check:
        """Is the candidate significantly worse than the champion, at level `alpha`?"""


class ErrorScorer(Scorer):
    """Per-point errors of a served model against numeric targets (answer rows in the
    requests' order); Diebold-Mariano. `points` names what the errors are of."""

    def __init__(
        self,
        requests: pd.DataFrame,
        columns: list[str],
        actual: np.ndarray,
        points: str = "forecast points",
        too_few: str = " (raise data.forecast.horizon or test_windows)",
    ) -> None:
        self.requests, self.columns, self.actual = requests, columns, actual
        self.points, self.too_few = points, too_few

    def score(self, model: Any) -> np.ndarray:
        answers = model.predict(self.requests)
        return answers[self.columns].to_numpy().reshape(self.actual.shape) - self.actual

    def compare(self, candidate: np.ndarray, champion: np.ndarray, alpha: float) -> Check:
        return diebold_mariano_regression(candidate, champion, alpha, self.points, self.too_few)


class ReleaseTask(ServeTask[MetaT, ReportT, MetricsT]):
    """A task's release part: the champion comparison's scorer, its extra gate checks and
    the model's per-example scores beside its classical baselines'."""

    @abstractmethod
    def scorer(self, processed: Path, bundle: Bundle[MetaT]) -> Scorer: ...

    def extra_checks(self, metrics: MetricsT) -> list[Check]:
        """Gate checks beyond quality, parity, latency and the champion comparison."""
        return []

    def paired_scores(self, metrics: MetricsT, predictions: pd.DataFrame) -> PairedScores:
        """Per-example scores of the model and of each baseline in `metrics.baseline`, read
        from `reports/predictions.csv` (the baseline check and the model card use them).
        Default: numeric predictions, one column per predictor beside `actual`."""
        return error_scores(metrics, predictions)


@cache
def _releases() -> dict[str, ReleaseTask[Any, Any, Any]]:
    from seqops.tasks.classification.release import SequenceClassificationRelease
    from seqops.tasks.forecasting.release import ForecastingRelease
    from seqops.tasks.language_modeling.release import LanguageModelingRelease
    from seqops.tasks.regression.release import SequenceRegressionRelease
    from seqops.tasks.sequence_labeling.release import SequenceLabelingRelease
    from seqops.tasks.text.release import TextClassificationRelease

    parts: tuple[ReleaseTask[Any, Any, Any], ...] = (
        SequenceClassificationRelease(),
        TextClassificationRelease(),
        ForecastingRelease(),
        SequenceRegressionRelease(),
        SequenceLabelingRelease(),
        LanguageModelingRelease(),
    )
    return {part.name: part for part in parts}


def get_release(name: str) -> ReleaseTask[Any, Any, Any]:
    """The release part of task `name` (a name `get_task` knows)."""
    from seqops.tasks import get_task

    get_task(name)  # an unknown name raises the same DataError as every lookup
    return _releases()[name]
