"""`forecasting`'s evaluate part: MAE, RMSE, sMAPE, MASE and split-conformal intervals
beside the seasonal-naive and Holt-Winters baselines, and the forecast plot."""

from __future__ import annotations

import csv
import io
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from seqops.tasks.forecasting.backtest import forecast_test, model_forecast
from seqops.tasks.forecasting.task import (
    LOWER,
    PLOT_HISTORY,
    UPPER,
    Forecasting,
    ForecastInterval,
    ForecastMeta,
    ForecastMetrics,
    ForecastReport,
)
from seqops.tasks.parts.evaluate import EvaluateTask, Evaluation

if TYPE_CHECKING:
    from seqops.config import DataConfig
    from seqops.forecasting import Band, ForecastTest
    from seqops.model.network import SequenceNet


def calibrate(
    system: Any, test: ForecastTest, level: float, decays: list[float]
) -> tuple[ForecastInterval, dict[str, dict[str, float]] | None]:
    """Split-conformal half-widths of the model's forecasts at `level`, from its absolute
    residuals on every validation window weighted by the recency decay that validation chose
    among `decays` (`seqops.forecasting.calibrate_intervals`); and each candidate's check on
    validation alone, keyed by the decay (`"1"`, `"0.9"`)."""
    from seqops.forecasting import calibrate_intervals, effective_windows
    from seqops.stats import conformal_is_exact

    origins = test.calibration_origins()
    forecasts = model_forecast(system, test.spec, test.series.values, origins)
    found = calibrate_intervals(
        test.actual_at(origins), forecasts, level, decays, test.spec.horizon
    )
    weight = effective_windows(len(origins), found.decay)
    if not conformal_is_exact(weight, level):
        weighed = "" if found.decay == 1.0 else f" (weighing {weight:.1f} at decay {found.decay})"
        print(
            f"evaluate: {len(origins)} validation windows{weighed} are too few for a finite "
            f"{level:.0%} conformal interval (need {level / (1 - level):.0f}); the largest "
            "validation residual is used and the coverage guarantee does not hold"
        )
    interval = ForecastInterval(
        level=level,
        n_calibration=len(origins),
        decay=found.decay,
        half_width=found.half_width.tolist(),
    )
    checks = {f"{decay:g}": check for decay, check in found.checks.items()}
    return interval, checks or None


