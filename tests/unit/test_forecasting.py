"""Forecast error metrics, the statistical baselines and the paired Diebold-Mariano test."""

from __future__ import annotations

import numpy as np
import pytest

from seqops.forecasting import (
    forecast_errors,
    holt_winters,
    mase_scale,
    seasonal_naive,
)
from seqops.stats import diebold_mariano


def test_errors_match_their_definitions() -> None:
    actual = np.array([[[100.0], [200.0]]])  # (1 window, 2 steps, 1 target)
    forecast = np.array([[[110.0], [180.0]]])
    errors = forecast_errors(actual, forecast, scale=np.array([5.0]))
    assert errors["mae"] == pytest.approx(15.0)
    assert errors["rmse"] == pytest.approx(np.sqrt((100 + 400) / 2))
    smape = 100 * np.mean([20 / 210, 40 / 380])
    assert errors["smape"] == pytest.approx(smape)
    assert errors["mase"] == pytest.approx(15.0 / 5.0)


def test_mase_is_averaged_over_targets_in_their_own_units() -> None:
    actual = np.zeros((1, 2, 2))
    forecast = np.stack([np.ones((1, 2)), 100 * np.ones((1, 2))], axis=-1)
    errors = forecast_errors(actual, forecast, scale=np.array([1.0, 100.0]))
    assert errors["mase"] == pytest.approx(1.0)


def test_mase_scale_is_the_in_sample_seasonal_naive_error() -> None:
    train = np.array([1.0, 2.0, 3.0, 5.0, 4.0, 9.0])[:, None]
    assert mase_scale(train, 2)[0] == pytest.approx(np.mean([2.0, 3.0, 1.0, 4.0]))


def test_seasonal_naive_repeats_the_last_season() -> None:
    values = np.arange(20.0)[:, None]
    got = seasonal_naive(values, [12], horizon=6, season=4)
    # steps 12..15 repeat 8..11, steps 16..17 repeat 8..9 (two seasons back: 16-8)
    assert got[0, :, 0].tolist() == [8.0, 9.0, 10.0, 11.0, 8.0, 9.0]


def test_holt_winters_follows_a_clean_seasonal_trend() -> None:
    t = np.arange(120)
    values = (10 + 0.5 * t + 4 * np.sin(2 * np.pi * t / 12))[:, None]
    forecast = holt_winters(values, [108], horizon=12, season=12)
    assert np.abs(forecast[0] - values[108:120]).max() < 0.5
    naive = seasonal_naive(values, [108], horizon=12, season=12)
    assert np.abs(naive[0] - values[108:120]).max() > 5.0  # the trend it ignores


def test_diebold_mariano_flags_only_a_worse_candidate() -> None:
    rng = np.random.default_rng(0)
    champion = rng.normal(0, 1.0, 60)
    worse = diebold_mariano(champion * 2.0 + rng.normal(0, 0.2, 60), champion)
    assert worse.p_value < 0.01 and worse.statistic > 0
    better = diebold_mariano(champion * 0.5, champion)
    assert better.p_value > 0.99
    same = diebold_mariano(champion, champion)
    assert same.p_value == 1.0 and same.mean_loss_difference == 0.0
    noise = diebold_mariano(rng.normal(0, 1.0, 60), rng.normal(0, 1.0, 60))
    assert 0.01 < noise.p_value < 0.99


def test_diebold_mariano_needs_two_points() -> None:
    with pytest.raises(ValueError, match="at least 2 forecast points"):
        diebold_mariano(np.ones(1), np.zeros(1))


def test_release_regression_check_uses_diebold_mariano_on_forecast_errors() -> None:
    from seqops.tasks.base import diebold_mariano_regression

    rng = np.random.default_rng(3)
    champion = rng.normal(0, 0.3, (1, 12, 1))
    worse = diebold_mariano_regression(champion * 3, champion, alpha=0.05)
    assert not worse.passed and worse.value is not None and worse.value < 0.05
    assert "Diebold-Mariano (squared error, HLN) on 12 forecast points" in worse.detail
    assert diebold_mariano_regression(champion / 3, champion, alpha=0.05).passed
    single = diebold_mariano_regression(np.ones((1, 1, 1)), np.zeros((1, 1, 1)), alpha=0.05)
    assert single.passed and single.value is None and "too few for a paired test" in single.detail


def test_forecast_gate_uses_an_error_ceiling_and_seasonal_naive() -> None:
    from seqops.config import ReleaseConfig
    from seqops.contracts import (
        ExportReport,
        Int8Report,
        LatencyReport,
        MetricsReport,
        Parity,
        RuntimeLatency,
    )
    from seqops.gate import gate
    from seqops.tasks.base import Check

    cfg = ReleaseConfig(metric="test/rmse", max_metric=0.5)
    export = ExportReport(
        opset=17,
        dynamic_axes={},
        parity=Parity(
            max_abs_diff=1e-7, argmax_agreement=None, atol=1e-5, shapes_checked=[], passed=True
        ),
        int8=Int8Report(available=False, metric="test/rmse", fp32=0.3),
    )
    timing = RuntimeLatency(
        p50_ms=0.05, p95_ms=0.1, p99_ms=0.2, mean_ms=0.06, throughput=1e4, n_calls=100,
        threads=1, throughput_batch=1, model="m",
    )  # fmt: skip
    latency = LatencyReport(torch=timing, onnx_fp32=timing, speedup_p50=1.0, settings={})
    none = Check("no_regression_vs_champion", None, 0.05, True)

    def checks(rmse: float, naive: float) -> dict[str, bool]:
        metrics = MetricsReport(
            task="forecasting",
            test={"rmse": rmse},
            baseline={"seasonal_naive": {"rmse": naive}},
        )
        return {c.name: c.passed for c in gate(cfg, metrics, export, latency, none)}

    assert all(checks(0.3, 1.5).values())
    assert checks(0.6, 1.5) == {
        "test/rmse": False,
        "onnx_parity": True,
        "onnx_fp32_p95_ms": True,
        "beats_seasonal_naive": True,
        "no_regression_vs_champion": True,
    }
    assert not checks(0.4, 0.35)["beats_seasonal_naive"]
