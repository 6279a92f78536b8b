"""The forecast test set, errors and statistical baselines (torch-free).

    test = forecast_test(processed, meta)     # seqops.tasks.forecasting: what prepare wrote
    errors = forecast_errors(test.actual(), forecast, test.mase_scale())
    baselines = test.baselines()        # seasonal naive and Holt-Winters, (N, H, K) each
    bands = test.baseline_bands(0.9, [1.0])   # the same forecasts with 90 % bounds
    found = interval_errors(test.actual(), lower, upper, level=0.9)   # coverage, width, score

Arrays are `(N, H, K)`: N forecast origins, H steps ahead, K target series, in the series'
own units. A baseline at origin o sees only `values[:o]`, exactly like the model.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from seqops.data.series import Series
from seqops.data.windows import ForecastSpec

#: The forecast error metrics (docs/architecture.md, "Metric vocabulary"), lower is better.
METRICS = ("mae", "rmse", "smape", "mase")


def mase_scale(train: np.ndarray, season: int) -> np.ndarray:
    """`(K,)` in-sample MAE of the seasonal-naive forecast on the training part (MASE's unit)."""
    if len(train) <= season:
        raise ValueError(f"training part of {len(train)} steps is not longer than a season")
    return np.abs(train[season:] - train[:-season]).mean(axis=0)


def forecast_errors(
    actual: np.ndarray, forecast: np.ndarray, scale: np.ndarray
) -> dict[str, float]:
    """MAE, RMSE, sMAPE (percent, 0-200) and MASE (mean over targets) over every step."""
    error = forecast - actual
    denominator = np.abs(actual) + np.abs(forecast)
    ratio = np.divide(
        2 * np.abs(error), denominator, out=np.zeros_like(error), where=denominator > 0
    )
    per_target_mae = np.abs(error).reshape(-1, error.shape[-1]).mean(axis=0)
    return {
        "mae": float(np.abs(error).mean()),
        "rmse": float(np.sqrt((error**2).mean())),
        "smape": float(100 * ratio.mean()),
        "mase": float((per_target_mae / scale).mean()),
    }


#: Interval metrics beside the point errors (`test` and each baseline in reports/metrics.json).
INTERVAL_METRICS = ("interval_coverage", "interval_width", "interval_score")
#: Sample paths per origin and target behind Holt-Winters' simulated prediction intervals.
SIMULATIONS = 1000


@dataclass(frozen=True)
class Band:
    """A forecast with its interval, each `(N, H, K)` in the series' units."""

    point: np.ndarray
    lower: np.ndarray
    upper: np.ndarray


def interval_errors(
    actual: np.ndarray, lower: np.ndarray, upper: np.ndarray, level: float
) -> dict[str, float]:
    """Coverage (share of actual values inside their bounds), mean width and mean interval
    score (Gneiting-Raftery, at `level`) over every step."""
    from seqops.stats import interval_score

    inside = (actual >= lower) & (actual <= upper)
    return {
        "interval_coverage": float(inside.mean()),
        "interval_width": float((upper - lower).mean()),
        "interval_score": float(interval_score(actual, lower, upper, level).mean()),
    }


def recency_weights(n: int, decay: float) -> np.ndarray:
    """`(n,)` weights of n calibration windows in time order: `decay ** age`, the latest
    window's age 0 (decay 1: equal weights)."""
    return decay ** np.arange(n - 1, -1, -1, dtype=float)


def conformal_half_width(
    actual: np.ndarray, forecast: np.ndarray, level: float, decay: float
) -> np.ndarray:
    """`(H, K)` split-conformal half-widths from calibration forecasts `(n, H, K)` in time
    order: per step ahead and target, the conformal quantile of the absolute residuals, each
    window weighted `decay ** age` (`recency_weights`; 1: the exchangeable quantile)."""
    from seqops.stats import conformal_quantile

    weights = None if decay == 1.0 else recency_weights(len(actual), decay)
    return conformal_quantile(np.abs(actual - forecast), level, weights)


def effective_windows(n: int, decay: float) -> float:
    """The total weight of n calibration windows (n at decay 1): what decides whether a
    finite interval exists (`seqops.stats.conformal_is_exact`)."""
    return float(recency_weights(n, decay).sum())


def interval_check(
    actual: np.ndarray, forecast: np.ndarray, level: float, decay: float, horizon: int
) -> dict[str, float] | None:
    """The calibration judged on validation alone: the later half of the validation windows
    `(n, H, K)` (time order) scored by intervals calibrated on the earlier ones whose targets
    end before it starts (the H - 1 windows between are left out, as between the validation
    and test blocks): `n_calibration`, `n_windows` and `interval_errors`. None when too few
    windows leave both halves."""
    n = len(actual)
    later = n // 2  # the first window scored
    earlier = later - (horizon - 1)  # windows calibrating: their targets end before `later`
    if earlier < 1:
        return None
    half = conformal_half_width(actual[:earlier], forecast[:earlier], level, decay)[None]
    point = forecast[later:]
    found = interval_errors(actual[later:], point - half, point + half, level)
    return {"n_calibration": earlier, "n_windows": n - later, **found}


@dataclass(frozen=True)
class Calibration:
    """Conformal half-widths `(H, K)` at the decay validation chose, and each candidate
    decay's `interval_check` (empty when the validation windows are too few to check)."""

    half_width: np.ndarray
    decay: float
    checks: dict[float, dict[str, float]]


def calibrate_intervals(
    actual: np.ndarray, forecast: np.ndarray, level: float, decays: list[float], horizon: int
) -> Calibration:
    """Split-conformal half-widths from the validation windows `(n, H, K)` (time order), the
    recency decay chosen on validation alone: each candidate is tried by `interval_check`
    and the one with the lowest interval score there is kept (a tie, or no check possible:
    the largest decay, the closest to exchangeable); then every validation window
    calibrates the intervals at that decay."""
    checks = {
        decay: found
        for decay in decays
        if (found := interval_check(actual, forecast, level, decay, horizon)) is not None
    }
    ordered = sorted(decays, reverse=True)
    decay = (
        min(ordered, key=lambda d: checks[d]["interval_score"])
        if all(d in checks for d in decays)
        else ordered[0]
    )
    half = conformal_half_width(actual, forecast, level, decay)
    return Calibration(half, decay, checks)


def seasonal_naive(values: np.ndarray, origins: list[int], horizon: int, season: int) -> np.ndarray:
    """Each step repeats the value one (or more) seasons before it: `(N, H, K)`."""
    out = []
    for o in origins:
        steps = np.arange(horizon)
        back = season * (steps // season + 1)
        out.append(values[o + steps - back])
    return np.stack(out)


def _fit_holt_winters(history: np.ndarray, season: int) -> Any:
    from statsmodels.tsa.holtwinters import ExponentialSmoothing

    seasonal = "add" if season > 1 and len(history) >= 2 * season else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence chatter on short histories
        return ExponentialSmoothing(
            history,
            trend="add",
            seasonal=seasonal,
            seasonal_periods=season if seasonal else None,
            initialization_method="estimated",
        ).fit()


def holt_winters(values: np.ndarray, origins: list[int], horizon: int, season: int) -> np.ndarray:
    """statsmodels ExponentialSmoothing (additive trend and season; no season when the
    history is shorter than two seasons), fitted per origin and target: `(N, H, K)`."""
    out = np.empty((len(origins), horizon, values.shape[1]))
    for i, o in enumerate(origins):
        for k in range(values.shape[1]):
            out[i, :, k] = _fit_holt_winters(values[:o, k], season).forecast(horizon)
    return out


def holt_winters_band(
    values: np.ndarray, origins: list[int], horizon: int, season: int, level: float, seed: int = 0
) -> Band:
    """`holt_winters`' forecasts with its own prediction intervals: the central `level`
    quantiles of `SIMULATIONS` sample paths from each fitted model (additive Gaussian errors
    at the fit's residual variance; statsmodels' `simulate`, seeded), the usual way to get
    intervals from a Holt-Winters fit. The point forecasts are `holt_winters`' own."""
    shape = (len(origins), horizon, values.shape[1])
    point, lower, upper = np.empty(shape), np.empty(shape), np.empty(shape)
    tail = (1.0 - level) / 2
    rng = np.random.default_rng(seed)
    for i, o in enumerate(origins):
        for k in range(values.shape[1]):
            fitted = _fit_holt_winters(values[:o, k], season)
            point[i, :, k] = fitted.forecast(horizon)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                paths = np.asarray(
                    fitted.simulate(
                        horizon,
                        anchor="end",
                        repetitions=SIMULATIONS,
                        error="add",
                        random_state=int(rng.integers(2**31)),
                    )
                ).reshape(horizon, SIMULATIONS)
            lower[i, :, k], upper[i, :, k] = np.quantile(paths, [tail, 1.0 - tail], axis=1)
    return Band(point, lower, upper)


@dataclass(frozen=True)
class ForecastTest:
    """The prepared series, its spec and the test origins (first forecast step of each)."""

    series: Series
    spec: ForecastSpec
    origins: list[int]
    val_start: int
    """First validation step: the training part is `[0, val_start)`."""

    @property
    def targets(self) -> np.ndarray:
        """`(T, K)` the whole series' target columns, in units."""
        return self.series.values[:, self.spec.target_index]

    def histories(self) -> list[np.ndarray]:
        """The raw history `(o, F)` before each test origin."""
        return [self.series.values[:o] for o in self.origins]

    def actual(self) -> np.ndarray:
        """`(N, H, K)` observed target values after each origin."""
        h = self.spec.horizon
        return np.stack([self.targets[o : o + h] for o in self.origins])

    def mase_scale(self) -> np.ndarray:
        """MASE's unit per target: the seasonal-naive MAE on the training part."""
        return mase_scale(self.targets[: self.val_start], self.spec.season_length)

    def baselines(self) -> dict[str, np.ndarray]:
        """Seasonal-naive and Holt-Winters forecasts `(N, H, K)` at every test origin."""
        h, season = self.spec.horizon, self.spec.season_length
        return {
            "seasonal_naive": seasonal_naive(self.targets, self.origins, h, season),
            "holt_winters": holt_winters(self.targets, self.origins, h, season),
        }

    def calibration_origins(self) -> list[int]:
        """Origins of the validation windows (targets inside the validation block, before the
        first test step): what the conformal intervals are calibrated on."""
        end = self.origins[0] - self.spec.horizon + 1
        return list(range(self.val_start, end))

    def actual_at(self, origins: list[int]) -> np.ndarray:
        """`(N, H, K)` observed target values after each of `origins`."""
        h = self.spec.horizon
        return np.stack([self.targets[o : o + h] for o in origins])

    def baseline_bands(self, level: float, decays: list[float]) -> dict[str, Band]:
        """`baselines()` with intervals at `level`: seasonal naive with split-conformal
        half-widths from its own residuals on the validation windows (the model's method,
        `calibrate_intervals` with the same candidate `decays`, so the two differ only by
        their point forecasts), Holt-Winters with its simulated prediction intervals
        (`holt_winters_band`)."""
        h, season = self.spec.horizon, self.spec.season_length
        back = season * ((h - 1) // season + 1)  # the furthest step seasonal naive reads
        calibration = [o for o in self.calibration_origins() if o >= back]
        naive = seasonal_naive(self.targets, self.origins, h, season)
        # No validation window reaches a season back (a long season): no bounds (NaN).
        half = (
            calibrate_intervals(
                self.actual_at(calibration),
                seasonal_naive(self.targets, calibration, h, season),
                level,
                decays,
                h,
            ).half_width
            if calibration
            else np.full(naive.shape[1:], np.nan)
        )
        return {
            "seasonal_naive": Band(naive, naive - half, naive + half),
            "holt_winters": holt_winters_band(self.targets, self.origins, h, season, level),
        }

    def history_frame(self, id_column: str, time_column: str) -> pd.DataFrame:
        """Each origin's history as request rows (id `seq<i>`, time, features): the last
        `min_history` steps, what the model needs."""
        parts = []
        for i, o in enumerate(self.origins):
            start = max(o - self.spec.min_history, 0)
            part = pd.DataFrame(self.series.values[start:o], columns=self.series.names)
            times = self.series.times[start:o]
            part.insert(0, time_column, [str(t) for t in times] if self.series.freq else times)
            part.insert(0, id_column, f"seq{i}")
            parts.append(part)
        return pd.concat(parts, ignore_index=True)
