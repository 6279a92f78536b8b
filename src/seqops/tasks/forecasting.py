"""`forecasting`: the next `horizon` steps of one or more series from a window of their past.

Data: one regular series, bundled (`co2`, `airline`) or a file with a time column and value
columns (`data.forecast.*`). prepare cuts it chronologically (test = the last `horizon` steps,
or `test_windows` rolling origins), fits the scaler on the training steps only and stores
windows (inputs `(lookback, F)`, targets `(horizon, K)`) plus the whole series in units
(`series.csv`, what evaluation and the baselines read). The head writes `(B, H, K)` at once;
the loss is taken on integrated levels (`seqops.model.objectives.Forecast`).

Evaluate reports MAE, RMSE, sMAPE and MASE beside the seasonal-naive and Holt-Winters
baselines, and the coverage, width and interval score of split-conformal intervals calibrated
on the validation windows (`data.forecast.interval_level`; the baselines' own intervals
beside them). The ONNX output is `forecast` in the model's scaled space, and the predictor
turns it back into units from the raw history, with `<target>_lower` / `<target>_upper`
bounds from the half-widths the bundle carries. The release compares candidate and champion
by a one-sided Diebold-Mariano test and requires beating seasonal naive.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

import numpy as np
import pandas as pd
from pydantic import Field, ValidationError, model_validator

from seqops import onnx_contract as contract
from seqops.contracts import (
    Bundle,
    Contract,
    DataMeta,
    DataReport,
    FileName,
    Finite,
    MetricsReport,
    Scale,
    distinct,
)
from seqops.errors import DataError, ExportError, clip, quote
from seqops.stats import BOOTSTRAP, bootstrap_rmse
from seqops.tasks.base import (
    Check,
    Codec,
    ErrorScorer,
    Evaluation,
    Prepared,
    Quality,
    RunModel,
    Scorer,
    Task,
    beats_baseline,
)

if TYPE_CHECKING:
    from mlflow.models import ModelSignature

    from seqops.config import DataConfig, ModelConfig, TrainConfig
    from seqops.data.windows import ForecastSpec
    from seqops.forecasting import Band, ForecastTest
    from seqops.model.network import SequenceNet
    from seqops.serving import Predictor

#: Series bundled with the installed packages (nothing is downloaded): monthly means of
#: statsmodels' weekly Mauna Loa CO2, and the monthly airline passengers in sktime's wheel.
FORECAST_DATASETS = ("co2", "airline")
SERIES_FILE = "series.csv"
#: Observed steps drawn before the forecast in the forecast plot.
PLOT_HISTORY = 60
#: Suffixes of the interval bounds' columns beside each target in served forecasts.
LOWER, UPPER = "_lower", "_upper"


class CutsInfo(Contract):
    val_start: int = Field(ge=0)
    test_start: int = Field(ge=0)


class ForecastWindows(Contract):
    """What `ForecastMeta.forecast` holds (`ForecastSpec.to_dict()`), with its ranges."""

    lookback: int = Field(ge=1)
    horizon: int = Field(ge=1)
    differencing: Literal["none", "first", "seasonal"]
    season_length: int = Field(ge=1)
    feature_names: list[str] = Field(min_length=1)
    target_names: list[str] = Field(min_length=1)
    mean: list[Finite]
    std: list[Scale]

    @model_validator(mode="after")
    def _per_feature(self) -> ForecastWindows:
        n = len(self.feature_names)
        if not len(self.mean) == len(self.std) == n:
            raise ValueError(
                f"{len(self.mean)} means and {len(self.std)} stds for {n} feature_names"
            )
        distinct(self.feature_names, "feature names")
        distinct(self.target_names, "target names")
        if not set(self.target_names) <= set(self.feature_names):
            raise ValueError("target_names must be among feature_names")
        return self


class ForecastInterval(Contract):
    """Split-conformal forecast intervals: evaluate calibrates them on the validation windows
    (`reports/metrics.json`), export puts them in the bundle, serving adds `± half_width`."""

    level: float = Field(gt=0.0, lt=1.0)
    """Nominal coverage (`data.forecast.interval_level`)."""
    n_calibration: int = Field(ge=1)
    """Validation windows the half-widths were calibrated on."""
    half_width: list[list[Annotated[float, Field(ge=0.0, allow_inf_nan=False)]]] = Field(
        min_length=1
    )
    """`(horizon, targets)`: per step ahead and target, in the series' units."""

    @model_validator(mode="after")
    def _rectangular(self) -> ForecastInterval:
        if len({len(row) for row in self.half_width}) != 1 or not self.half_width[0]:
            raise ValueError("half_width must hold one non-empty row per step, all as long")
        return self


