"""Forecast error metrics, the statistical baselines, the paired Diebold-Mariano test and the
forecast intervals (split conformal, the baselines' own, the interval score, the gate)."""

from __future__ import annotations

import numpy as np
import pytest

from seqops.forecasting import (
    calibrate_intervals,
    conformal_half_width,
    forecast_errors,
    holt_winters,
    holt_winters_band,
    interval_check,
    interval_errors,
    mase_scale,
    recency_weights,
    seasonal_naive,
)
from seqops.stats import conformal_is_exact, conformal_quantile, diebold_mariano, interval_score
from seqops.tasks.parts.evaluate import get_evaluate


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
    from seqops.tasks.parts.release import diebold_mariano_regression

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
    assert not checks(0.4, 0.0)["beats_seasonal_naive"]  # a flat test block: naive is exact


# -- intervals --------------------------------------------------------------------------------


def test_conformal_quantile_is_the_rank_ceil_n_plus_one_times_level() -> None:
    scores = np.arange(1.0, 20.0)[:, None]  # n = 19: rank ceil(20 * 0.9) = 18
    assert conformal_quantile(scores, 0.9)[0] == 18.0
    # Too few scores for a finite interval: the largest one (the guarantee is lost).
    assert conformal_quantile(np.array([[1.0], [3.0], [2.0]]), 0.9)[0] == 3.0


def test_conformal_intervals_cover_fresh_gaussian_noise_at_the_nominal_level() -> None:
    """A forecast that knows the signal leaves N(0, sigma) residuals: the 90 % half-width is
    about 1.645 sigma per step, and the interval covers about 90 % of fresh points."""
    rng = np.random.default_rng(0)
    sigma = np.array([0.5, 1.0, 2.0])[None, :, None]  # (1, H, 1): noise grows with the step
    signal = rng.normal(size=(4000, 3, 1))
    calibration = signal[:2000] + rng.normal(size=(2000, 3, 1)) * sigma
    half = conformal_half_width(calibration, signal[:2000], 0.9, decay=1.0)  # (H, K)
    np.testing.assert_allclose(half[:, 0], 1.645 * sigma[0, :, 0], rtol=0.06)
    fresh = signal[2000:] + rng.normal(size=(2000, 3, 1)) * sigma
    found = interval_errors(fresh, signal[2000:] - half, signal[2000:] + half, 0.9)
    assert abs(found["interval_coverage"] - 0.9) < 0.015
    expected_width = 2 * 1.645 * sigma.mean()
    assert found["interval_width"] == pytest.approx(expected_width, rel=0.06)


def test_weighted_conformal_quantile_on_hand_examples() -> None:
    """Equal weights give the exchangeable rank; weights reach `level` of their sum plus the
    new score's 1 at the first ranked score where their running total does."""
    rng = np.random.default_rng(3)
    for n in (1, 5, 9, 19, 85):
        scores = rng.exponential(size=(n, 4, 2))
        for level in (0.5, 0.8, 0.9, 0.95):
            np.testing.assert_array_equal(
                conformal_quantile(scores, level, np.ones(n)), conformal_quantile(scores, level)
            )
    scores = np.array([[4.0], [1.0], [3.0], [2.0]])  # in time order, the latest last
    # Weights 1, 1, 1, 7 (+1 for the new score: 11): 2.0 alone carries 7/11 = 0.64 >= 0.6.
    assert conformal_quantile(scores, 0.6, np.array([1.0, 1.0, 1.0, 7.0]))[0] == 2.0
    # Running totals in score order 1, 8, 9, 10: 0.8 of 11 (8.8) is reached at 3.0, 0.85
    # (9.35) at 4.0.
    assert conformal_quantile(scores, 0.8, np.array([1.0, 1.0, 1.0, 7.0]))[0] == 3.0
    assert conformal_quantile(scores, 0.85, np.array([1.0, 1.0, 1.0, 7.0]))[0] == 4.0
    # Weights summing under level / (1 - level): no finite interval, the largest score.
    assert conformal_quantile(scores, 0.95, np.array([1.0, 1.0, 1.0, 7.0]))[0] == 4.0
    assert conformal_is_exact(19, 0.95) and not conformal_is_exact(18.9, 0.95)
    with pytest.raises(ValueError, match="non-negative weights"):
        conformal_quantile(scores, 0.9, np.ones(3))
    np.testing.assert_allclose(recency_weights(3, 0.5), [0.25, 0.5, 1.0])


