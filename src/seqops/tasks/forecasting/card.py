"""`forecasting`'s model-card part: the horizon, the series, the errors and intervals."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from seqops.stats import BOOTSTRAP, bootstrap_rmse
from seqops.tasks.forecasting.task import (
    Forecasting,
    ForecastMeta,
    ForecastMetrics,
    ForecastReport,
)
from seqops.tasks.parts.card import CardTask

if TYPE_CHECKING:
    pass


class ForecastingCard(CardTask[ForecastMeta, ForecastReport, ForecastMetrics], Forecasting):
    def card_inputs(self, report: ForecastReport) -> str:
        return str(report.n_features)

    def card_targets(self, report: ForecastReport) -> str:
        return ", ".join(report.series.targets)

    def card_data(self, report: ForecastReport) -> str:
        s = report.series
        return (
            f"Series {s.start} to {s.end} ({s.n_steps} steps, frequency "
            f"{s.freq or 'integer steps'}, {s.gaps_filled} gaps interpolated). "
            f"Training steps end {s.train_end}; validation {s.val[0]} to {s.val[1]}; test "
            f"{s.test[0]} to {s.test[1]}. Windows: lookback {s.lookback}, horizon {s.horizon}, "
            f"differencing {s.differencing}, season {s.season_length}."
        )

    def card_metrics(self, metrics: ForecastMetrics, predictions: pd.DataFrame) -> list[str]:
        """Model and baselines side by side, and a bootstrap interval for the model's RMSE."""
        from seqops.markdown import fmt, table

        low, high = bootstrap_rmse((predictions["model"] - predictions["actual"]).to_numpy())
        names = ("mae", "rmse", "smape", "mase")
        rows = [("model", *(fmt(metrics.test[m]) for m in names))]
        rows += [
            (name, *(fmt(b[m]) for m in names)) for name, b in (metrics.baseline or {}).items()
        ]
        test = metrics.test
        return [
            table(("forecast", "MAE", "RMSE", "sMAPE %", "MASE"), rows),
            "",
            f"Model RMSE 95 % CI [{low:.4g}, {high:.4g}] (bootstrap ×{BOOTSTRAP} over the "
            f"{test.get('n')} forecast points of {test.get('n_windows')} test window(s); "
            "neighbouring steps are correlated, so it is optimistic). RMSE per step ahead: "
            + ", ".join(f"{v:.3g}" for v in metrics.per_step.get("rmse", [])),
            *self._card_intervals(metrics),
        ]

    def _card_intervals(self, metrics: ForecastMetrics) -> list[str]:
        from seqops.markdown import fmt, table

        test, interval = metrics.test, metrics.interval
        if interval is None or "interval_coverage" not in test:
            return []
        names = ("interval_coverage", "interval_width", "interval_score")
        rows = [("model (split conformal)", *(fmt(test[m]) for m in names))]
        rows += [
            (name, *(fmt(b[m]) for m in names))
            for name, b in (metrics.baseline or {}).items()
            if "interval_coverage" in b
        ]
        weighted = (
            ""
            if interval.decay == 1.0
            else f", each weighted {interval.decay:g} per window of age (chosen on validation)"
        )
        return [
            "",
            f"Forecast intervals at {interval.level:.0%}: the model's are split-conformal, "
            f"calibrated on {interval.n_calibration} validation windows{weighted} (served as "
            "`<target>_lower` / `<target>_upper`); seasonal naive's are conformal on the same "
            "windows, Holt-Winters' simulated from its fit.",
            "",
            table(("intervals", "coverage", "mean width", "interval score"), rows),
        ]

    def card_use(self, report: ForecastReport) -> str:
        s = report.series
        return (
            f"Forecasts the next {s.horizon} steps of {', '.join(s.targets)} from a history "
            f"shaped like `{report.source}` (at least {s.lookback} steps plus the differencing "
            f"lag, on the {s.freq or 'integer'} grid with no gaps). Inputs go through "
            "`preprocessing.json` (differencing and the training part's scaler) and forecasts "
            "come back in the series' units. The test set is finite, so read the intervals "
            "above; the model has not been checked for distribution shift or adversarial "
            "input. Errors grow with the number of steps ahead (see the per-step RMSE above)."
        )