class ForecastMeta(DataMeta):
    task: Literal["forecasting"] = "forecasting"
    input: Literal["x"] = "x"
    forecast: dict[str, Any]
    """`ForecastSpec.to_dict()`: windows, differencing, the training part's scaler (checked
    as a `ForecastWindows`)."""
    freq: str | None = None
    """pandas frequency of timestamps; None when time counts integer steps."""
    cuts: CutsInfo
    series_file: FileName = SERIES_FILE
    interval: ForecastInterval | None = None
    """The calibrated intervals, in a bundle only (export copies them from evaluate's report);
    None in prepare's metadata, and in a bundle exported before evaluate ran."""

    @model_validator(mode="after")
    def _windows_fit(self) -> ForecastMeta:
        try:
            windows = ForecastWindows.model_validate(self.forecast)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(clip(str(p), 40) for p in first["loc"])
            raise ValueError(f"forecast.{where}: {clip(first['msg'], 200)}") from None
        if windows.feature_names != self.feature_names:
            raise ValueError("forecast.feature_names differ from feature_names")
        if len(windows.target_names) != self.n_outputs:
            raise ValueError(
                f"{len(windows.target_names)} forecast.target_names for {self.n_outputs} outputs"
            )
        if self.interval is not None:
            shape = (len(self.interval.half_width), len(self.interval.half_width[0]))
            if shape != (windows.horizon, self.n_outputs):
                raise ValueError(
                    f"interval.half_width is {shape[0]} x {shape[1]}, not horizon x targets "
                    f"({windows.horizon} x {self.n_outputs})"
                )
        return self

    @property
    def spec(self) -> ForecastSpec:
        from seqops.data.windows import ForecastSpec

        return ForecastSpec.from_dict(self.forecast)


class SeriesInfo(Contract):
    """Forecasting: the series and its chronological cuts."""

    n_steps: int
    freq: str | None = None
    start: str
    end: str
    train_end: str
    val: list[str]
    test: list[str]
    gaps_filled: int
    filled: list[str]
    targets: list[str]
    lookback: int
    horizon: int
    differencing: str
    season_length: int


class ForecastReport(DataReport):
    task: Literal["forecasting"] = "forecasting"
    series: SeriesInfo


class ForecastMetrics(MetricsReport):
    task: Literal["forecasting"] = "forecasting"
    per_step: dict[str, list[float]]
    """Errors per step ahead (`rmse`: one per step of the horizon)."""
    interval: ForecastInterval | None = None
    """The model's conformal intervals as calibrated (what export puts in the bundle); their
    test coverage, width and score are in `test`, the baselines' own in `baseline`."""


def forecast_test(processed: Path, meta: ForecastMeta) -> ForecastTest:
    """The prepared series, its spec and the test origins."""
    from seqops.data.series import Series
    from seqops.forecasting import ForecastTest

    spec = meta.spec
    series = Series.load(processed / meta.series_file, meta.freq)
    starts = list(range(meta.cuts.test_start, len(series) - spec.horizon + 1))
    return ForecastTest(series, spec, starts, meta.cuts.val_start)


def model_forecast(system: Any, spec: ForecastSpec, values: np.ndarray, origins: list[int]):
    """The trained system's forecasts `(N, H, K)` in units from the histories before each
    origin."""
    import torch

    system.eval()
    inputs = np.stack([spec.model_input(values[:o]) for o in origins])  # (N, L, F)
    lengths = torch.full((len(origins),), spec.lookback, dtype=torch.int64)
    with torch.no_grad():
        z = system(torch.from_numpy(inputs), lengths).numpy()
    return spec.invert(z, np.stack([spec.tail(values[:o]) for o in origins]))


def calibrate(system: Any, test: ForecastTest, level: float) -> ForecastInterval:
    """Split-conformal half-widths of the model's forecasts at `level`, from its absolute
    residuals on every validation window (`seqops.forecasting.conformal_half_width`)."""
    from seqops.forecasting import conformal_half_width
    from seqops.stats import conformal_is_exact

    origins = test.calibration_origins()
    forecasts = model_forecast(system, test.spec, test.series.values, origins)
    half = conformal_half_width(test.actual_at(origins), forecasts, level)
    if not conformal_is_exact(len(origins), level):
        print(
            f"evaluate: {len(origins)} validation windows are too few for a finite "
            f"{level:.0%} conformal interval (need {level / (1 - level):.0f}); the largest "
            "validation residual is used and the coverage guarantee does not hold"
        )
    return ForecastInterval(level=level, n_calibration=len(origins), half_width=half.tolist())