def _drifting_noise(rng: np.random.Generator, n: int, growth: float) -> np.ndarray:
    """`(n, 1, 1)` residuals N(0, sigma_t), sigma growing linearly in time from 0.5."""
    sigma = 0.5 + growth * np.arange(n)
    return (rng.normal(size=n) * sigma)[:, None, None]


def test_recency_weights_cover_a_drifting_noise_scale_where_equal_weights_do_not() -> None:
    """Residuals whose scale grows with time (0.5 to 3.5 over 300 windows): intervals from
    every window alike cover about 70 % of the next 12 at 90 %, the old small residuals
    pulling them narrow; weighting by 0.97 per window of age (an effective memory of about
    33 windows) covers close to 90 %. On a steady scale both hold the level (the weighted one
    a little above it: its +1 for the new score weighs against a total of about 33)."""
    rng = np.random.default_rng(0)
    n, m, reps = 300, 12, 300
    found: dict[tuple[float, float], list[float]] = {}
    for growth in (0.0, 0.01):
        for _ in range(reps):
            residuals = _drifting_noise(rng, n + m, growth)
            for decay in (1.0, 0.97):
                half = conformal_half_width(residuals[:n], np.zeros((n, 1, 1)), 0.9, decay)
                inside = np.abs(residuals[n:]) <= half
                found.setdefault((growth, decay), []).append(float(inside.mean()))
    coverage = {key: float(np.mean(v)) for key, v in found.items()}
    assert coverage[(0.01, 1.0)] < 0.75
    assert abs(coverage[(0.01, 0.97)] - 0.9) < 0.03
    assert abs(coverage[(0.0, 1.0)] - 0.9) < 0.02
    assert 0.89 < coverage[(0.0, 0.97)] < 0.94


def test_interval_check_calibrates_the_earlier_half_and_scores_the_later() -> None:
    """On validation alone: the later half is scored by half-widths from the earlier windows
    whose targets end before it (H - 1 left out). A steady scale is covered at the level;
    a drifting one shows up as under-coverage, less with recency weights."""
    rng = np.random.default_rng(1)
    steady = _drifting_noise(rng, 2000, 0.0)
    check = interval_check(steady, np.zeros_like(steady), 0.9, 1.0, horizon=3)
    assert check is not None
    assert (check["n_calibration"], check["n_windows"]) == (998, 1000)
    assert abs(check["interval_coverage"] - 0.9) < 0.03
    drifting = _drifting_noise(rng, 400, 0.01)
    plain = interval_check(drifting, np.zeros_like(drifting), 0.9, 1.0, horizon=3)
    weighted = interval_check(drifting, np.zeros_like(drifting), 0.9, 0.97, horizon=3)
    assert plain is not None and weighted is not None
    assert plain["interval_coverage"] < weighted["interval_coverage"] < 0.85
    assert interval_check(steady[:4], steady[:4], 0.9, 1.0, horizon=3) is None


def test_calibration_keeps_the_decay_validation_scores_best() -> None:
    """Among candidate decays the validation check picks: recency weights on a drifting
    scale; the half-widths are then those of every window at the chosen decay. One
    candidate, or too few windows to check, leaves the largest."""
    rng = np.random.default_rng(2)
    drifting = _drifting_noise(rng, 400, 0.01)
    zero = np.zeros_like(drifting)
    found = calibrate_intervals(drifting, zero, 0.9, [1.0, 0.97], horizon=3)
    assert found.decay == 0.97 and set(found.checks) == {1.0, 0.97}
    better = found.checks[0.97]["interval_score"] < found.checks[1.0]["interval_score"]
    assert better
    np.testing.assert_array_equal(
        found.half_width, conformal_half_width(drifting, zero, 0.9, decay=0.97)
    )
    assert calibrate_intervals(drifting, zero, 0.9, [0.97], horizon=3).decay == 0.97
    few = calibrate_intervals(drifting[:4], zero[:4], 0.9, [0.9, 1.0], horizon=3)
    assert few.decay == 1.0 and few.checks == {}