class ForecastEvaluation(Evaluation):
    """Test forecasts of the model and the baselines, `(N, H, K)` in the series' units."""

    def __init__(
        self,
        test: ForecastTest,
        forecasts: dict[str, np.ndarray],
        interval: ForecastInterval | None = None,
        bands: dict[str, Band] | None = None,
        check: dict[str, dict[str, float]] | None = None,
    ) -> None:
        self.test = test
        self.forecasts = forecasts
        """`model`, `seasonal_naive`, `holt_winters`."""
        self.interval = interval
        """The model's calibrated intervals (None: point forecasts only)."""
        self.bands = dict(bands or {})
        """Each forecast with its interval, `model` included when `interval` is set."""
        self.check = check
        """The model's calibration tried on validation alone, per candidate decay."""
        if interval is not None:
            from seqops.forecasting import Band

            half = np.asarray(interval.half_width)[None]  # (1, H, K)
            model = forecasts["model"]
            self.bands["model"] = Band(model, model - half, model + half)
        self.metrics = self._metrics()

    @cached_property
    def actual(self) -> np.ndarray:
        return self.test.actual()

    def _metrics(self) -> ForecastMetrics:
        from seqops.forecasting import forecast_errors, interval_errors

        scale = self.test.mase_scale()
        level = self.interval.level if self.interval is not None else None

        def errors(name: str) -> dict[str, float]:
            found = forecast_errors(self.actual, self.forecasts[name], scale)
            band = self.bands.get(name)
            if band is None or level is None or np.isnan(band.lower).any():
                return found
            return {**found, **interval_errors(self.actual, band.lower, band.upper, level)}

        from seqops.forecasting import INTERVAL_METRICS

        found = errors("model")
        test: dict[str, float | int] = {k: v for k, v in found.items() if k not in INTERVAL_METRICS}
        # The point errors and counts first, as before intervals were reported.
        test.update({"n": int(self.actual.size), "n_windows": len(self.test.origins)})
        if level is not None:
            test.update({"interval_level": level, **{k: found[k] for k in INTERVAL_METRICS}})
        baselines = {name: errors(name) for name in self.forecasts if name != "model"}
        step_rmse = np.sqrt(((self.forecasts["model"] - self.actual) ** 2).mean(axis=(0, 2)))
        return ForecastMetrics(
            task=Forecasting.name,
            test=test,
            baseline=baselines,
            # A baseline without error (a series that ends flat) has no ratio to report.
            skill={
                f"rmse_vs_{name}": found["rmse"] / b["rmse"]
                for name, b in baselines.items()
                if b["rmse"] > 0
            },
            per_step={"rmse": [float(v) for v in step_rmse]},
            interval=self.interval,
            interval_check=self.check,
        )

    def predictions_csv(self) -> str:
        """One row per (origin, step, target): the actual value and every forecast."""
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        names = list(self.forecasts)
        writer.writerow(["origin", "time", "horizon", "target", "actual", *names, "error"])
        times = self.test.series.times
        for i, o in enumerate(self.test.origins):
            for h in range(self.test.spec.horizon):
                for k, target in enumerate(self.test.spec.target_names):
                    got = [self.forecasts[n][i, h, k] for n in names]
                    actual = self.actual[i, h, k]
                    writer.writerow(
                        [str(times[o]), str(times[o + h]), h + 1, target, f"{actual:.6g}"]
                        + [f"{v:.6g}" for v in got]
                        + [f"{got[0] - actual:.6g}"]
                    )
        return buf.getvalue()

    def plot_csv(self, history_steps: int) -> str:
        """The last `history_steps` observed steps and the last origin's forecasts, and the
        model's interval bounds as `model_lower` / `model_upper` (DVC plot)."""
        times, origin, last = self.test.series.times, self.test.origins[-1], -1
        rows = ["time,series,value"]
        for t in range(max(origin - history_steps, 0), len(times)):
            rows.append(f"{times[t]},actual,{self.test.targets[t, 0]:.6g}")
        lines = dict(self.forecasts)
        band = self.bands.get("model")
        if band is not None:
            lines.update({f"model{LOWER}": band.lower, f"model{UPPER}": band.upper})
        for name, forecast in lines.items():
            for h in range(self.test.spec.horizon):
                rows.append(f"{times[origin + h]},{name},{forecast[last, h, 0]:.6g}")
        return "\n".join(rows) + "\n"

    def plot_png(self, path: Path, history_steps: int) -> None:
        """History, actuals and every forecast of the last test origin, per target, with the
        model's interval as a shaded band."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from seqops import outputs

        o, last, h = self.test.origins[-1], len(self.test.origins) - 1, self.test.spec.horizon
        times = self.test.series.times
        start = max(o - history_steps, 0)
        targets = self.test.spec.target_names
        fig, axes = plt.subplots(len(targets), 1, figsize=(10, 3.5 * len(targets)), squeeze=False)
        for k, (ax, name) in enumerate(zip(axes[:, 0], targets, strict=True)):
            history = self.test.targets[start:o, k]
            ax.plot(times[start:o], history, color="black", label="history")
            ax.plot(
                times[o : o + h], self.actual[last, :, k], color="black", ls="--", label="actual"
            )
            band = self.bands.get("model")
            if band is not None and self.interval is not None:
                ax.fill_between(
                    times[o : o + h],
                    band.lower[last, :, k],
                    band.upper[last, :, k],
                    color="tab:red",
                    alpha=0.2,
                    label=f"model {self.interval.level:.0%} interval",
                )
            styles = {"model": "tab:red", "seasonal_naive": "tab:gray", "holt_winters": "tab:blue"}
            for method, forecast in self.forecasts.items():
                ax.plot(
                    times[o : o + h], forecast[last, :, k], color=styles.get(method), label=method
                )
            ax.axvline(times[o], color="gray", lw=0.8)
            ax.set_title(f"{name}: {h}-step forecast from {times[o]}")
            ax.legend(loc="upper left")
        fig.tight_layout()
        with outputs.atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=100, format="png")
        plt.close(fig)

    def write_plots(self, plots: Path, scratch: Path) -> list[Path]:
        from seqops import outputs

        png = plots / "forecast.png"
        outputs.write_text(plots / "forecast.csv", self.plot_csv(PLOT_HISTORY))
        self.plot_png(png, PLOT_HISTORY)
        return [png]

    def logged_metrics(self) -> dict[str, float]:
        from seqops.forecasting import INTERVAL_METRICS, METRICS

        m = self.metrics
        names = (*METRICS, *INTERVAL_METRICS)
        logged = {f"test/{k}": float(v) for k, v in m.test.items() if k in names}
        return {**logged, **self.logged_baselines()}

    def summary(self) -> str:
        m = self.metrics
        test, baseline = m.test, m.baseline or {}
        naive = baseline["seasonal_naive"]
        ratio = (m.skill or {}).get("rmse_vs_seasonal_naive")
        said = (
            f"evaluate: test RMSE {test['rmse']:.4g}, MAE {test['mae']:.4g}, sMAPE "
            f"{test['smape']:.3g} %, MASE {test['mase']:.3g} over {test['n_windows']} window(s); "
            f"seasonal naive RMSE {naive['rmse']:.4g}"
            + ("" if ratio is None else f" ({ratio:.2f}x)")
            + f", Holt-Winters RMSE {baseline['holt_winters']['rmse']:.4g}"
        )
        if "interval_coverage" not in test:
            return said
        checked = ""
        if self.check and self.interval is not None:
            chosen = self.check[f"{self.interval.decay:g}"]
            checked = (
                f"\nevaluate: on validation alone (the earlier {chosen['n_calibration']:.0f} "
                f"windows calibrate the later {chosen['n_windows']:.0f}), decay "
                f"{self.interval.decay:g}: coverage {chosen['interval_coverage']:.1%}, mean "
                f"width {chosen['interval_width']:.4g}, interval score "
                f"{chosen['interval_score']:.4g}"
                + "".join(
                    f"; decay {d} {c['interval_coverage']:.1%}, {c['interval_score']:.4g}"
                    for d, c in self.check.items()
                    if c is not chosen
                )
            )
        return (
            f"{said}\nevaluate: {test['interval_level']:.0%} conformal interval: test coverage "
            f"{test['interval_coverage']:.1%}, mean width {test['interval_width']:.4g}, "
            f"interval score {test['interval_score']:.4g}"
            + "".join(
                f"; {name} {b['interval_coverage']:.1%}, {b['interval_width']:.4g}, "
                f"{b['interval_score']:.4g}"
                for name, b in baseline.items()
                if "interval_coverage" in b
            )
            + checked
        )


class ForecastingEvaluate(EvaluateTask[ForecastMeta, ForecastReport, ForecastMetrics], Forecasting):
    def evaluate(
        self,
        system: SequenceNet,
        processed: Path,
        meta: ForecastMeta,
        data: DataConfig | None = None,
    ) -> ForecastEvaluation:
        """Model, seasonal-naive and Holt-Winters forecasts at every test origin, each with its
        interval at `data.forecast.interval_level`: the model's split-conformal, calibrated on
        the validation windows (`calibrate`, recent ones weighted by the candidate of
        `data.forecast.interval_decays` validation chose), the baselines' their own
        (`baseline_bands`)."""
        from seqops.config import ForecastConfig

        config = data.forecast if data is not None else ForecastConfig()
        level, decays = config.interval_level, config.interval_decays
        test = forecast_test(processed, meta)
        forecasts = model_forecast(system, test.spec, test.series.values, test.origins)
        bands = test.baseline_bands(level, decays)
        points = {name: band.point for name, band in bands.items()}
        interval, check = calibrate(system, test, level, decays)
        return ForecastEvaluation(test, {"model": forecasts, **points}, interval, bands, check)
