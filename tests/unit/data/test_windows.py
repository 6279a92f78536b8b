"""Forecast windows: no leakage past the training cut-off, exact inversion to units."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from seqops.config import parse_config
from seqops.data.windows import (
    ForecastSpec,
    cuts,
    difference,
    fit_spec,
    integration_matrix,
    lag_of,
    origins,
    windows,
)
from seqops.errors import DataError
from seqops.tasks.base import Prepared
from seqops.tasks.forecasting.task import ForecastMeta
from seqops.tasks.parts.prepare import get_prepare

DIFFERENCING = ("none", "first", "seasonal")


def seasonal_series(n: int = 160, seed: int = 0) -> np.ndarray:
    """Trend + monthly season + noise, two columns (the second a noisy copy)."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    level = 300 + 0.1 * t + 3 * np.sin(2 * np.pi * t / 12) + rng.normal(0, 0.3, n)
    return np.stack([level, level * 0.5 + rng.normal(0, 1, n)], axis=1)


def write_series(path: Path, values: np.ndarray) -> Path:
    frame = pd.DataFrame(values, columns=["co2", "aux"])
    frame.insert(0, "month", pd.date_range("1990-01-01", periods=len(values), freq="MS"))
    frame.to_csv(path, index=False)
    return path


def forecast_config(path: Path, differencing: str, **forecast: object) -> object:
    return parse_config(
        {
            "data": {
                "task": "forecasting",
                "dataset": None,
                "path": str(path),
                "time_column": "month",
                "forecast": {
                    "lookback": 24,
                    "horizon": 6,
                    "differencing": differencing,
                    "target_columns": ["co2"],
                    **forecast,
                },
            },
            "train": {"monitor": "val/rmse"},
            "tune": {"metric": "val/rmse"},
            "release": {"metric": "test/rmse", "max_metric": 1.0},
        }
    )


def prepare(path: Path, differencing: str) -> tuple[Prepared, ForecastMeta]:
    """The forecasting task's prepare on the series in `path`, and its metadata."""
    data = forecast_config(path, differencing).data  # type: ignore[attr-defined]
    prepared = get_prepare(data.task).prepare(data, 0)
    assert isinstance(prepared.meta, ForecastMeta)
    return prepared, prepared.meta


@pytest.mark.parametrize("differencing", DIFFERENCING)
def test_values_after_the_cutoff_never_reach_scaler_or_training_windows(
    tmp_path: Path, differencing: str
) -> None:
    values = seasonal_series()
    base, base_meta = prepare(write_series(tmp_path / "a.csv", values), differencing)
    base_spec = base_meta.spec
    cutoff = base_meta.cuts.val_start
    for step in (cutoff, cutoff + 7, base_meta.cuts.test_start, len(values) - 1):
        changed = values.copy()
        changed[step:] += 1000.0 * np.arange(1, len(values) - step + 1)[:, None]
        path = write_series(tmp_path / f"b{step}.csv", changed)
        other, other_meta = prepare(path, differencing)
        np.testing.assert_array_equal(other_meta.spec.mean, base_spec.mean)
        np.testing.assert_array_equal(other_meta.spec.std, base_spec.std)
        train, train_base = other.splits["train"], base.splits["train"]
        assert len(train) == len(train_base) > 0
        for got, want in zip(train.sequences, train_base.sequences, strict=True):
            np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(train.labels, train_base.labels)
    # ... while a change before the cut-off does reach them (the test can fail)
    earlier = values.copy()
    earlier[cutoff - 1] += 50.0
    _, moved = prepare(write_series(tmp_path / "c.csv", earlier), differencing)
    assert not np.array_equal(moved.spec.mean, base_spec.mean)


