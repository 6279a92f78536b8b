"""Forecast errors, statistical baselines and the paired forecast comparison (torch-free).

    errors = forecast_errors(actual, forecast, scale=mase_scale(train_values, season))
    naive = seasonal_naive(values, origins, horizon, season)          # (N, H, K)
    ets = holt_winters(values, origins, horizon, season)
    check = diebold_mariano(candidate_errors, champion_errors)         # one-sided p-value

Arrays are `(N, H, K)`: N forecast origins, H steps ahead, K target series, in the series'
own units. A baseline at origin o sees only `values[:o]`, exactly like the model.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np

#: The error metrics of design.md §7, lower is better.
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
class PairedTest:
    statistic: float
    p_value: float
    mean_loss_difference: float
    n: int


def diebold_mariano(candidate: np.ndarray, champion: np.ndarray) -> PairedTest:
    """One-sided Diebold-Mariano test on squared errors: is the candidate worse?

    d = e_candidate² - e_champion² per forecast point; the statistic is mean(d) over its
    standard error with the Harvey-Leybourne-Newbold small-sample correction, compared with
    Student's t (n - 1). A small p-value means the candidate's errors are significantly larger.
    """
    from scipy.stats import t as student_t

    d = (candidate.astype(np.float64) ** 2 - champion.astype(np.float64) ** 2).ravel()
    n = len(d)
    if n < 2:
        raise ValueError("the paired forecast test needs at least 2 forecast points")
    mean = float(d.mean())
    variance = float(d.var(ddof=0)) / n
    if variance <= 0:  # identical forecasts, or a constant difference
        p = 0.0 if mean > 0 else 1.0
        return PairedTest(math.inf if mean > 0 else 0.0, p, mean, n)
    statistic = mean / math.sqrt(variance) * math.sqrt((n - 1) / n)  # HLN, one step ahead
    return PairedTest(statistic, float(student_t.sf(statistic, df=n - 1)), mean, n)
