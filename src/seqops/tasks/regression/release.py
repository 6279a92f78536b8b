"""`sequence_regression`'s release part: Diebold-Mariano on the served model's per-sequence
errors, and the check that it beats the ridge baseline."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from seqops.contracts import (
    Bundle,
    MetricsReport,
)
from seqops.layout import split_file
from seqops.tasks.base import Check
from seqops.tasks.long_format import example_frame
from seqops.tasks.parts.release import ErrorScorer, ReleaseTask, Scorer, beats_baseline
from seqops.tasks.regression.serve import SequenceRegressionServe
from seqops.tasks.regression.task import (
    PREDICTION,
    RegressionMeta,
    RegressionReport,
)

if TYPE_CHECKING:
    pass


def regression_scorer(requests: pd.DataFrame, actual: np.ndarray) -> ErrorScorer:
    """Per-sequence errors of a served regressor on the raw test requests (answer rows come
    back in the requests' order, the actual values' order); Diebold-Mariano."""
    return ErrorScorer(requests, [PREDICTION], actual, points="test sequences", too_few="")


class SequenceRegressionRelease(
    ReleaseTask[RegressionMeta, RegressionReport, MetricsReport], SequenceRegressionServe
):
    def scorer(self, processed: Path, bundle: Bundle[RegressionMeta]) -> Scorer:
        from seqops.data.sequences import SequenceSet

        test = SequenceSet.load(processed / split_file("test"))
        target = bundle.data.target
        actual = test.labels.astype(np.float64) * target.std + target.mean
        requests = example_frame(test, bundle, len(test))
        return regression_scorer(requests, actual)

    def extra_checks(self, metrics: MetricsReport) -> list[Check]:
        """A model must beat ridge regression on the same split."""
        ridge = (metrics.baseline or {})["ridge"]["rmse"]
        ours = float(metrics.test["rmse"])
        return [beats_baseline("beats_baseline", ours, ridge, "ridge regression")]