@pytest.mark.parametrize("log", [False, True])
@pytest.mark.parametrize("differencing", DIFFERENCING)
def test_invert_recovers_the_future_in_units(differencing: str, log: bool) -> None:
    values = seasonal_series()
    cut = cuts(len(values), 6, 3, 0.2, 24 + lag_of(differencing, 12))
    spec = fit_spec(
        values,
        cut,
        lookback=24,
        horizon=6,
        differencing=differencing,
        season_length=12,
        feature_names=["co2", "aux"],
        target_names=["co2"],
        log=log,
    )
    starts = origins(cut, spec)["test"]
    assert len(starts) == 3 and starts[-1] + 6 == len(values)
    inputs, targets = windows(values, spec, starts)
    assert targets.shape == (3, 6, 1) and inputs[0].shape == (24, 2)
    tails = np.stack([spec.tail(values[:o]) for o in starts])
    future = spec.invert(targets, tails)
    expected = np.stack([values[o : o + 6, :1] for o in starts])
    np.testing.assert_allclose(future, expected, rtol=1e-6, atol=1e-4)  # float32 targets
    if log:  # the target is read as its logarithm, the covariate as it is
        got = inputs[0][:, 0] * spec.std[0] + spec.mean[0]
        window = values[starts[0] - spec.min_history : starts[0], :1]
        np.testing.assert_allclose(got, difference(np.log(window), spec.lag)[:, 0], atol=1e-6)
        plain = replace(spec, log=False)
        np.testing.assert_array_equal(inputs[0][:, 1], windows(values, plain, starts)[0][0][:, 1])
    assert ForecastSpec.from_dict(spec.to_dict()).log is log  # what the bundle carries


def multiplicative_series(n: int = 144, seed: int = 0) -> np.ndarray:
    """Exponential growth whose seasonal swing grows with the level (airline-like)."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    level = 100 * np.exp(0.01 * t) * (1 + 0.2 * np.sin(2 * np.pi * t / 12))
    return (level * np.exp(rng.normal(0, 0.02, n)))[:, None]


def test_prepare_records_the_transform_and_refuses_a_log_it_cannot_take(tmp_path: Path) -> None:
    values = np.concatenate([multiplicative_series(), multiplicative_series(seed=1)], axis=1)
    path = write_series(tmp_path / "m.csv", values)
    chosen = {}
    for transform in ("none", "log"):
        data = forecast_config(path, "seasonal", transform=transform).data  # type: ignore[attr-defined]
        prepared = get_prepare(data.task).prepare(data, 0)
        assert isinstance(prepared.meta, ForecastMeta)
        chosen[transform] = prepared.meta.spec.log
        assert prepared.report["series"].log == chosen[transform]  # reports/data.json
    assert chosen == {"none": False, "log": True}
    values[40, 0] = -1.0
    path = write_series(tmp_path / "n.csv", values)
    data = forecast_config(path, "seasonal", transform="log").data  # type: ignore[attr-defined]
    with pytest.raises(DataError, match=r"data.forecast.transform = 'log': 'co2' is -1.0 at "
                       r"1993-05-01 00:00:00; the logarithm needs positive values"):  # fmt: skip
        get_prepare(data.task).prepare(data, 0)


@pytest.mark.parametrize(("lag", "horizon"), [(0, 5), (1, 5), (3, 8)])
def test_integration_matrix_maps_difference_errors_to_level_errors(lag: int, horizon: int) -> None:
    spec = ForecastSpec(
        lookback=4,
        horizon=horizon,
        differencing={0: "none", 1: "first", 3: "seasonal"}[lag],
        season_length=3,
        feature_names=["y"],
        target_names=["y"],
        mean=np.zeros(1),
        std=np.ones(1),
    )
    rng = np.random.default_rng(1)
    tail = rng.normal(size=(1, lag, 1))
    z, z_hat = rng.normal(size=(1, horizon, 1)), rng.normal(size=(1, horizon, 1))
    level_error = spec.invert(z_hat, tail) - spec.invert(z, tail)
    matrix = integration_matrix(horizon, lag)
    np.testing.assert_allclose(level_error[0, :, 0], matrix @ (z_hat - z)[0, :, 0], atol=1e-12)


def test_difference_lags() -> None:
    values = np.arange(10.0)[:, None] ** 2
    np.testing.assert_array_equal(difference(values, 0), values)
    np.testing.assert_array_equal(difference(values, 2)[:, 0], values[2:, 0] - values[:-2, 0])


def test_a_series_too_short_for_the_windows_is_refused() -> None:
    with pytest.raises(DataError, match=r"series of 40 steps is too short.*0 training windows"):
        cuts(40, 12, 1, 0.2, 36)