def test_interval_score_on_a_hand_example() -> None:
    """Gneiting-Raftery at 80 % (2 / alpha = 10): the width, plus 10 times the miss."""
    actual = np.array([1.0, 5.0, -2.0])
    lower, upper = np.zeros(3), np.full(3, 2.0)
    np.testing.assert_allclose(interval_score(actual, lower, upper, 0.8), [2.0, 32.0, 22.0])
    found = interval_errors(actual, lower, upper, 0.8)
    assert found == pytest.approx(
        {"interval_coverage": 1 / 3, "interval_width": 2.0, "interval_score": 56 / 3}
    )


def test_holt_winters_band_keeps_the_point_forecast_and_brackets_it() -> None:
    rng = np.random.default_rng(1)
    t = np.arange(132)
    values = (10 + 0.05 * t + np.sin(2 * np.pi * t / 12) + rng.normal(0, 0.2, t.size))[:, None]
    band = holt_winters_band(values, [108, 120], horizon=12, season=12, level=0.9)
    np.testing.assert_array_equal(band.point, holt_winters(values, [108, 120], 12, 12))
    assert (band.lower < band.point).all() and (band.point < band.upper).all()
    # The noise is N(0, 0.2): a 90 % interval one step ahead is about 2 * 1.645 * 0.2 wide.
    assert 0.4 < float((band.upper - band.lower)[:, 0].mean()) < 1.0
    assert (np.diff((band.upper - band.lower)[0, :, 0]) > -0.05).sum() >= 9  # widens ahead


def test_release_gate_checks_interval_coverage_only_when_asked() -> None:
    from seqops.contracts import MetricsReport
    from seqops.gate import coverage_check

    def report(coverage: float) -> MetricsReport:
        test = {"rmse": 0.3, "interval_level": 0.9, "interval_coverage": coverage}
        return MetricsReport(task="forecasting", test=test)

    assert coverage_check(report(0.8333), 0.1).passed
    low = coverage_check(report(0.75), 0.05)
    assert not low.passed and low.value == 0.75
    assert "test coverage 75.0% of the 90% intervals is 15.0 points from nominal" in low.detail
    assert "outside the tolerance of 5 points" in low.detail
    assert not coverage_check(report(1.0), 0.05).passed  # too wide fails as well
    absent = coverage_check(MetricsReport(task="forecasting", test={"rmse": 0.3}), 0.05)
    assert not absent.passed and "has no test interval_coverage" in absent.detail


