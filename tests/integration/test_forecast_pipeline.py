"""The forecasting task end to end: the real `dvc repro` on the CO2 preset (tiny model), the
torch-free `seqops predict`, the MLflow scoring server, and the Diebold-Mariano release check.

One module-scoped pipeline and one server start; the server is killed in teardown.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from tests.conftest import (
    BIN,
    REPO,
    assert_predict_succeeds_without_torch,
    invoke,
    merge,
    preset_params,
    run,
    serve_model,
)
from tests.integration.test_default_project import _commit

pytestmark = pytest.mark.slow

#: The CO2 preset shrunk to seconds; a 4-epoch model still has to beat seasonal naive (not
#: Holt-Winters: the not_worse_than_baseline check is off, as for the other tiny test models).
TINY_FORECAST: dict[str, Any] = {
    "train": {"max_epochs": 4, "patience": 4},
    "tune": {"n_trials": 2, "max_epochs": 2},
    "benchmark": {"n_calls": 100, "warmup": 10, "throughput_calls": 2},
    "release": {"max_metric": 100.0, "baseline_alpha": None},
}


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("forecast")
    shutil.copytree(REPO / "src", root / "src", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "dvc.yaml", root / "dvc.yaml")
    shutil.copytree(REPO / "data" / "raw", root / "data" / "raw")
    preset = preset_params("co2")
    params = merge(preset, TINY_FORECAST)
    # Tune val/rmse over two params; the cell stays an LSTM so int8 is exercised.
    params["tune"]["space"] = {
        "model.hidden_size": {"type": "int", "low": 8, "high": 16},
        "train.lr": {"type": "float", "low": 0.002, "high": 0.01, "log": True},
    }
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    run(["git", "init", "-q"], root)
    run([str(BIN / "dvc"), "init", "-q"], root)
    run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "add", "-A"], root)
    run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "co2"], root)
    run([str(BIN / "dvc"), "repro"], root)
    return root


def _json(root: Path, name: str) -> Any:
    return json.loads((root / "reports" / name).read_text())


def history_frame(root: Path, end: int = -12, steps: int = 60) -> pd.DataFrame:
    """`steps` months of the prepared series ending `end` steps before its last month."""
    series = pd.read_csv(root / "data" / "processed" / "series.csv")
    return series.iloc[len(series) + end - steps : len(series) + end].reset_index(drop=True)


def test_every_stage_runs_for_forecasting(pipeline: Path) -> None:
    data = _json(pipeline, "data.json")
    assert (data["n_train"], data["n_val"], data["n_test"]) == (352, 92, 1)
    assert data["series"]["gaps_filled"] == 5 and data["series"]["test"][0].startswith("2001-01")
    metrics = _json(pipeline, "metrics.json")
    assert set(metrics["test"]) >= {"mae", "rmse", "smape", "mase"} and metrics["test"]["n"] == 12
    naive = metrics["baseline"]["seasonal_naive"]
    assert naive["rmse"] == pytest.approx(1.5203, abs=1e-4)  # the measurement
    assert 0.2 < metrics["baseline"]["holt_winters"]["rmse"] < 0.4
    assert metrics["test"]["rmse"] < naive["rmse"]
    plots = pipeline / "reports" / "plots" / "evaluate"
    assert (plots / "forecast.csv").read_text().splitlines()[0] == "time,series,value"
    assert (plots / "forecast.png").read_bytes()[:4] == b"\x89PNG"
    assert not (plots / "confusion.csv").exists()
    predictions = pd.read_csv(pipeline / "reports" / "predictions.csv")
    assert len(predictions) == 12 and {"actual", "model", "seasonal_naive"} <= set(predictions)
    export = _json(pipeline, "export.json")
    assert export["dynamic_axes"] == {
        "x": {"0": "batch", "1": "time"},
        "lengths": {"0": "batch"},
        "forecast": {"0": "batch"},
    }
    parity = export["parity"]
    assert parity["passed"] and parity["max_abs_diff"] <= 1e-5
    assert parity.get("argmax_agreement") is None and [2, 512] in parity["shapes_checked"]
    assert export["served"]["served_max_abs_diff"] < 1e-3
    int8 = export["int8"]  # the preset is an LSTM
    assert int8["available"] and int8["metric"] == "test/rmse"
    assert int8["drop"] == pytest.approx(int8["int8"] - int8["fp32"])
    assert int8["fp32"] == pytest.approx(metrics["test"]["rmse"], rel=1e-4)
    latency = _json(pipeline, "latency.json")
    assert {"torch", "onnx_fp32", "onnx_int8"} <= set(latency)
    release = _json(pipeline, "release.json")
    assert release["passed"] and release["checks"]["beats_seasonal_naive"]["passed"]
    card = (pipeline / "models" / "MODEL_CARD.md").read_text()
    assert "| seasonal_naive |" in card and "Forecasts the next 12 steps of co2" in card


def test_predict_from_a_raw_history_matches_the_evaluated_forecast(
    pipeline: Path, tmp_path: Path
) -> None:
    history_frame(pipeline).to_csv(tmp_path / "history.csv", index=False)
    out = tmp_path / "forecast.csv"
    assert_predict_succeeds_without_torch(
        ["predict", "--model", str(pipeline / "models"), "--input", str(tmp_path / "history.csv"),
         "--output", str(out)]
    )  # fmt: skip
    forecast = pd.read_csv(out)
    assert list(forecast.columns) == ["id", "time", "horizon", "co2", "co2_lower", "co2_upper"]
    assert (forecast["co2_lower"] < forecast["co2"]).all()
    assert (forecast["co2"] < forecast["co2_upper"]).all()
    assert forecast["horizon"].tolist() == list(range(1, 13))
    assert forecast["time"].iloc[0].startswith("2001-01-01")
    evaluated = pd.read_csv(pipeline / "reports" / "predictions.csv")
    np.testing.assert_allclose(forecast["co2"], evaluated["model"], atol=1e-3)


def _gap(f: pd.DataFrame) -> pd.DataFrame:
    return f.drop(index=30)


def _unsorted(f: pd.DataFrame) -> pd.DataFrame:
    return f.iloc[[*range(20), 21, 20, *range(22, len(f))]]


def _short(f: pd.DataFrame) -> pd.DataFrame:
    return f.tail(40)


def _text_value(f: pd.DataFrame) -> pd.DataFrame:
    f = f.astype({"co2": object})
    f.loc[5, "co2"] = "high"
    return f


BAD_HISTORIES = {
    "gap": (_gap, "1 gap(s) in the series (missing step or value at 1998-07-01); fill them"),
    "non-monotonic": (_unsorted, "timestamps must increase; row 21 goes back to 1997-09-01"),
    "too short": (_short, "history of 40 steps is too short; the model needs at least 48"),
    "text value": (_text_value, "column 'co2' must be numeric; row 5 holds 'high'"),
}


@pytest.mark.parametrize("case", list(BAD_HISTORIES))
def test_bad_history_is_one_clear_error_and_no_output(
    pipeline: Path, tmp_path: Path, case: str
) -> None:
    corrupt, message = BAD_HISTORIES[case]
    corrupt(history_frame(pipeline)).to_csv(tmp_path / "history.csv", index=False)
    out = tmp_path / "forecast.csv"
    proc = run(
        [str(BIN / "seqops"), "predict", "--model", "models", "--input",
         str(tmp_path / "history.csv"), "--output", str(out)],
        pipeline, check=False,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not out.exists()


@pytest.fixture(scope="module")
def server(pipeline: Path) -> Iterator[str]:
    uri = _json(pipeline, "export.json")["mlflow_model_uri"]
    with serve_model(pipeline, uri) as base:
        yield base


def test_server_forecasts_like_seqops_predict(pipeline: Path, server: str, tmp_path: Path) -> None:
    two = pd.concat(
        [history_frame(pipeline).assign(id="a"), history_frame(pipeline, end=-24).assign(id="b")]
    )
    two.to_csv(tmp_path / "in.csv", index=False)
    run([str(BIN / "seqops"), "predict", "--model", "models", "--input", str(tmp_path / "in.csv"),
         "--output", str(tmp_path / "out.csv")], pipeline)  # fmt: skip
    local = pd.read_csv(tmp_path / "out.csv")
    status, body = invoke(server, two)
    assert status == 200, body
    served = pd.DataFrame(body["predictions"])
    assert list(served.columns) == list(local.columns)
    assert served["id"].tolist() == local["id"].tolist() == ["a"] * 12 + ["b"] * 12
    assert served["time"].tolist() == local["time"].tolist()
    np.testing.assert_allclose(served["co2"], local["co2"], atol=1e-9)

    status, body = invoke(server, _gap(history_frame(pipeline)))
    assert status == 400 and "missing step or value at 1998-07-01" in body["message"]
    assert invoke(server, history_frame(pipeline))[0] == 200  # still serving


def test_the_server_continues_a_forecast_stream_from_the_returned_state(
    pipeline: Path, server: str
) -> None:
    """The state carries the model's window: a stream started with 48 months and fed the next
    12 in a second request forecasts what one request with all 60 months does; a state the
    server did not write is a 400 and the server goes on."""
    whole = history_frame(pipeline).assign(id="a")
    status, first = invoke(server, whole.iloc[:48].assign(stream_state=""))
    assert status == 200, first
    state = pd.DataFrame(first["predictions"])["stream_state"].iloc[0]
    assert state.startswith("seqops-window/1:")
    status, later = invoke(server, whole.iloc[48:].assign(stream_state=state))
    assert status == 200, later
    status, once = invoke(server, whole)
    streamed, direct = pd.DataFrame(later["predictions"]), pd.DataFrame(once["predictions"])
    assert streamed["time"].tolist() == direct["time"].tolist()
    np.testing.assert_array_equal(streamed["co2"], direct["co2"])  # the same window, exactly
    broken = state.rsplit(":", 2)[0] + ":AAAA:" + state.rsplit(":", 1)[1]
    status, body = invoke(server, whole.iloc[48:].assign(stream_state=broken))
    assert status == 400 and "stream_state holds 3 bytes" in body["message"]
    assert invoke(server, whole)[0] == 200


def test_a_second_model_is_compared_with_the_champion_by_diebold_mariano(pipeline: Path) -> None:
    _commit(pipeline, "co2 model")  # promote takes the committed model
    run([str(BIN / "seqops"), "promote"], pipeline)  # v1 becomes champion
    again = run([str(BIN / "seqops"), "release"], pipeline)  # the same ONNX: no new version
    assert _json(pipeline, "release.json")["version"] == 1, again.stdout
    params = yaml.safe_load((pipeline / "params.yaml").read_text())
    params["train"]["max_epochs"] += 1  # another model
    (pipeline / "params.yaml").write_text(yaml.safe_dump(params))
    run([str(BIN / "dvc"), "repro"], pipeline)
    release = _json(pipeline, "release.json")
    check = release["checks"]["no_regression_vs_champion"]
    assert release["version"] == 2 and 0.0 <= check["value"] <= 1.0
    assert (
        "vs champion v1: Diebold-Mariano (squared error, HLN) on 12 forecast points"
        in (check["detail"])
    )


def test_a_multivariate_file_with_integer_steps_and_rolling_origins(tmp_path: Path) -> None:
    """Two targets plus a covariate from the user's CSV, integer time, 3 test origins: every
    stage from prepare to predict, the forecasts in units for both targets."""
    rng = np.random.default_rng(0)
    t = np.arange(200)
    season = np.sin(2 * np.pi * t / 7)
    frame = pd.DataFrame(
        {
            "step": t + 1000,
            "load": 50 + 0.05 * t + 5 * season + rng.normal(0, 0.5, 200),
            "price": 20 - 2 * season + rng.normal(0, 0.3, 200),
            "temp": 10 + 3 * np.cos(2 * np.pi * t / 7),
        }
    )
    frame.to_csv(tmp_path / "series.csv", index=False)
    params = {
        "data": {
            "task": "forecasting",
            "dataset": None,
            "path": str(tmp_path / "series.csv"),
            "time_column": "step",
            "forecast": {
                "target_columns": ["load", "price"],
                "lookback": 14,
                "horizon": 7,
                "differencing": "first",
                "test_windows": 3,
            },
        },
        "model": {"hidden_size": 8, "num_layers": 1, "bidirectional": False, "pooling": "last"},
        "train": {"max_epochs": 3, "monitor": "val/rmse"},
        "tune": {"enabled": False, "metric": "val/rmse"},
        "release": {"metric": "test/mase", "max_metric": 100.0},
    }
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    proc = run([str(BIN / "seqops"), "prepare"], tmp_path, check=False)
    assert proc.returncode == 2 and "no usual season for frequency integer steps" in proc.stderr
    params["data"]["forecast"]["season_length"] = 7
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    for stage in ("prepare", "train", "evaluate", "export"):
        run([str(BIN / "seqops"), stage], tmp_path)
    metrics = _json(tmp_path, "metrics.json")
    assert metrics["test"]["n_windows"] == 3 and metrics["test"]["n"] == 3 * 7 * 2
    export = _json(tmp_path, "export.json")
    assert export["parity"]["passed"] and export["served"]["served_max_abs_diff"] < 1e-3
    predictions = pd.read_csv(tmp_path / "reports" / "predictions.csv")
    assert sorted(predictions["target"].unique()) == ["load", "price"]
    assert predictions["origin"].nunique() == 3 and predictions["horizon"].max() == 7

    history = frame.iloc[-40:-7]  # the last test origin's history
    history.to_csv(tmp_path / "history.csv", index=False)
    run([str(BIN / "seqops"), "predict", "--model", "models", "--input", "history.csv",
         "--output", "forecast.csv"], tmp_path)  # fmt: skip
    forecast = pd.read_csv(tmp_path / "forecast.csv")
    assert list(forecast.columns) == [
        "id", "step", "horizon", "load", "price", "load_lower", "load_upper", "price_lower",
        "price_upper",
    ]  # fmt: skip
    assert forecast["step"].tolist() == list(range(1193, 1200))  # integer steps continue
    last = predictions[predictions["origin"] == predictions["origin"].max()]
    for target in ("load", "price"):
        evaluated = last[last["target"] == target]["model"].to_numpy()
        np.testing.assert_allclose(forecast[target], evaluated, atol=1e-3)
