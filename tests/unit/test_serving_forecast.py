"""Forecast requests: histories are checked and split by id before any model runs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from seqops.config import DataConfig
from seqops.data.windows import ForecastSpec
from seqops.errors import DataError
from seqops.tasks import get_task
from seqops.tasks.forecasting import ForecastCodec
from tests.unit.bundles import bundle_of, forecast_meta


def codec(freq: str | None) -> ForecastCodec:
    """The forecasting task's request codec for a bundle with id column `id`, time `t`."""
    spec = ForecastSpec(
        lookback=4,
        horizon=3,
        differencing="first",
        season_length=12,
        feature_names=["y", "x"],
        target_names=["y"],
        mean=np.zeros(2),
        std=np.ones(2),
    )
    data = DataConfig(task="forecasting", dataset="co2", id_column="id", time_column="t")
    bundle = bundle_of(forecast_meta(spec, freq), data)
    found = get_task(bundle.data.task).codec(bundle, {})
    assert isinstance(found, ForecastCodec)
    return found


def test_integer_steps_and_several_ids() -> None:
    pre = codec(None)
    frame = pd.DataFrame(
        {"id": ["a"] * 5 + ["b"] * 6, "t": [*range(5), *range(10, 16)], "y": 1.0, "x": 2.0}
    )
    ids, histories, lasts = pre.inputs(frame, "input")
    assert ids == ["a", "b"] and [h.shape for h in histories] == [(5, 2), (6, 2)]
    assert lasts == [4, 15] and pre.future_times(lasts[1]) == [16, 17, 18]


def test_no_id_column_is_one_series_and_timestamps_step_on_the_frequency() -> None:
    pre = codec("MS")
    frame = pd.DataFrame(
        {"t": pd.date_range("2020-01-01", periods=5, freq="MS").astype(str), "y": 1.0, "x": 0.0}
    )
    ids, _, lasts = pre.inputs(frame, "input")
    assert ids == [0]
    assert pre.future_times(lasts[0]) == [
        "2020-06-01T00:00:00",
        "2020-07-01T00:00:00",
        "2020-08-01T00:00:00",
    ]


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (pd.DataFrame({"t": range(5), "y": 1.0}), r"missing column\(s\) \['x'\]"),
        (pd.DataFrame({"t": range(4), "y": 1.0, "x": 1.0}), "history of 4 steps is too short"),
        (
            pd.DataFrame({"t": [0, 1, 2, 4, 5], "y": 1.0, "x": 1.0}),
            r"1 gap\(s\) in the series \(missing step or value at 3\); fill them first",
        ),
        (
            pd.DataFrame({"t": [0, 1, 3, 2, 4], "y": 1.0, "x": 1.0}),
            "row 3 goes back to 2 after 3",
        ),
        (
            pd.DataFrame({"t": ["2020-01-01"] * 5, "y": 1.0, "x": 1.0}),
            "column 't' must hold integer steps",
        ),
        (pd.DataFrame({"t": [], "y": [], "x": []}), "no rows"),
    ],
)
def test_bad_histories_are_named(frame: pd.DataFrame, message: str) -> None:
    with pytest.raises(DataError, match=message):
        codec(None).inputs(frame, where="request")