def test_evaluate_reports_intervals_for_the_model_and_each_baseline(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The task's evaluate on a prepared series: the conformal half-widths come from the
    validation windows, the test section and each baseline gain coverage, width and score,
    and the point errors are what they were without intervals."""
    import pandas as pd
    import torch

    from seqops.config import DataConfig, ForecastConfig
    from seqops.forecasting import INTERVAL_METRICS, forecast_errors
    from seqops.layout import Layout
    from seqops.model.network import SequenceNet
    from seqops.stages.prepare import write
    from seqops.tasks import read_meta
    from seqops.tasks.forecasting.task import ForecastMeta
    from seqops.tasks.parts.prepare import get_prepare

    t = np.arange(96)
    y = 10 + 0.1 * t + np.sin(2 * np.pi * t / 12)
    path = tmp_path / "series.csv"
    pd.DataFrame({"month": pd.date_range("2000-01-01", periods=96, freq="MS"), "y": y}).to_csv(
        path, index=False
    )
    forecast = ForecastConfig(lookback=12, horizon=3, interval_level=0.8)
    data = DataConfig(
        task="forecasting", dataset=None, path=path, time_column="month", forecast=forecast
    )
    task = get_prepare("forecasting")
    layout = Layout(tmp_path)
    write(task.prepare(data, seed=0), layout)
    meta = read_meta(layout.processed_meta)
    assert isinstance(meta, ForecastMeta)
    torch.manual_seed(0)
    net = SequenceNet(1, 1, cell="gru", hidden_size=4, num_layers=1, horizon=3).eval()
    evaluation = get_evaluate(task.name).evaluate(net, layout.processed, meta, data)
    m = evaluation.metrics
    assert m.interval is not None and m.interval.level == 0.8
    n_val = meta.cuts.test_start - meta.cuts.val_start - 3 + 1
    assert m.interval.n_calibration == n_val and len(m.interval.half_width) == 3
    assert list(m.test)[:6] == ["mae", "rmse", "smape", "mase", "n", "n_windows"]
    assert m.test["interval_level"] == 0.8
    assert set(INTERVAL_METRICS) <= set(m.test)
    for name in ("seasonal_naive", "holt_winters"):
        assert set(INTERVAL_METRICS) <= set((m.baseline or {})[name])
    ours = forecast_errors(
        evaluation.actual, evaluation.forecasts["model"], evaluation.test.mase_scale()
    )
    assert {k: m.test[k] for k in ours} == ours
    assert "model_lower" in evaluation.plot_csv(24)
    assert m.interval.decay == 1.0 and m.interval_check is not None
    assert m.interval_check["1"]["n_windows"] == n_val - n_val // 2
    assert "on validation alone" in evaluation.summary()

    # A recency decay: the model's half-widths are the weighted quantiles of its validation
    # residuals; the point forecasts do not move.
    from seqops.tasks.forecasting.backtest import model_forecast

    weighted = data.model_copy(
        update={"forecast": forecast.model_copy(update={"interval_decays": [0.5]})}
    )
    again = get_evaluate(task.name).evaluate(net, layout.processed, meta, weighted).metrics
    assert again.interval is not None and again.interval.decay == 0.5
    assert again.interval_check is not None and set(again.interval_check) == {"0.5"}
    test = evaluation.test
    origins = test.calibration_origins()
    fitted = model_forecast(net, test.spec, test.series.values, origins)
    expected = conformal_half_width(test.actual_at(origins), fitted, 0.8, decay=0.5)
    np.testing.assert_allclose(again.interval.half_width, expected)
    assert again.interval.half_width != m.interval.half_width
    assert {k: again.test[k] for k in ours} == ours


def test_a_baseline_without_error_has_no_skill_ratio(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A series that ends flat: seasonal naive forecasts the test block exactly, and evaluate
    reports its RMSE of 0 without a ratio to divide by it (it used to stop on the division)."""
    import pandas as pd
    import torch

    from seqops.config import DataConfig, ForecastConfig
    from seqops.layout import Layout
    from seqops.model.network import SequenceNet
    from seqops.stages.prepare import write
    from seqops.tasks import read_meta
    from seqops.tasks.parts.prepare import get_prepare

    t = np.arange(96)
    y = np.where(t < 60, 10 + np.sin(2 * np.pi * t / 12), 5.0)
    path = tmp_path / "series.csv"
    months = pd.date_range("2000-01-01", periods=96, freq="MS")
    pd.DataFrame({"month": months, "y": y}).to_csv(path, index=False)
    data = DataConfig(
        task="forecasting",
        dataset=None,
        path=path,
        time_column="month",
        forecast=ForecastConfig(lookback=12, horizon=3),
    )
    layout = Layout(tmp_path)
    write(get_prepare("forecasting").prepare(data, seed=0), layout)
    torch.manual_seed(0)
    net = SequenceNet(1, 1, cell="gru", hidden_size=4, num_layers=1, horizon=3).eval()
    found = get_evaluate("forecasting").evaluate(
        net, layout.processed, read_meta(layout.processed_meta), data
    )
    m = found.metrics
    assert (m.baseline or {})["seasonal_naive"]["rmse"] == 0.0
    assert m.test["rmse"] > 0 and set(m.skill or {}) == {"rmse_vs_holt_winters"}
    assert "seasonal naive RMSE 0, Holt-Winters RMSE" in found.summary()
