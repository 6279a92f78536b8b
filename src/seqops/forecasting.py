"""The forecast test set, errors and statistical baselines (torch-free).

    test = forecast_test(processed, meta)     # seqops.tasks.forecasting: what prepare wrote
    errors = forecast_errors(test.actual(), forecast, test.mase_scale())
    baselines = test.baselines()        # seasonal naive and Holt-Winters, (N, H, K) each

Arrays are `(N, H, K)`: N forecast origins, H steps ahead, K target series, in the series'
own units. A baseline at origin o sees only `values[:o]`, exactly like the model.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

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


def seasonal_naive(values: np.ndarray, origins: list[int], horizon: int, season: int) -> np.ndarray:
    """Each step repeats the value one (or more) seasons before it: `(N, H, K)`."""
    out = []
    for o in origins:
        steps = np.arange(horizon)
        back = season * (steps // season + 1)
        out.append(values[o + steps - back])
    return np.stack(out)


def holt_winters(values: np.ndarray, origins: list[int], horizon: int, season: int) -> np.ndarray:
    """statsmodels ExponentialSmoothing (additive trend and season; no season when the
    history is shorter than two seasons), fitted per origin and target: `(N, H, K)`."""
    from statsmodels.tsa.holtwinters import ExponentialSmoothing

    out = np.empty((len(origins), horizon, values.shape[1]))
    for i, o in enumerate(origins):
        for k in range(values.shape[1]):
            history = values[:o, k]
            seasonal = "add" if season > 1 and len(history) >= 2 * season else None
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # convergence chatter on short histories
                fitted = ExponentialSmoothing(
                    history,
                    trend="add",
                    seasonal=seasonal,
                    seasonal_periods=season if seasonal else None,
                    initialization_method="estimated",
                ).fit()
            out[i, :, k] = fitted.forecast(horizon)
    return out


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
