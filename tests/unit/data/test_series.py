"""Regular series: bundled CO2 and airline, and one clear error per bad file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from seqops.data.series import load_bundled_series, load_series_file, season_from_freq
from seqops.errors import DataError


def test_co2_is_monthly_means_with_its_five_empty_months_explicit() -> None:
    with pytest.raises(DataError, match=r"5 gap\(s\).*1958-06-01, 1958-10-01, 1964-02-01"):
        load_bundled_series("co2", "error")
    series = load_bundled_series("co2", "interpolate")
    assert len(series) == 526 and series.freq == "MS" and series.names == ["co2"]
    assert series.filled == ["1958-06-01", "1958-10-01", "1964-02-01", "1964-03-01", "1964-04-01"]
    assert (
        str(series.times[0].date()) == "1958-03-01" and str(series.times[-1].date()) == "2001-12-01"
    )
    assert np.isfinite(series.values).all()
    # a filled month lies between its neighbours (linear in time)
    i = list(series.times).index(pd.Timestamp("1958-06-01"))
    low, high = sorted(series.values[[i - 1, i + 1], 0])
    assert low <= series.values[i, 0] <= high


def test_airline_is_144_months_without_gaps() -> None:
    series = load_bundled_series("airline", "error")
    assert len(series) == 144 and series.freq == "MS" and series.values[0, 0] == 112.0


@pytest.mark.parametrize(
    ("freq", "season"),
    [
        ("MS", 12),
        ("ME", 12),
        ("QS", 4),
        ("W-SUN", 52),
        ("D", 7),
        ("h", 24),
        (None, None),
        ("YS", None),
    ],
)
def test_season_from_frequency(freq: str | None, season: int | None) -> None:
    assert season_from_freq(freq) == season


def write(path: Path, times: list[object], values: list[object]) -> Path:
    pd.DataFrame({"t": times, "y": values}).to_csv(path, index=False)
    return path


def load(path: Path, gaps: str = "error", freq: str | None = None) -> object:
    return load_series_file(path, time_column="t", value_columns=None, freq=freq, gaps=gaps)


MONTHS = [str(d.date()) for d in pd.date_range("2000-01-01", periods=8, freq="MS")]


def test_a_regular_file_loads_and_its_frequency_is_inferred(tmp_path: Path) -> None:
    series = load(write(tmp_path / "s.csv", MONTHS, list(range(8))))
    assert (
        series.freq == "MS"
        and series.names == ["y"]
        and series.values[:, 0].tolist() == list(range(8))
    )


def test_integer_steps_count_from_the_first(tmp_path: Path) -> None:
    series = load(write(tmp_path / "s.csv", [3, 4, 5, 6], [1.0, 2.0, 3.0, 4.0]))
    assert series.freq is None and list(series.times) == [3, 4, 5, 6]


def test_gaps_are_named_or_interpolated(tmp_path: Path) -> None:
    path = write(tmp_path / "s.csv", MONTHS[:3] + MONTHS[4:], [0, 1, 2, 4, 5, 6, 7])
    with pytest.raises(
        DataError, match=r"1 gap\(s\) in the series \(missing step or value at 2000-04-01\)"
    ):
        load(path)
    filled = load(path, gaps="interpolate")
    assert filled.filled == ["2000-04-01"] and filled.values[3, 0] == pytest.approx(3.0, abs=0.05)


def test_a_nan_value_is_a_gap(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="missing step or value at 2000-03-01"):
        load(write(tmp_path / "s.csv", MONTHS, [0, 1, None, 3, 4, 5, 6, 7]))


def test_a_gap_at_the_edge_cannot_be_interpolated(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="starts or ends with a gap"):
        load(write(tmp_path / "s.csv", MONTHS, [None, 1, 2, 3, 4, 5, 6, 7]), gaps="interpolate")


@pytest.mark.parametrize(
    ("times", "message"),
    [
        ([*MONTHS[:3], MONTHS[2], *MONTHS[4:]], "row 3 repeats 2000-03-01"),
        ([*MONTHS[:3], MONTHS[1], *MONTHS[4:]], "row 3 goes back to 2000-02-01"),
        ([*MONTHS[:7], "2000-08-15"], "timestamp 2000-08-15 00:00:00 is not on the 'MS' grid"),
        ([*MONTHS[:7], "not a date"], "row 7 holds 'not a date', which is not a timestamp"),
    ],
)
def test_bad_timestamps_are_named(tmp_path: Path, times: list[str], message: str) -> None:
    with pytest.raises(DataError, match=message):
        load(write(tmp_path / "s.csv", times, list(range(8))), freq="MS")


def test_non_numeric_value_and_missing_column_are_named(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"column 'y' must be numeric; row 2 holds 'x'"):
        load(write(tmp_path / "s.csv", MONTHS, [0, 1, "x", 3, 4, 5, 6, 7]))
    path = write(tmp_path / "s.csv", MONTHS, list(range(8)))
    with pytest.raises(DataError, match=r"missing column\(s\) \['co2'\]"):
        load_series_file(path, time_column="t", value_columns=["co2"], freq=None, gaps="error")
