"""`forecasting`'s release part: Diebold-Mariano on the served model's errors at every test
origin, and the check that it beats seasonal naive."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from seqops.contracts import (
    Bundle,
)
from seqops.tasks.base import Check
from seqops.tasks.forecasting.backtest import forecast_test
from seqops.tasks.forecasting.serve import ForecastingServe
from seqops.tasks.forecasting.task import (
    ForecastMeta,
    ForecastMetrics,
    ForecastReport,
)
from seqops.tasks.parts.release import ErrorScorer, ReleaseTask, Scorer, beats_baseline

if TYPE_CHECKING:
    pass


class ForecastingRelease(
    ReleaseTask[ForecastMeta, ForecastReport, ForecastMetrics], ForecastingServe
):
    def scorer(self, processed: Path, bundle: Bundle[ForecastMeta]) -> Scorer:
        test = forecast_test(processed, bundle.data)
        requests = test.history_frame(bundle.id_column, bundle.time_column)
        return ErrorScorer(requests, test.spec.target_names, test.actual())

    def extra_checks(self, metrics: ForecastMetrics) -> list[Check]:
        """A model must beat the seasonal-naive forecast."""
        naive = (metrics.baseline or {})["seasonal_naive"]["rmse"]
        ours = float(metrics.test["rmse"])
        return [beats_baseline("beats_seasonal_naive", ours, naive, "seasonal naive")]
