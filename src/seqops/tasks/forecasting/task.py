"""`forecasting`'s seam: name, metadata, reports (see the package's docstring)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

from pydantic import Field, ValidationError, model_validator

from seqops import onnx_contract as contract
from seqops.contracts import (
    Contract,
    DataMeta,
    DataReport,
    FileName,
    Finite,
    MetricsReport,
    Scale,
    distinct,
)
from seqops.errors import clip, quote
from seqops.tasks.base import Task

if TYPE_CHECKING:
    from seqops.config import DataConfig
    from seqops.data.windows import ForecastSpec

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
    log: bool = False
    """The targets' logarithm is modelled (absent from a bundle written before: levels)."""

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
    decay: float = Field(1.0, gt=0.0, le=1.0)
    """The windows' weight per window of age, the candidate in `data.forecast.interval_decays`
    validation chose (1, every window alike, is what a bundle written before the weights
    existed holds)."""
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
    log: bool = False
    """The targets' logarithm is modelled (`data.forecast.transform: log`)."""


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
    interval_check: dict[str, dict[str, float]] | None = None
    """The model's calibration tried on validation alone, per candidate decay (`"1"`,
    `"0.9"`: `seqops.forecasting.interval_check`): coverage, width and score on the later half
    of the validation windows of intervals calibrated on the earlier half; None without
    intervals or with too few windows."""


# -- the task ---------------------------------------------------------------------------------


class Forecasting(Task[ForecastMeta, ForecastReport, ForecastMetrics]):
    """The seam."""

    name = "forecasting"
    meta_type = ForecastMeta
    data_report_type = ForecastReport
    metrics_type = ForecastMetrics
    metrics: ClassVar[frozenset[str]] = frozenset({"mae", "rmse", "smape", "mase"})
    val_metrics: ClassVar[frozenset[str]] = frozenset({"mae", "rmse"})
    output = contract.FORECAST
    intervals = True
    reads = ("data.forecast.", "train.forecast_shrink")
    ignored = ("data.label_column", "data.test_fraction", "train.label_smoothing")

    def check_data(self, data: DataConfig) -> None:
        super().check_data(data)
        if data.dataset not in (None, *FORECAST_DATASETS):
            raise ValueError(
                f"data.dataset = {quote(data.dataset)}: not a bundled series for forecasting "
                f"(choose one of {list(FORECAST_DATASETS)}, or set dataset: null and data.path)"
            )
