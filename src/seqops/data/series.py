"""Regular time series for forecasting: the bundled CO2 and airline series, or a user file.

A user file has a time column and one column per series (CSV, TSV or Parquet):

    month,co2
    1958-03-01,315.7
    1958-04-01,317.5

Time is either timestamps (parsed by pandas; the frequency is `data.forecast.freq` or
inferred) or integers counting steps. The series must be regular: a missing step or a
missing value is a gap, which stops the run naming it (`gaps: error`) or is filled by linear
interpolation in time and reported (`gaps: interpolate`). Timestamps must increase strictly.
Nothing here imports torch: the torch-free predictor checks request histories with it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from seqops.errors import DataError

#: Steps per season for the common pandas frequencies (by the offset's base name).
_SEASONS = {
    "MS": 12, "ME": 12, "M": 12, "BMS": 12, "BME": 12, "SMS": 24,
    "QS": 4, "QE": 4, "Q": 4, "BQS": 4, "BQE": 4,
    "W": 52, "D": 7, "B": 5, "h": 24, "H": 24, "min": 60,
}  # fmt: skip


#: The time column of the processed series file.
_TIME = "time"


@dataclass(frozen=True)
class Series:
    """One regular multivariate series: `values` `(N, F)` at `times` (one step apart)."""

    times: pd.Index
    values: np.ndarray
    names: list[str]
    freq: str | None
    """pandas frequency alias for timestamps; None for integer steps."""
    filled: list[str] = field(default_factory=list)
    """Steps that were gaps and were interpolated (as text)."""

    def __len__(self) -> int:
        return len(self.values)

    def save(self, path: Path) -> None:
        """CSV: a `time` column, then one column per series (`load` reads it back)."""
        out = pd.DataFrame(self.values, columns=self.names)
        out.insert(0, _TIME, self.times)
        out.to_csv(path, index=False)

    @classmethod
    def load(cls, path: Path, freq: str | None) -> Series:
        """A series `save` wrote, times parsed back (timestamps when `freq` is set)."""
        frame = pd.read_csv(path)
        times = frame.pop(_TIME)
        index = pd.DatetimeIndex(pd.to_datetime(times)) if freq else pd.Index(times.to_numpy())
        return cls(index, frame.to_numpy(dtype=np.float64), list(frame.columns), freq)


def season_from_freq(freq: str | None) -> int | None:
    """Steps per season for a frequency alias (`MS` → 12), None when there is no usual one."""
    if freq is None:
        return None
    base = pd.tseries.frequencies.to_offset(freq).name.split("-")[0]
    return _SEASONS.get(base.lstrip("0123456789"))


def parse_times(
    column: pd.Series, where: str, name: str, time_format: str | None = None
) -> pd.Index:
    """Integer steps, or timestamps (`seqops.data.sources.parse_timestamps`: `time_format`,
    day/month order, zones); anything else names the first unreadable row."""
    if column.isna().any():
        row = int(np.flatnonzero(column.isna().to_numpy())[0])
        raise DataError(f"{where}: time column {name!r} is empty at row {row}")
    if pd.api.types.is_integer_dtype(column):
        return pd.Index(column.to_numpy(dtype=np.int64))
    from seqops.data.sources import check_one_kind, parse_timestamps

    check_one_kind(column, where, name)  # a number among timestamps would read as 1970
    if pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
        raise DataError(
            f"{where}: time column {name!r} holds {column.dtype} values; use timestamps or "
            "integer step numbers"
        )
    if pd.api.types.is_datetime64_any_dtype(column):
        parsed = column.dt.tz_localize(None) if column.dt.tz is not None else column
    else:
        parsed = parse_timestamps(column, where, name, time_format, mixed=False)
    if parsed.isna().any():
        row = int(np.flatnonzero(parsed.isna().to_numpy())[0])
        expected = f"data.time_format {time_format!r}" if time_format else "a timestamp"
        raise DataError(
            f"{where}: time column {name!r} row {row} holds {column.iloc[row]!r}, "
            f"which is not {expected}"
        )
    return pd.DatetimeIndex(parsed)


def check_increasing(times: pd.Index, where: str) -> None:
    """Strictly increasing timestamps; a repeat or a step back is named."""
    steps = np.diff(times.asi8 if isinstance(times, pd.DatetimeIndex) else times.to_numpy())
    bad = np.flatnonzero(steps <= 0)
    if len(bad):
        i = int(bad[0])
        what = "repeats" if steps[i] == 0 else "goes back to"
        raise DataError(
            f"{where}: timestamps must increase; row {i + 1} {what} {times[i + 1]} after "
            f"{times[i]} (sort the rows, and keep one row per step)"
        )


def infer_freq(times: pd.DatetimeIndex, where: str) -> str:
    """The frequency most short runs of timestamps agree on (a gap breaks `pd.infer_freq`)."""
    if len(times) >= 3:
        whole = pd.infer_freq(times)
        if whole:
            return whole
    runs = [pd.infer_freq(times[i : i + 3]) for i in range(min(len(times) - 2, 1000))]
    found = pd.Series([r for r in runs if r]).value_counts()
    if found.empty:
        raise DataError(
            f"{where}: cannot infer the frequency of the time column; set data.forecast.freq "
            "(a pandas alias such as MS, D, h)"
        )
    return str(found.index[0])


def regularise(
    times: pd.Index,
    values: np.ndarray,
    names: list[str],
    freq: str | None,
    gaps: str,
    where: str,
    gap_hint: str = "fill them, or set data.forecast.gaps: interpolate",
) -> Series:
    """Check the steps are one `freq` apart; missing steps and NaN values are gaps."""
    check_increasing(times, where)
    if isinstance(times, pd.DatetimeIndex):
        freq = freq or infer_freq(times, where)
        expected = pd.date_range(times[0], times[-1], freq=freq)
        off_grid = times.difference(expected)
        if len(off_grid):
            raise DataError(
                f"{where}: timestamp {off_grid[0]} is not on the {freq!r} grid that starts at "
                f"{times[0]} (set data.forecast.freq, or fix the time column)"
            )
        full: pd.Index = expected
    else:
        full = pd.RangeIndex(int(times[0]), int(times[-1]) + 1)
    frame = pd.DataFrame(values, index=times, columns=names).reindex(full)
    holes = frame.isna().any(axis=1).to_numpy()
    filled: list[str] = []
    if holes.any():
        missing = [str(t.date()) if hasattr(t, "date") else str(t) for t in full[holes]]
        if gaps == "error":
            shown = ", ".join(missing[:5]) + (", ..." if len(missing) > 5 else "")
            raise DataError(
                f"{where}: {len(missing)} gap(s) in the series (missing step or value at "
                f"{shown}); {gap_hint}"
            )
        if holes[0] or holes[-1]:
            raise DataError(
                f"{where}: the series starts or ends with a gap ({missing[0]}), which "
                "interpolation cannot fill; trim it"
            )
        method = "time" if isinstance(full, pd.DatetimeIndex) else "linear"
        frame = frame.interpolate(method=method)
        filled = missing
    return Series(full, frame.to_numpy(dtype=np.float64), names, freq, filled)


def load_bundled_series(name: str, gaps: str) -> Series:
    """`co2`: statsmodels' weekly Mauna Loa CO2 as monthly means (months with no reading are
    gaps); `airline`: sktime's monthly airline passengers (1949-1960)."""
    if name == "co2":
        import statsmodels.datasets.co2

        weekly = statsmodels.datasets.co2.load_pandas().data["co2"]
        monthly = weekly.resample("MS").mean()
        return regularise(
            monthly.index, monthly.to_numpy()[:, None], ["co2"], "MS", gaps, "statsmodels:co2"
        )
    if name == "airline":
        from sktime.datasets import load_airline

        passengers = load_airline()
        times = passengers.index.to_timestamp(how="start")
        return regularise(
            pd.DatetimeIndex(times),
            passengers.to_numpy(dtype=np.float64)[:, None],
            ["passengers"],
            "MS",
            gaps,
            "sktime:airline",
        )
    raise DataError(f"data.dataset: {name!r} is not a bundled series (co2, airline)")


def load_series_file(
    path: Path,
    *,
    time_column: str,
    value_columns: list[str] | None,
    freq: str | None,
    gaps: str,
    time_format: str | None = None,
) -> Series:
    """A time column plus value columns (all other columns unless `value_columns` says)."""
    from seqops.data.sources import numeric_columns, read_table

    frame = read_table(path)
    where = str(path)
    required = [time_column, *(value_columns or [])]
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise DataError(
            f"{where}: missing column(s) {missing}; found {list(frame.columns)} "
            "(set data.time_column / data.feature_columns / data.forecast.target_columns)"
        )
    names = value_columns or [str(c) for c in frame.columns if c != time_column]
    if not names:
        raise DataError(f"{where}: no value columns besides the time column {time_column!r}")
    times = parse_times(frame[time_column], where, time_column, time_format)
    values = numeric_columns(frame, names, where, gaps=True)
    return regularise(times, values, names, freq, gaps, where)
