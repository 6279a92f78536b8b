"""The real MLflow scoring server continuing streams: the state travels in the request and the
answer only, so a stream continued across two requests answers what one request with the whole
sequences answers, and a bad state is a 400 with its reason.

A tiny unidirectional LSTM (pooling last) is exported with the export stage's own functions and
logged as the export stage logs it (models from code, the bundle as artifacts); one server
start, always killed in teardown.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from seqops import onnx_contract as contract
from seqops.model.network import SequenceNet
from seqops.onnx_export import artifacts, export_step, seal_bundle
from seqops.serving import Predictor, served_signature
from seqops.stages.export import pyfunc_model_file
from seqops.stream_serving import STATE_COLUMN
from tests.conftest import invoke, serve_model
from tests.unit.bundles import bundle_of, classification_meta, expected_shapes, export

pytestmark = pytest.mark.slow

FEATURES = ["a", "b", "c"]
LABELS = ["down", "flat", "up"]
PROBABILITIES = [f"p_{name}" for name in LABELS]


@pytest.fixture(scope="module")
def logged(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The project root (its `mlflow.db`) and the logged model's URI."""
    import mlflow

    root = tmp_path_factory.mktemp("stream-server")
    models = root / "models"
    models.mkdir()
    torch.manual_seed(0)
    net = SequenceNet(3, 3, cell="lstm", hidden_size=6, num_layers=2, bidirectional=False,
                      pooling="last", encoder="linear").eval()  # fmt: skip
    meta = classification_meta(FEATURES, LABELS)
    export(net, models / contract.MODEL_FILE, meta)
    export_step(net, models / contract.STEP_FILE, 17, contract.OUTPUT, expected_shapes(meta))
    seal_bundle(models, bundle_of(meta, max_length=20))
    codec = Predictor.load(models).codec
    before = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(f"sqlite:///{root / 'mlflow.db'}")
    try:
        # Its own experiment, named: not whichever experiment an earlier test left active.
        experiment = mlflow.MlflowClient().create_experiment("stream-server")
        with mlflow.start_run(experiment_id=experiment):
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=pyfunc_model_file(),
                artifacts=artifacts(models, meta),
                code_paths=[str(Path(contract.__file__).resolve().parent)],
                signature=served_signature(codec),
            )
    finally:
        mlflow.set_tracking_uri(before)
    return root, str(info.model_uri)


@pytest.fixture(scope="module")
def server(logged: tuple[Path, str]) -> Iterator[str]:
    root, uri = logged
    with serve_model(root, uri) as base:
        yield base


def frame(lengths: dict[str, int]) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        [
            {"id": sid, "time": t, **dict(zip(FEATURES, rng.normal(size=3).tolist(), strict=True))}
            for sid, n in lengths.items()
            for t in range(n)
        ]
    )


def test_a_stream_continued_across_two_requests_equals_one_request(server: str) -> None:
    whole = frame({"s1": 12, "s2": 6})
    status, body = invoke(server, whole)
    assert status == 200, body
    at_once = pd.DataFrame(body["predictions"])

    first = whole[whole["time"] < 4].assign(**{STATE_COLUMN: ""})
    status, body = invoke(server, first)
    assert status == 200, body
    states = {row["id"]: row[STATE_COLUMN] for row in body["predictions"]}
    later = whole[whole["time"] >= 4]
    status, body = invoke(server, later.assign(**{STATE_COLUMN: later["id"].map(states)}))
    assert status == 200, body
    continued = pd.DataFrame(body["predictions"])
    assert continued["id"].tolist() == ["s1", "s2"]
    assert continued["label"].tolist() == at_once["label"].tolist()
    np.testing.assert_allclose(
        continued[PROBABILITIES].to_numpy(), at_once[PROBABILITIES].to_numpy(), atol=1e-5
    )


def test_a_bad_state_is_a_400_with_its_reason(server: str) -> None:
    chunk = frame({"s1": 3})
    status, body = invoke(server, chunk.assign(**{STATE_COLUMN: ""}))
    assert status == 200, body
    prefix, model, data = body["predictions"][0][STATE_COLUMN].split(":")
    values = np.frombuffer(base64.urlsafe_b64decode(data), dtype="<f4").copy()
    values[0] = np.inf
    spoiled = f"{prefix}:{model}:{base64.urlsafe_b64encode(values.tobytes()).decode()}"
    status, body = invoke(server, chunk.assign(**{STATE_COLUMN: spoiled}))
    assert status == 400, body
    assert body["message"] == "request: sequence 's1': stream_state holds NaN or infinite values"
    status, body = invoke(server, chunk.assign(**{STATE_COLUMN: spoiled[:-12]}))
    assert status == 400 and "stream_state holds" in body["message"], body
    assert invoke(server, chunk)[0] == 200  # the server survives bad states
