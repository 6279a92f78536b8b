"""Forecast requests: histories are checked and split by id before any model runs; answers
carry the calibrated interval bounds the bundle holds."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from seqops import onnx_contract as contract
from seqops.config import DataConfig
from seqops.data.windows import ForecastSpec
from seqops.errors import DataError
from seqops.model.network import SequenceNet
from seqops.serving import Predictor
from seqops.tasks.forecasting.serve import ForecastCodec
from seqops.tasks.forecasting.task import ForecastInterval, ForecastMeta, ForecastMetrics
from seqops.tasks.parts.serve import get_serve
from tests.conftest import assert_predict_succeeds_without_torch
from tests.unit.bundles import bundle_of, forecast_meta, write_bundle

SPEC = ForecastSpec(
    lookback=4,
    horizon=3,
    differencing="first",
    season_length=12,
    feature_names=["y", "x"],
    target_names=["y"],
    mean=np.zeros(2),
    std=np.ones(2),
)
DATA = DataConfig(task="forecasting", dataset="co2", id_column="id", time_column="t")
#: Half-widths per step ahead (one target), as evaluate calibrates them.
HALF = [[0.5], [1.0], [1.5]]


def calibrated(freq: str | None) -> ForecastMeta:
    """A forecaster's metadata with intervals, as export builds it from evaluate's report."""
    interval = ForecastInterval(level=0.9, n_calibration=20, half_width=HALF)
    metrics = ForecastMetrics(
        task="forecasting", test={"rmse": 1.0}, per_step={"rmse": [1.0]}, interval=interval
    )
    meta = get_serve("forecasting").calibrated_meta(forecast_meta(SPEC, freq), metrics)
    assert isinstance(meta, ForecastMeta)
    return meta


def codec(freq: str | None, meta: ForecastMeta | None = None) -> ForecastCodec:
    """The forecasting task's request codec for a bundle with id column `id`, time `t`."""
    bundle = bundle_of(meta or forecast_meta(SPEC, freq), DATA)
    found = get_serve(bundle.data.task).codec(bundle, {})
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


def test_a_logged_target_must_be_positive_in_every_history() -> None:
    from dataclasses import replace

    pre = codec(None, forecast_meta(replace(SPEC, log=True), None))
    frame = pd.DataFrame({"t": range(6), "y": [3.0, 2.0, 1.0, 0.0, 1.0, 2.0], "x": -1.0})
    with pytest.raises(DataError, match=r"request: series 0: 'y' is 0.0 at 3; the model "
                       "forecasts its logarithm, which needs positive values"):  # fmt: skip
        pre.inputs(frame, where="request")
    frame["y"] = 1.0  # a covariate may be anything
    assert len(pre.inputs(frame, where="request")[1]) == 1