# -- evaluate ---------------------------------------------------------------------------------


class ForecastEvaluation(Evaluation):
    """Test forecasts of the model and the baselines, `(N, H, K)` in the series' units."""

    def __init__(
        self,
        test: ForecastTest,
        forecasts: dict[str, np.ndarray],
        interval: ForecastInterval | None = None,
        bands: dict[str, Band] | None = None,
    ) -> None:
        self.test = test
        self.forecasts = forecasts
        """`model`, `seasonal_naive`, `holt_winters`."""
        self.interval = interval
        """The model's calibrated intervals (None: point forecasts only)."""
        self.bands = dict(bands or {})
        """Each forecast with its interval, `model` included when `interval` is set."""
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
            skill={f"rmse_vs_{name}": found["rmse"] / b["rmse"] for name, b in baselines.items()},
            per_step={"rmse": [float(v) for v in step_rmse]},
            interval=self.interval,
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
        said = (
            f"evaluate: test RMSE {test['rmse']:.4g}, MAE {test['mae']:.4g}, sMAPE "
            f"{test['smape']:.3g} %, MASE {test['mase']:.3g} over {test['n_windows']} window(s); "
            f"seasonal naive RMSE {naive['rmse']:.4g} "
            f"({(m.skill or {})['rmse_vs_seasonal_naive']:.2f}x), Holt-Winters RMSE "
            f"{baseline['holt_winters']['rmse']:.4g}"
        )
        if "interval_coverage" not in test:
            return said
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
        )


# -- serving ----------------------------------------------------------------------------------


