"""The real MLflow scoring server over the logged ONNX bundle: same answers as `seqops predict`.

One module-scoped pipeline (prepare → train → export, tiny params) and one server start;
the server is always killed in teardown.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from seqops.data.sequences import SequenceSet
from tests.conftest import BIN, invoke, run, serve_model, write_params

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("serving")
    write_params(
        root / "params.yaml",
        {
            "export": {"max_length": 64},
            "benchmark": {"n_calls": 100, "warmup": 10, "throughput_calls": 2},
        },
    )
    for stage in ("prepare", "train", "export"):
        run([str(BIN / "seqops"), stage], root)
    return root


def raw_test_frame(root: Path, n: int) -> pd.DataFrame:
    """The first `n` test sequences back in raw long format (what a user would send)."""
    pre = json.loads((root / "models" / "preprocessing.json").read_text())["data"]
    mean, std = np.asarray(pre["scaler"]["mean"]), np.asarray(pre["scaler"]["std"])
    test = SequenceSet.load(root / "data" / "processed" / "test.npz")
    rows = [
        {
            "id": f"t{i:03d}",
            "time": t,
            **dict(zip(pre["feature_names"], step.tolist(), strict=True)),
        }
        for i in range(n)
        for t, step in enumerate(test.sequences[i].astype(np.float64) * std + mean)
    ]
    return pd.DataFrame(rows)


def test_export_report_of_the_pipeline(pipeline: Path) -> None:
    report = json.loads((pipeline / "reports" / "export.json").read_text())
    assert report["opset"] == 17
    assert report["dynamic_axes"] == {
        "x": {"0": "batch", "1": "time"},
        "lengths": {"0": "batch"},
        "logits": {"0": "batch"},
    }
    parity = report["parity"]
    assert parity["passed"] and parity["max_abs_diff"] <= 1e-5 and parity["argmax_agreement"] == 1
    assert any(b == 1 for b, _ in parity["shapes_checked"])
    assert [2, 64] in parity["shapes_checked"]  # export.max_length, past every training length
    int8 = report["int8"]  # TINY is an LSTM
    assert int8["available"] and int8["op"] == "DynamicQuantizeLSTM"
    assert int8["drop"] == pytest.approx(int8["fp32"] - int8["int8"])
    assert (pipeline / "models" / "model.int8.onnx").is_file()


def test_benchmark_times_each_runtime(pipeline: Path) -> None:
    run([str(BIN / "seqops"), "benchmark"], pipeline)
    report = json.loads((pipeline / "reports" / "latency.json").read_text())
    for runtime in ("torch", "onnx_fp32", "onnx_int8"):
        r = report[runtime]
        assert 0 < r["p50_ms"] <= r["p95_ms"] <= r["p99_ms"], r
        assert r["throughput"] > 0 and r["n_calls"] == 100 and r["threads"] == 1
    assert report["speedup_p50"] == pytest.approx(
        report["torch"]["p50_ms"] / report["onnx_fp32"]["p50_ms"]
    )
    assert (pipeline / "reports" / "plots" / "latency.png").read_bytes()[:4] == b"\x89PNG"
    # both stages add to the training run of models/run.json
    from mlflow.tracking import MlflowClient

    run_id = json.loads((pipeline / "models" / "run.json").read_text())["run_id"]
    client = MlflowClient(tracking_uri=f"sqlite:///{pipeline / 'mlflow.db'}")
    metrics = client.get_run(run_id).data.metrics
    assert metrics["latency/speedup_p50"] == pytest.approx(report["speedup_p50"])
    assert metrics["export/parity_max_abs_diff"] <= 1e-5


def test_the_logged_model_is_code_not_a_pickle(pipeline: Path, tmp_path: Path) -> None:
    """Models from code: the artifact holds the package's model file and no cloudpickled
    object, so loading it runs only seqops' own code."""
    import mlflow
    import yaml

    uri = json.loads((pipeline / "reports" / "export.json").read_text())["mlflow_model_uri"]
    mlflow.set_tracking_uri(f"sqlite:///{pipeline / 'mlflow.db'}")
    local = Path(mlflow.artifacts.download_artifacts(uri, dst_path=str(tmp_path)))
    files = {p.relative_to(local).as_posix() for p in local.rglob("*") if p.is_file()}
    assert not any(f.endswith((".pkl", ".pickle")) for f in files), sorted(files)
    assert {"pyfunc_model.py", "code/seqops/serving.py"} <= files
    flavor = yaml.safe_load((local / "MLmodel").read_text())["flavors"]["python_function"]
    assert flavor["loader_module"] == "mlflow.pyfunc.loaders.code_model"
    assert "python_model" not in flavor


