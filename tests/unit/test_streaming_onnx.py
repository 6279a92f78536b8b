"""The streaming step graph (`models/model_step.onnx`): named symbolic batch and time, fixed
state dims, chunk-by-chunk parity with the full ONNX graph in real onnxruntime sessions, and the
export stage's all-or-nothing refusal when the step graph disagrees with the full one."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from seqops import onnx_contract as contract
from seqops import onnx_export
from seqops.config import DataConfig, ExportConfig
from seqops.contracts import DataMeta
from seqops.data.sequences import SequenceSet
from seqops.errors import ExportError
from seqops.layout import PROCESSED_META, split_file
from seqops.model.network import SequenceNet
from seqops.onnx_export import check_streaming, export_bundle, export_step, seal_bundle
from seqops.serving import Predictor
from seqops.stream_serving import StepSession
from seqops.tasks import read_meta
from tests.unit.bundles import bundle_of, classification_meta, expected_shapes, export

FEATURES = ["a", "b", "c"]
LABELS = ["no", "yes", "maybe"]
TOLERANCE = contract.Tolerance(1e-5, 1e-4)


def network(cell: str, layers: int, **kwargs: Any) -> SequenceNet:
    torch.manual_seed(0)
    args = {"cell": cell, "hidden_size": 6, "num_layers": layers, "bidirectional": False,
            "pooling": "last", "encoder": "linear", **kwargs}  # fmt: skip
    return SequenceNet(len(FEATURES), len(LABELS), **args).eval()


def streaming_bundle(models: Path, net: SequenceNet) -> Predictor:
    """`model.onnx`, `model_step.onnx` and a sealed `preprocessing.json`, loaded as served."""
    meta = classification_meta(FEATURES, LABELS)
    export(net, models / contract.MODEL_FILE, meta)
    export_step(net, models / contract.STEP_FILE, 17, contract.OUTPUT, expected_shapes(meta))
    seal_bundle(models, bundle_of(meta))
    return Predictor.load(models)


def ragged_batches() -> list[tuple[np.ndarray, np.ndarray]]:
    """A ragged batch of 4 (13, 1, 7 and 4 steps, garbage padding), a single sequence, and two
    sequences of 40 steps (batch and time beyond the traced 3 x 5)."""
    rng = np.random.default_rng(0)
    lengths = np.array([13, 1, 7, 4], dtype=np.int64)
    x = rng.standard_normal((4, 13, 3)).astype(np.float32)
    x[np.arange(13)[None, :] >= lengths[:, None]] = 9.0
    one = rng.standard_normal((1, 9, 3)).astype(np.float32)
    long = rng.standard_normal((2, 40, 3)).astype(np.float32)
    return [(x, lengths), (one, np.array([9])), (long, np.array([40, 40]))]


@pytest.mark.parametrize(("cell", "layers"), itertools.product(("lstm", "gru", "rnn"), (1, 2)))
def test_step_graph_has_named_symbolic_batch_and_time_and_fixed_state_dims(
    tmp_path: Path, cell: str, layers: int
) -> None:
    streaming_bundle(tmp_path, network(cell, layers))
    model = onnx.load(str(tmp_path / contract.STEP_FILE))
    shapes = contract.graph_shapes(model)
    state = [layers, "batch", 6]
    expected = {"x": ["batch", "time", 3], "h": state, "logits": ["batch", "time", 3],
                "h_next": state}  # fmt: skip
    if cell == "lstm":
        expected |= {"c": state, "c_next": state}
    assert shapes == expected
    assert [v.name for v in model.graph.input] == ["x", "h", *(["c"] if cell == "lstm" else [])]


def series_meta(directory: Path) -> DataMeta:
    """A series labeler's metadata (per-step output, one tag per label), read back as prepare's
    metadata is read, so the task picks its own type."""
    path = directory / "series_meta.json"
    path.write_text(json.dumps({
        "task": "sequence_labeling", "input": "x", "feature_names": FEATURES,
        "label_names": LABELS, "n_outputs": len(LABELS), "max_train_length": 12,
        "scaler": {"mean": [0.0] * 3, "std": [1.0] * 3}, "label_column": "label",
    }))  # fmt: skip
    return read_meta(path)


@pytest.mark.parametrize(
    ("cell", "layers", "per_step", "pooling"),
    [*itertools.product(("lstm", "gru", "rnn"), (1, 2), (False,), ("last",)),
     ("lstm", 2, True, "last"), ("gru", 1, True, "last"), ("rnn", 2, True, "last"),
     *itertools.product(("lstm", "gru"), (1, 2), (False,), ("mean", "attention"))],
)  # fmt: skip
def test_step_graph_chunk_by_chunk_equals_the_full_graph(
    tmp_path: Path, cell: str, layers: int, per_step: bool, pooling: str
) -> None:
    net = network(cell, layers, per_step=per_step, pooling=pooling)
    meta = series_meta(tmp_path) if per_step else classification_meta(FEATURES, LABELS)
    export(net, tmp_path / contract.MODEL_FILE, meta)
    export_step(net, tmp_path / contract.STEP_FILE, 17, contract.OUTPUT, expected_shapes(meta))
    seal_bundle(tmp_path, bundle_of(meta))
    predictor = Predictor.load(tmp_path)
    assert predictor.per_step is per_step
    report = check_streaming(predictor, ragged_batches(), TOLERANCE, chunks=(1, 7, 0))
    assert report.passed, report
    assert report.chunk_sizes == [1, 7, 0]
    assert report.shapes_checked == [[4, 13], [1, 9], [2, 40]]
    assert report.max_abs_diff is not None and report.max_abs_diff < 1e-4


@pytest.mark.parametrize(
    ("pooling", "states"),
    [("mean", {"pool_sum": [1, "batch", 6], "pool_count": [1, "batch", 1]}),
     ("attention", {"pool_score": [1, "batch", 1], "pool_weight": [1, "batch", 1],
                    "pool_weighted": [1, "batch", 6]})],
)  # fmt: skip
def test_a_pooled_step_graph_carries_the_poolings_running_state(
    tmp_path: Path, pooling: str, states: dict[str, list[str | int]]
) -> None:
    predictor = streaming_bundle(tmp_path, network("gru", 1, pooling=pooling))
    shapes = contract.graph_shapes(onnx.load(str(tmp_path / contract.STEP_FILE)))
    assert shapes == {
        "x": ["batch", "time", 3], "h": [1, "batch", 6], **states,
        "logits": ["batch", "time", 3], "h_next": [1, "batch", 6],
        **{f"{name}_next": shape for name, shape in states.items()},
    }  # fmt: skip
    assert predictor.stepper is not None
    assert predictor.stepper.layout.names == ["h", *states]


def test_a_step_graph_of_other_weights_fails_the_streaming_check(tmp_path: Path) -> None:
    predictor = streaming_bundle(tmp_path, network("gru", 2))
    other = network("gru", 2)
    with torch.no_grad():
        other.head.bias.add_(0.01)
    meta = classification_meta(FEATURES, LABELS)
    export_step(other, tmp_path / "other.onnx", 17, contract.OUTPUT, expected_shapes(meta))
    session = ort.InferenceSession(str(tmp_path / "other.onnx"))
    predictor.stepper = StepSession(session, tmp_path / "other.onnx", expected_shapes(meta))
    report = check_streaming(predictor, ragged_batches(), TOLERANCE)
    assert not report.passed and report.worst_ratio is not None and report.worst_ratio > 1


# -- the export stage's function, from a checkpoint ------------------------------------------


def checkpoint(path: Path, net: SequenceNet, network_args: dict[str, Any]) -> Path:
    """A checkpoint as training writes it: the network's constructor arguments and weights."""
    torch.save(
        {
            "hyper_parameters": {"n_features": 3, "n_outputs": 3, "network": network_args},
            "state_dict": {f"net.{k}": v for k, v in net.state_dict().items()},
        },
        path,
    )
    return path