class ForecastCodec(Codec[ForecastMeta]):
    """History rows (time, every series, optional id) → windows; forecasts → rows in units.

    Each history must be strictly increasing in time, on the model's frequency with no missing
    step or value, and at least `lookback` (+ the differencing lag) steps long; the model reads
    its last `lookback` steps. The answer is one row per future step: id, time, `horizon`
    (1..horizon) and each target, followed by `<target>_lower` and `<target>_upper` when the
    bundle carries calibrated intervals (`ForecastMeta.interval`)."""

    def __init__(self, bundle: Bundle[ForecastMeta]) -> None:
        self.bundle = bundle
        meta = bundle.data
        self.spec = meta.spec
        self.freq = meta.freq

    def future_times(self, last: Any) -> list[Any]:
        """The `horizon` steps after `last`: ISO timestamps, or integers."""
        h = self.spec.horizon
        if self.freq is None:
            return [int(last) + i for i in range(1, h + 1)]
        steps = pd.date_range(last, periods=h + 1, freq=self.freq)[1:]
        return [t.isoformat() for t in steps]

    def inputs(
        self, frame: pd.DataFrame, where: str
    ) -> tuple[list[Any], list[np.ndarray], list[Any]]:
        """Series ids, their regular histories `(T, F)` in units, and each one's last time.

        The id column is optional (absent: the rows are one series, id 0)."""
        from seqops.data.series import parse_times, regularise
        from seqops.data.sources import numeric_columns

        b, spec = self.bundle, self.spec
        if frame.empty:
            raise DataError(f"{where}: no rows (expected one row per time step of the history)")
        required = [b.time_column, *spec.feature_names]
        missing = [c for c in required if c not in frame.columns]
        if missing:
            raise DataError(
                f"{where}: missing column(s) {missing}; the model needs {required} "
                f"(and optionally {b.id_column!r}), found {[str(c) for c in frame.columns]}"
            )
        if b.id_column in frame.columns:
            groups = frame.groupby(b.id_column, sort=False).indices.items()
        else:
            groups = [(0, np.arange(len(frame)))]
        ids, histories, lasts = [], [], []
        for seq_id, rows in groups:
            part = frame.iloc[rows]
            label = f"{where}: series {seq_id!r}"
            times = parse_times(part[b.time_column].reset_index(drop=True), label, b.time_column)
            if (self.freq is None) != (not isinstance(times, pd.DatetimeIndex)):
                kind = "timestamps" if self.freq else "integer steps"
                raise DataError(f"{label}: column {b.time_column!r} must hold {kind}")
            values = numeric_columns(part, spec.feature_names, label, gaps=True)
            series = regularise(
                times, values, spec.feature_names, self.freq, "error", label, "fill them first"
            )
            if len(series) < spec.min_history:
                lag = f" + {spec.lag} for {spec.differencing} differencing" if spec.lag else ""
                raise DataError(
                    f"{label}: history of {len(series)} steps is too short; the model needs at "
                    f"least {spec.min_history} (lookback {spec.lookback}{lag})"
                )
            ids.append(seq_id.item() if isinstance(seq_id, np.generic) else seq_id)
            histories.append(series.values)
            lasts.append(series.times[-1])
        return ids, histories, lasts

    def forecast(self, histories: list[np.ndarray], run: RunModel) -> np.ndarray:
        """`(N, H, K)` forecasts in the series' units from raw histories `(T_i, F)`."""
        from seqops.serving import CHUNK

        spec = self.spec
        chunks = []
        for i in range(0, len(histories), CHUNK):
            part = histories[i : i + CHUNK]
            x = np.stack([spec.model_input(h) for h in part])
            z = run(x, np.full(len(part), spec.lookback, dtype=np.int64))
            chunks.append(spec.invert(z, np.stack([spec.tail(h) for h in part])))
        return np.concatenate(chunks)

    def predict_frame(self, frame: pd.DataFrame, run: RunModel, where: str) -> pd.DataFrame:
        from seqops.data.windows import HORIZON_COLUMN

        b = self.bundle
        ids, histories, lasts = self.inputs(frame, where)
        forecasts = self.forecast(histories, run)  # (N, H, K)
        h = self.spec.horizon
        out = pd.DataFrame(
            forecasts.reshape(-1, forecasts.shape[-1]), columns=self.spec.target_names
        )
        interval = b.data.interval
        if interval is not None:
            half = np.tile(np.asarray(interval.half_width), (len(ids), 1))  # (N * H, K)
            for k, name in enumerate(self.spec.target_names):
                out[f"{name}{LOWER}"] = out[name] - half[:, k]
                out[f"{name}{UPPER}"] = out[name] + half[:, k]
        out.insert(0, HORIZON_COLUMN, np.tile(np.arange(1, h + 1), len(ids)))
        out.insert(0, b.time_column, [t for last in lasts for t in self.future_times(last)])
        out.insert(0, b.id_column, np.repeat(np.array(ids, dtype=object), h))
        return out

    def signature(self) -> ModelSignature:
        from mlflow.models import ModelSignature
        from mlflow.types.schema import AnyType, ColSpec, DataType, Schema

        from seqops.data.windows import HORIZON_COLUMN

        b = self.bundle
        history: list[Any] = [
            ColSpec(AnyType(), b.id_column, required=False),
            ColSpec(AnyType(), b.time_column),
        ]
        history += [ColSpec(DataType.double, name) for name in self.spec.feature_names]
        future: list[Any] = [
            ColSpec(AnyType(), b.id_column),
            ColSpec(AnyType(), b.time_column),
            ColSpec(DataType.long, HORIZON_COLUMN),
        ]
        future += [ColSpec(DataType.double, name) for name in self.spec.target_names]
        if b.data.interval is not None:
            future += [
                ColSpec(DataType.double, f"{name}{end}")
                for name in self.spec.target_names
                for end in (LOWER, UPPER)
            ]
        return ModelSignature(Schema(history), Schema(future))


# -- release ----------------------------------------------------------------------------------


# -- the task ---------------------------------------------------------------------------------