@pytest.fixture(scope="module")
def server(pipeline: Path) -> Iterator[str]:
    uri = json.loads((pipeline / "reports" / "export.json").read_text())["mlflow_model_uri"]
    with serve_model(pipeline, uri) as base:
        yield base


def test_server_answers_like_seqops_predict(pipeline: Path, server: str, tmp_path: Path) -> None:
    frame = raw_test_frame(pipeline, 25)
    frame.to_csv(tmp_path / "in.csv", index=False)
    run([str(BIN / "seqops"), "predict", "--model", "models", "--input", str(tmp_path / "in.csv"),
         "--output", str(tmp_path / "out.csv")], pipeline)  # fmt: skip
    local = pd.read_csv(tmp_path / "out.csv", dtype={"id": str, "label": str})

    status, body = invoke(server, frame)
    assert status == 200, body
    served = pd.DataFrame(body["predictions"])
    assert list(served.columns) == list(local.columns)
    assert served["id"].tolist() == local["id"].tolist() == [f"t{i:03d}" for i in range(25)]
    assert served["label"].tolist() == local["label"].tolist()
    probs = [c for c in local.columns if c.startswith("p_")]
    np.testing.assert_allclose(served[probs].to_numpy(), local[probs].to_numpy(), atol=1e-6)


def _missing_feature(f: pd.DataFrame) -> pd.DataFrame:
    return f.drop(columns=["dim_3"])


def _text_feature(f: pd.DataFrame) -> pd.DataFrame:
    f = f.astype({"dim_0": object})
    f.loc[3, "dim_0"] = "oops"
    return f


def _nan_feature(f: pd.DataFrame) -> pd.DataFrame:
    f.loc[4, "dim_5"] = np.nan
    return f


def _too_long(f: pd.DataFrame) -> pd.DataFrame:
    one = f[f["id"] == "t000"]
    reps = [one.assign(time=one["time"] + k * len(one)) for k in range(10)]  # > max_length 64
    return pd.concat(reps, ignore_index=True)


BAD_REQUESTS = {
    # The codec checks requests itself (no request schema is logged), as `seqops predict` does
    "missing column": (_missing_feature, "request: missing column(s) ['dim_3']"),
    "wrong dtype": (_text_feature, "column 'dim_0' must be numeric; row 3 holds 'oops'"),
    "NaN": (_nan_feature, "column 'dim_5' has a NaN or infinite value at row 4 (sequence 't000')"),
    "empty": (lambda f: f.iloc[:0], "request: no rows (expected one row per time step)"),
    "over-long": (_too_long, "the model accepts at most 64 (export.max_length)"),
}


@pytest.mark.parametrize("case", list(BAD_REQUESTS))
def test_bad_request_is_a_400_with_the_reason(pipeline: Path, server: str, case: str) -> None:
    corrupt, expected = BAD_REQUESTS[case]
    status, body = invoke(server, corrupt(raw_test_frame(pipeline, 3)))
    assert status == 400, body
    assert expected in body["message"]
    # the server survives bad input
    assert invoke(server, raw_test_frame(pipeline, 1))[0] == 200


def test_integer_ids_and_float_times_are_accepted(pipeline: Path, server: str) -> None:
    frame = raw_test_frame(pipeline, 3)
    expected_status, expected = invoke(server, frame)
    frame["id"] = frame["id"].str[1:].astype(int)  # "t001" -> 1
    frame["time"] = frame["time"].astype(float)
    status, body = invoke(server, frame)
    assert (status, expected_status) == (200, 200), body
    assert [row["id"] for row in body["predictions"]] == [0, 1, 2]
    assert [r["label"] for r in body["predictions"]] == [
        r["label"] for r in expected["predictions"]
    ]