@pytest.fixture
def processed(tmp_path: Path) -> Path:
    directory = tmp_path / "processed"
    directory.mkdir()
    rng = np.random.default_rng(0)
    seqs = [rng.standard_normal((int(rng.integers(3, 12)), 3)).astype(np.float32) for _ in range(6)]
    SequenceSet(seqs, np.arange(6) % 3).save(directory / split_file("test"))
    classification_meta(FEATURES, LABELS).write(directory / PROCESSED_META)
    return directory


ARGS = {"cell": "lstm", "hidden_size": 6, "num_layers": 2, "bidirectional": False,
        "pooling": "last", "encoder": "linear"}  # fmt: skip
EXPORT = ExportConfig(parity_batch_sizes=[1, 4], max_length=64)


def test_export_writes_a_checked_step_graph_and_reports_it(tmp_path: Path, processed: Path) -> None:
    net = network("lstm", 2)
    ckpt = checkpoint(tmp_path / "model.ckpt", net, ARGS)
    report, _ = export_bundle(ckpt, processed, tmp_path / "models", EXPORT, DataConfig())
    streaming = report.streaming
    assert streaming is not None and streaming.available and streaming.passed
    assert streaming.chunk_sizes == [1, 7, 0] and streaming.file == contract.STEP_FILE
    assert streaming.dynamic_axes == {
        "x": {"0": "batch", "1": "time"}, "h": {"1": "batch"}, "c": {"1": "batch"},
        "logits": {"0": "batch", "1": "time"}, "h_next": {"1": "batch"}, "c_next": {"1": "batch"},
    }  # fmt: skip
    predictor = Predictor.load(tmp_path / "models")  # the step graph is part of the sealed bundle
    assert predictor.stepper is not None
    assert predictor.stepper.layout.model == streaming.fingerprint


def test_a_bidirectional_model_gets_no_step_graph_and_the_report_says_why(
    tmp_path: Path, processed: Path
) -> None:
    net = network("gru", 1, bidirectional=True)
    ckpt = checkpoint(tmp_path / "model.ckpt", net, {**ARGS, "cell": "gru", "num_layers": 1,
                                                     "bidirectional": True})  # fmt: skip
    report, _ = export_bundle(ckpt, processed, tmp_path / "models", EXPORT, DataConfig())
    assert report.streaming is not None
    assert report.streaming.model_dump(exclude_none=True) == {
        "available": False,
        "reason": "bidirectional: the backward pass needs the whole sequence",
    }
    assert not (tmp_path / "models" / contract.STEP_FILE).exists()
    assert Predictor.load(tmp_path / "models").stepper is None


def test_export_fails_loudly_and_leaves_no_bundle_when_streaming_parity_fails(
    tmp_path: Path, processed: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_export_step = onnx_export.export_step

    def step_of_other_weights(net: SequenceNet, *args: Any) -> None:
        other = network("lstm", 2)
        other.load_state_dict(net.state_dict())
        with torch.no_grad():
            other.head.bias.add_(0.01)  # a step graph that is not the full graph's model
        real_export_step(other, *args)

    monkeypatch.setattr(onnx_export, "export_step", step_of_other_weights)
    net = network("lstm", 2)
    ckpt = checkpoint(tmp_path / "model.ckpt", net, ARGS)
    models = tmp_path / "models"
    with pytest.raises(ExportError, match="the streaming step graph disagrees with the full graph"):
        export_bundle(ckpt, processed, models, EXPORT, DataConfig())
    assert sorted(p.name for p in models.iterdir()) == []
