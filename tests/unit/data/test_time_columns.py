"""Time and id columns are read as written: no guessed day/month order, no silent zone mix, no
numeric ids merged; a class too small for its splits is refused by name."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from seqops.config import ConfigError, parse_config
from seqops.data.series import parse_times
from seqops.data.sources import load_long_file, time_order
from seqops.data.splits import check_class_sizes
from seqops.errors import DataError


def _order(values: list[object], time_format: str | None = None) -> list[int]:
    """The row order `time_order` sorts `values` into."""
    keys = time_order(pd.Series(values, dtype=object), "f.csv", "time", time_format)
    return np.argsort(keys, kind="stable").tolist()


def test_dates_that_read_both_ways_are_refused_unless_the_format_says() -> None:
    dates = ["03/04/2020", "04/03/2020", "05/03/2020"]
    with pytest.raises(DataError) as err:
        _order(dates)
    assert "row 0 holds '03/04/2020'" in str(err.value)
    assert "data.time_format ('%d/%m/%Y' or '%m/%d/%Y')" in str(err.value)
    # Day first: 3 April, 4 March, 5 March; month first: 4 March, 3 April, 3 May.
    assert _order(dates, "%d/%m/%Y") == [1, 2, 0]
    assert _order(dates, "%m/%d/%Y") == [0, 1, 2]


def test_one_unambiguous_row_decides_the_order_for_every_row() -> None:
    # 13/04 can only be day-first, so 03/04 is 3 April (pandas alone reads it as 4 March).
    assert _order(["13/04/2020", "03/04/2020", "05/04/2020"]) == [1, 2, 0]
    assert _order(["04/13/2020", "04/03/2020"]) == [1, 0]
    # The same day and month both ways is no ambiguity.
    assert _order(["02/02/2020", "01/01/2020"]) == [1, 0]


def test_day_first_and_month_first_rows_together_are_refused() -> None:
    with pytest.raises(DataError, match="mixes day-first and month-first dates"):
        _order(["13/04/2020", "04/13/2020"])


def test_a_row_that_does_not_match_the_format_is_named() -> None:
    with pytest.raises(DataError, match=r"row 1 holds '2020-04-05', which does not match"):
        _order(["03/04/2020", "2020-04-05"], "%d/%m/%Y")


def test_several_offsets_are_normalised_to_utc() -> None:
    # 10:00+02:00 is 08:00 UTC, before 09:00+00:00.
    assert _order(["2020-06-01T09:00+00:00", "2020-06-01T10:00+02:00"]) == [1, 0]
    times = parse_times(
        pd.Series(["2020-03-28T23:00+01:00", "2020-03-29T01:00+02:00"]), "s.csv", "t"
    )
    assert list(times) == [pd.Timestamp("2020-03-28 22:00"), pd.Timestamp("2020-03-28 23:00")]


def test_one_zone_keeps_its_wall_clock_times() -> None:
    times = parse_times(pd.Series(["2020-01-01T00:00+01:00", "2020-02-01T00:00+01:00"]), "s", "t")
    assert times.tz is None and list(times.month) == [1, 2]


def test_times_with_and_without_a_zone_are_one_line_naming_both() -> None:
    for parse in (
        lambda s: time_order(s, "f.csv", "time"),
        lambda s: parse_times(s, "f.csv", "time"),
    ):
        with pytest.raises(DataError) as err:
            parse(pd.Series(["2020-01-01T00:00+01:00", "2020-01-02T00:00"]))
        message = str(err.value)
        assert "\n" not in message and "mixes times with a zone (row 0" in message
        assert "without one (row 1 holds '2020-01-02T00:00')" in message


@pytest.mark.parametrize(
    ("value", "expected"),
    [("%d/%m/%Y", None), ("dd/mm/yyyy", "holds no % directive"), ("%d/%m/%Q", "strftime")],
)
def test_time_format_is_validated(value: str, expected: str | None) -> None:
    raw = {"data": {"time_format": value}}
    if expected is None:
        assert parse_config(raw, "p.yaml", {}).data.time_format == value
        return
    with pytest.raises(ConfigError, match=expected):
        parse_config(raw, "p.yaml", {})


def test_ids_are_read_as_written(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text(
        "id,time,f,label\n007,0,1.0,a\n007,1,2.0,a\n7,0,3.0,b\n7,1,4.0,b\n07,0,5.0,a\n07,1,6.0,a\n"
    )
    raw = load_long_file(
        path, id_column="id", time_column="time", label_column="label", feature_columns=None
    )
    assert len(raw.sequences) == 3
    assert sorted(raw.labels) == ["a", "a", "b"]


def test_a_class_smaller_than_its_splits_is_refused_by_name() -> None:
    labels = np.array([0, 0, 0, 1, 1, 2])
    with pytest.raises(DataError) as err:
        check_class_sizes(labels, ["up", "down", "flat"], ["train", "validation", "test"], "d.csv")
    message = str(err.value)
    assert "'down': 2, 'flat': 1" in message and "'up'" not in message
    check_class_sizes(labels[:5], ["up", "down"], ["train", "validation"], "d.csv")
