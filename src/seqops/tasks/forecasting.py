"""`forecasting`: the next `horizon` steps of one or more series from a window of their past.

Data: one regular series, bundled (`co2`, `airline`) or a file with a time column and value
columns (`data.forecast.*`). prepare cuts it chronologically (test = the last `horizon` steps,
or `test_windows` rolling origins), fits the scaler on the training steps only and stores
windows (inputs `(lookback, F)`, targets `(horizon, K)`) plus the whole series in units
(`series.csv`, what evaluation and the baselines read). The head writes `(B, H, K)` at once;
the loss is taken on integrated levels (`seqops.model.objectives.Forecast`).

Evaluate reports MAE, RMSE, sMAPE and MASE beside the seasonal-naive and Holt-Winters
baselines; the ONNX output is `forecast` in the model's scaled space, and the predictor turns
it back into units from the raw history. The release compares candidate and champion by a
one-sided Diebold-Mariano test and requires beating seasonal naive.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

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
    from seqops.forecasting import ForecastTest
    from seqops.model.network import SequenceNet
    from seqops.serving import Predictor

#: Series bundled with the installed packages (nothing is downloaded): monthly means of
#: statsmodels' weekly Mauna Loa CO2, and the monthly airline passengers in sktime's wheel.
FORECAST_DATASETS = ("co2", "airline")
SERIES_FILE = "series.csv"
#: Observed steps drawn before the forecast in the forecast plot.
PLOT_HISTORY = 60


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


# -- evaluate ---------------------------------------------------------------------------------


class ForecastEvaluation(Evaluation):
    """Test forecasts of the model and the baselines, `(N, H, K)` in the series' units."""

    def __init__(self, test: ForecastTest, forecasts: dict[str, np.ndarray]) -> None:
        self.test = test
        self.forecasts = forecasts
        """`model`, `seasonal_naive`, `holt_winters`."""
        self.metrics = self._metrics()

    @cached_property
    def actual(self) -> np.ndarray:
        return self.test.actual()

    def _metrics(self) -> ForecastMetrics:
        from seqops.forecasting import forecast_errors

        scale = self.test.mase_scale()

        def errors(name: str) -> dict[str, float]:
            return forecast_errors(self.actual, self.forecasts[name], scale)

        test = errors("model")
        baselines = {name: errors(name) for name in self.forecasts if name != "model"}
        step_rmse = np.sqrt(((self.forecasts["model"] - self.actual) ** 2).mean(axis=(0, 2)))
        return ForecastMetrics(
            task=Forecasting.name,
            test={**test, "n": int(self.actual.size), "n_windows": len(self.test.origins)},
            baseline=baselines,
            skill={f"rmse_vs_{name}": test["rmse"] / b["rmse"] for name, b in baselines.items()},
            per_step={"rmse": [float(v) for v in step_rmse]},
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
        """The last `history_steps` observed steps and the last origin's forecasts (DVC plot)."""
        times, origin, last = self.test.series.times, self.test.origins[-1], -1
        rows = ["time,series,value"]
        for t in range(max(origin - history_steps, 0), len(times)):
            rows.append(f"{times[t]},actual,{self.test.targets[t, 0]:.6g}")
        for name, forecast in self.forecasts.items():
            for h in range(self.test.spec.horizon):
                rows.append(f"{times[origin + h]},{name},{forecast[last, h, 0]:.6g}")
        return "\n".join(rows) + "\n"

    def plot_png(self, path: Path, history_steps: int) -> None:
        """History, actuals and every forecast of the last test origin, per target."""
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
        from seqops.forecasting import METRICS

        m = self.metrics
        logged = {f"test/{k}": float(v) for k, v in m.test.items() if k in METRICS}
        return {**logged, **self.logged_baselines()}

    def summary(self) -> str:
        m = self.metrics
        test, baseline = m.test, m.baseline or {}
        naive = baseline["seasonal_naive"]
        return (
            f"evaluate: test RMSE {test['rmse']:.4g}, MAE {test['mae']:.4g}, sMAPE "
            f"{test['smape']:.3g} %, MASE {test['mase']:.3g} over {test['n_windows']} window(s); "
            f"seasonal naive RMSE {naive['rmse']:.4g} "
            f"({(m.skill or {})['rmse_vs_seasonal_naive']:.2f}x), Holt-Winters RMSE "
            f"{baseline['holt_winters']['rmse']:.4g}"
        )


# -- serving ----------------------------------------------------------------------------------


class ForecastCodec(Codec[ForecastMeta]):
    """History rows (time, every series, optional id) → windows; forecasts → rows in units.

    Each history must be strictly increasing in time, on the model's frequency with no missing
    step or value, and at least `lookback` (+ the differencing lag) steps long; the model reads
    its last `lookback` steps. The answer is one row per future step: id, time, `horizon`
    (1..horizon) and each target."""

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
        self, system: SequenceNet, processed: Path, meta: ForecastMeta
    ) -> ForecastEvaluation:
        """Model, seasonal-naive and Holt-Winters forecasts at every test origin."""
        test = forecast_test(processed, meta)
        forecasts = model_forecast(system, test.spec, test.series.values, test.origins)
        return ForecastEvaluation(test, {"model": forecasts, **test.baselines()})

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