class Forecasting(Task[ForecastMeta, ForecastReport, ForecastMetrics]):
    name = "forecasting"
    meta_type = ForecastMeta
    data_report_type = ForecastReport
    metrics_type = ForecastMetrics
    metrics: ClassVar[frozenset[str]] = frozenset({"mae", "rmse", "smape", "mase"})
    val_metrics: ClassVar[frozenset[str]] = frozenset({"mae", "rmse"})
    output = contract.FORECAST
    intervals = True
    reads = ("data.forecast.",)
    ignored = ("data.label_column", "data.test_fraction", "train.label_smoothing")

    def check_data(self, data: DataConfig) -> None:
        super().check_data(data)
        if data.dataset not in (None, *FORECAST_DATASETS):
            raise ValueError(
                f"data.dataset = {quote(data.dataset)}: not a bundled series for forecasting "
                f"(choose one of {list(FORECAST_DATASETS)}, or set dataset: null and data.path)"
            )

    def prepare(self, data: DataConfig, seed: int) -> Prepared:
        """Load a regular series, cut it chronologically, fit the scaler on training steps
        only, and cut windows (design in `seqops.data.windows`)."""
        from seqops.data.sequences import SequenceSet
        from seqops.data.series import load_bundled_series, load_series_file, season_from_freq
        from seqops.data.windows import HORIZON_COLUMN, cuts, fit_spec, lag_of, origins, windows

        fc = data.forecast
        if data.dataset is not None:
            series = load_bundled_series(data.dataset, fc.gaps)
            source = f"bundled:{data.dataset}"
        else:
            assert data.path is not None
            series = load_series_file(
                data.path,
                time_column=data.time_column,
                value_columns=data.feature_columns,
                freq=fc.freq,
                gaps=fc.gaps,
                time_format=data.time_format,
            )
            source = str(data.path)
        targets = fc.target_columns or series.names
        unknown = [t for t in targets if t not in series.names]
        if unknown:
            raise DataError(
                f"data.forecast.target_columns: {unknown} not among the series' columns "
                f"{series.names}"
            )
        clash = [t for t in targets if t in (data.id_column, data.time_column, HORIZON_COLUMN)]
        if clash:
            raise DataError(
                f"target column(s) {clash} would collide with the forecast output's id, time or "
                f"{HORIZON_COLUMN!r} column; rename them"
            )
        season = fc.season_length or season_from_freq(series.freq)
        if season is None:
            raise DataError(
                f"{source}: no usual season for frequency {series.freq or 'integer steps'}; "
                "set data.forecast.season_length (1 for a series without seasonality)"
            )
        lag = lag_of(fc.differencing, season)
        cut = cuts(len(series), fc.horizon, fc.test_windows, data.val_fraction, fc.lookback + lag)
        spec = fit_spec(
            series.values,
            cut,
            lookback=fc.lookback,
            horizon=fc.horizon,
            differencing=fc.differencing,
            season_length=season,
            feature_names=series.names,
            target_names=list(targets),
        )
        splits = {
            name: SequenceSet(*windows(series.values, spec, starts))
            for name, starts in origins(cut, spec).items()
        }
        meta = ForecastMeta(
            feature_names=series.names,
            label_names=[],
            n_outputs=len(spec.target_names),
            max_train_length=int(max(s.lengths.max() for s in splits.values())),
            forecast=spec.to_dict(),
            freq=series.freq,
            cuts=CutsInfo(val_start=cut.val_start, test_start=cut.test_start),
        )
        times = series.times
        info = SeriesInfo(
            n_steps=len(series),
            freq=series.freq,
            start=str(times[0]),
            end=str(times[-1]),
            train_end=str(times[cut.val_start - 1]),
            val=[str(times[cut.val_start]), str(times[cut.test_start - 1])],
            test=[str(times[cut.test_start]), str(times[-1])],
            gaps_filled=len(series.filled),
            filled=series.filled,
            targets=spec.target_names,
            lookback=spec.lookback,
            horizon=spec.horizon,
            differencing=spec.differencing,
            season_length=spec.season_length,
        )
        files: dict[str, Callable[[Path], None]] = {SERIES_FILE: series.save}
        return Prepared(splits, meta, source, {"series": info}, files)

    def summary(self, report: ForecastReport) -> str:
        info = report.series
        return (
            f"prepare: {info.n_steps} steps of {info.targets} from {report.source} "
            f"({info.gaps_filled} gaps filled): {report.n_train} train / "
            f"{report.n_val} val / {report.n_test} test windows, test {info.test}"
        )

    def network_args(
        self, meta: ForecastMeta, processed: Path, model: ModelConfig
    ) -> dict[str, Any]:
        return {"horizon": meta.spec.horizon}

    def objective(
        self, meta: ForecastMeta, train: TrainConfig, model: ModelConfig
    ) -> dict[str, Any]:
        """The horizon, and the lag and target scale that turn the scaled (differenced)
        outputs into level errors."""
        spec = meta.spec
        return {
            "kind": "forecast",
            "horizon": spec.horizon,
            "lag": spec.lag,
            "target_std": spec.std[spec.target_index].tolist(),
        }

    def evaluate(
        self,
        system: SequenceNet,
        processed: Path,
        meta: ForecastMeta,
        data: DataConfig | None = None,
    ) -> ForecastEvaluation:
        """Model, seasonal-naive and Holt-Winters forecasts at every test origin, each with its
        interval at `data.forecast.interval_level`: the model's split-conformal, calibrated on
        the validation windows (`calibrate`), the baselines' their own (`baseline_bands`)."""
        from seqops.config import ForecastConfig

        level = (data.forecast if data is not None else ForecastConfig()).interval_level
        test = forecast_test(processed, meta)
        forecasts = model_forecast(system, test.spec, test.series.values, test.origins)
        bands = test.baseline_bands(level)
        points = {name: band.point for name, band in bands.items()}
        interval = calibrate(system, test, level)
        return ForecastEvaluation(test, {"model": forecasts, **points}, interval, bands)

    def calibrated_meta(self, meta: ForecastMeta, metrics: ForecastMetrics) -> ForecastMeta:
        """prepare's metadata with the intervals evaluate calibrated (what serving adds)."""
        interval = None if metrics.interval is None else metrics.interval.model_dump()
        return ForecastMeta.model_validate({**meta.model_dump(), "interval": interval})

    def output_shape(self, meta: ForecastMeta) -> list[str | int]:
        return [contract.BATCH, meta.spec.horizon, meta.n_outputs]

    def quality(self, predictor: Predictor, processed: Path) -> Quality:
        """Test RMSE in the series' units of the ONNX model, from the raw test histories."""
        codec = ForecastCodec(predictor.bundle)
        test = forecast_test(processed, codec.bundle.data)
        forecasts = codec.forecast(test.histories(), predictor.run)
        rmse = float(np.sqrt(((forecasts - test.actual()) ** 2).mean()))
        return Quality("test/rmse", rmse, lower_is_better=True)

    def served_checks(
        self,
        system: SequenceNet,
        predictor: Predictor,
        processed: Path,
        tolerance: contract.Tolerance,
    ) -> dict[str, float]:
        """The whole serving path (raw history rows → preprocessing.json → ONNX → units)
        against the evaluated PyTorch forecasts; raises when they differ beyond what
        `tolerance` on the scaled outputs allows once integrated and scaled back (its
        absolute part × target std × horizon, its relative part as it is)."""
        bundle: Bundle[ForecastMeta] = predictor.bundle
        test = forecast_test(processed, bundle.data)
        spec = test.spec
        expected = model_forecast(system, spec, test.series.values, test.origins)
        requests = test.history_frame(bundle.id_column, bundle.time_column)
        served = predictor.predict_frame(requests, where="test histories")
        got = served[spec.target_names].to_numpy().reshape(expected.shape)
        gap = float(np.abs(got - expected).max())
        limit = tolerance.scaled(float(spec.std[spec.target_index].max()) * spec.horizon)
        ratio = limit.ratio(got, expected)
        if ratio > 1.0:
            raise ExportError(
                f"forecasts served from raw test histories differ from the evaluated model's by "
                f"{gap:.3g}, {ratio:.3g} times the tolerance (atol {limit.atol:.3g} + rtol "
                f"{limit.rtol:g} × |forecast|): preprocessing.json does not match the model"
            )
        return {"served_max_abs_diff": gap}

    def request_example(
        self, processed: Path, bundle: Bundle[ForecastMeta], n: int
    ) -> pd.DataFrame:
        test = forecast_test(processed, bundle.data)
        requests = test.history_frame(bundle.id_column, bundle.time_column)
        return requests[requests[bundle.id_column].isin([f"seq{i}" for i in range(n)])]

    def codec(self, bundle: Bundle[ForecastMeta], files: dict[str, Path]) -> Codec[ForecastMeta]:
        return ForecastCodec(bundle)

    def scorer(self, processed: Path, bundle: Bundle[ForecastMeta]) -> Scorer:
        test = forecast_test(processed, bundle.data)
        requests = test.history_frame(bundle.id_column, bundle.time_column)
        return ErrorScorer(requests, test.spec.target_names, test.actual())

    def extra_checks(self, metrics: ForecastMetrics) -> list[Check]:
        """A model must beat the seasonal-naive forecast."""
        naive = (metrics.baseline or {})["seasonal_naive"]["rmse"]
        ours = float(metrics.test["rmse"])
        return [beats_baseline("beats_seasonal_naive", ours, naive, "seasonal naive")]

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
        return [
            "",
            f"Forecast intervals at {interval.level:.0%}: the model's are split-conformal, "
            f"calibrated on {interval.n_calibration} validation windows (served as "
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