def test_answers_carry_the_bundles_interval_bounds_beside_each_target() -> None:
    frame = pd.DataFrame({"id": ["a"] * 5 + ["b"] * 6, "t": [*range(5), *range(6)], "y": 1.0})
    frame["x"] = 0.0
    pre = codec(None, calibrated(None))

    def run(x: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        return np.full((len(x), 3, 1), 0.25, dtype=np.float32)

    out = pre.predict_frame(frame, run, "request")
    assert list(out.columns) == ["id", "t", "horizon", "y", "y_lower", "y_upper"]
    half = np.tile(np.ravel(HALF), 2)
    np.testing.assert_allclose(out["y_upper"] - out["y"], half)
    np.testing.assert_allclose(out["y"] - out["y_lower"], half)
    outputs = [c.name for c in pre.signature().outputs.inputs]
    assert outputs[-3:] == ["y", "y_lower", "y_upper"]
    # A bundle without intervals (exported before evaluate ran) answers the point only.
    assert list(codec(None).predict_frame(frame, run, "request").columns)[-1] == "y"


def test_interval_half_widths_must_fit_the_horizon_and_targets() -> None:
    with pytest.raises(ValueError, match=r"interval\.half_width is 2 x 1, not horizon x targets"):
        ForecastMeta.model_validate(
            {
                **forecast_meta(SPEC, None).model_dump(),
                "interval": {"level": 0.9, "n_calibration": 5, "half_width": [[1.0], [1.0]]},
            }
        )


def test_bundle_round_trip_serves_the_calibrated_bounds_and_guards_them(tmp_path: Path) -> None:
    """Exported and loaded as `seqops predict` loads it: lower <= point <= upper with the
    calibrated widths; a half-width edited after export is refused by the integrity record."""
    torch.manual_seed(0)
    net = SequenceNet(2, 1, cell="lstm", hidden_size=4, num_layers=1, horizon=3).eval()
    models = write_bundle(tmp_path / "models", net, calibrated(None), DATA)
    frame = pd.DataFrame({"id": "a", "t": range(8), "y": np.arange(8.0), "x": 1.0})
    out = Predictor.load(models).predict_frame(frame)
    assert (out["y_lower"] <= out["y"]).all() and (out["y"] <= out["y_upper"]).all()
    np.testing.assert_allclose(out["y_upper"] - out["y_lower"], 2 * np.ravel(HALF), rtol=1e-12)

    pre = models / contract.PREPROCESSING_FILE
    raw = json.loads(pre.read_text())
    raw["data"]["interval"]["half_width"][0][0] = 0.01
    pre.write_text(json.dumps(raw))
    with pytest.raises(DataError, match=f"{pre}: sha256 differs"):
        Predictor.load(models)


# -- a forecaster's stream: the window travels in the state ---------------------------------


@pytest.fixture(scope="module")
def forecaster(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    net = SequenceNet(2, 1, cell="gru", hidden_size=4, num_layers=1, horizon=3).eval()
    return write_bundle(tmp_path_factory.mktemp("forecaster") / "models", net, calibrated("MS"),
                        DATA)  # fmt: skip


def history(n: int, seed: int = 0, ids: tuple[str, ...] = ("a",)) -> pd.DataFrame:
    """Monthly rows of each series in `ids`: a random walk `y` and a feature `x`."""
    rng = np.random.default_rng(seed)
    times = pd.date_range("2000-01-01", periods=n, freq="MS").strftime("%Y-%m-%d")
    return pd.concat(
        [
            pd.DataFrame(
                {"id": i, "t": times, "y": rng.normal(size=n).cumsum(), "x": rng.normal(size=n)}
            )
            for i in ids
        ],
        ignore_index=True,
    )


def send(predictor: Predictor, chunk: pd.DataFrame, states: dict[str, str]) -> pd.DataFrame:
    return predictor.predict_frame(chunk.assign(stream_state=chunk["id"].map(states).fillna("")))


@pytest.mark.parametrize("sizes", [[5, 1, 1, 1], [6, 7, 3], [16]])
def test_a_forecast_stream_fed_new_steps_equals_the_whole_history(
    forecaster: Path, sizes: list[int]
) -> None:
    whole = history(sum(sizes), ids=("a", "b"))
    replicas = [Predictor.load(forecaster) for _ in range(2)]  # any replica continues
    states: dict[str, str] = {}
    start = 0
    for k, size in enumerate(sizes):
        chunk = whole.groupby("id").nth(list(range(start, start + size))).reset_index(drop=True)
        answer = send(replicas[k % 2], chunk, states)
        start += size
        states = dict(zip(answer["id"], answer["stream_state"], strict=False))
        expected = replicas[0].predict_frame(whole.groupby("id").head(start))
        pd.testing.assert_frame_equal(answer.drop(columns="stream_state"), expected)  # bit for bit
    assert all(s.startswith("seqops-window/1:") for s in states.values())


def test_a_bad_forecast_stream_state_or_chunk_is_refused(forecaster: Path) -> None:
    predictor = Predictor.load(forecaster)
    whole = history(10)
    state = send(predictor, whole.iloc[:6], {})["stream_state"].iloc[0]
    later = whole.iloc[6:]

    def refusal(value: object, chunk: pd.DataFrame = later) -> str:
        with pytest.raises(DataError) as err:
            predictor.predict_frame(chunk.assign(stream_state=[value] * len(chunk)))
        return str(err.value)

    prefix, model, values, time = state.split(":")
    assert refusal(state.replace(model, "0" * len(model))).startswith(
        "input: series 'a': stream_state comes from another model"
    )
    assert "not the 80 bytes (5 steps of 2 float64 values)" in refusal(
        ":".join([prefix, model, values[:-8], time])
    )
    nan = base64.urlsafe_b64encode(np.full(10, np.nan).astype("<f8").tobytes()).decode()
    assert refusal(":".join([prefix, model, nan, time])).endswith("holds NaN or infinite values")
    assert "seqops-state/1" in refusal("seqops-state/1:abc:AAAA")  # a recurrent stream's state
    assert refusal(state, whole.iloc[7:]) == (
        "input: series 'a': the chunk starts at 2000-08-01 00:00:00, but its stream state ends "
        "at 2000-06-01T00:00:00: send the steps from 2000-07-01 00:00:00 on"
    )
    int_time = base64.urlsafe_b64encode(b"7").decode()
    assert refusal(":".join([prefix, model, values, int_time])).endswith(
        "stream_state's last time 7 is not a timestamp"
    )
    # A new stream needs a whole history; an empty cell starts one.
    assert "history of 3 steps is too short" in refusal("", whole.iloc[:3])


def test_seqops_predict_continues_a_forecast_stream_without_torch(
    forecaster: Path, tmp_path: Path
) -> None:
    whole = history(12)
    first, later, answer = tmp_path / "first.csv", tmp_path / "next.csv", tmp_path / "out.csv"
    whole.iloc[:8].assign(stream_state="").to_csv(first, index=False)
    command = ["predict", "--model", str(forecaster), "--output", str(answer)]
    assert_predict_succeeds_without_torch([*command, "--input", str(first)])
    state = pd.read_csv(answer)["stream_state"].iloc[0]
    whole.iloc[8:].assign(stream_state=state).to_csv(later, index=False)
    assert_predict_succeeds_without_torch([*command, "--input", str(later)])
    streamed = pd.read_csv(answer)
    direct = Predictor.load(forecaster).predict_frame(whole)
    np.testing.assert_allclose(streamed["y"], direct["y"], rtol=1e-12)  # CSV text round trip
    assert streamed["t"].tolist() == direct["t"].tolist()
