"""ONNX export: contract on the written graph, parity for every cell x direction x pooling, int8."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from seqops import onnx_contract as contract
from seqops.config import DataConfig
from seqops.data.sequences import SequenceSet
from seqops.model.network import SequenceNet
from seqops.stages.export import (
    ExportError,
    bundle_preprocessing,
    check_parity,
    export_onnx,
    parity_batches,
    quantize_int8,
)

F, C = 3, 4  # features, classes of the tiny nets


def tiny_net(cell: str, bidirectional: bool, pooling: str, seed: int = 0) -> SequenceNet:
    torch.manual_seed(seed)
    return SequenceNet(
        F, C, cell=cell, hidden_size=6, num_layers=2, bidirectional=bidirectional, pooling=pooling
    ).eval()


@pytest.fixture(scope="module")
def test_set() -> SequenceSet:
    rng = np.random.default_rng(0)
    lengths = rng.integers(2, 12, size=20)
    seqs = [rng.standard_normal((int(t), F)).astype(np.float32) for t in lengths]
    return SequenceSet(seqs, rng.integers(0, C, size=20))


def session(path: Path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


@pytest.mark.parametrize(
    ("cell", "bidirectional", "pooling"),
    list(
        itertools.product(
            ("lstm", "gru", "rnn"), (False, True), ("last", "mean", "max", "attention")
        )
    ),
)
def test_parity_for_every_cell_direction_and_pooling(
    tmp_path: Path, test_set: SequenceSet, cell: str, bidirectional: bool, pooling: str
) -> None:
    net = tiny_net(cell, bidirectional, pooling)
    path = tmp_path / "m.onnx"
    export_onnx(net, path, opset=17, n_features=F, n_outputs=C)
    # batch 1, a real batch, and sequences 3x longer than any in `test_set`
    batches = parity_batches(test_set, [1, 7], long_length=36)
    result = check_parity(net, session(path), batches, atol=1e-5)
    lengths = test_set.lengths
    assert result["shapes_checked"] == [[1, lengths[0]], [7, lengths[:7].max()], [2, 36]]
    assert result["max_abs_diff"] <= 1e-5
    assert result["argmax_agreement"] == 1.0
    assert result["passed"] is True


def test_written_graph_has_named_symbolic_dims(tmp_path: Path) -> None:
    path = tmp_path / "m.onnx"
    export_onnx(tiny_net("lstm", True, "mean"), path, opset=17, n_features=F, n_outputs=C)
    model = onnx.load(str(path))
    assert contract.graph_shapes(model) == {
        "x": ["batch", "time", F],
        "lengths": ["batch"],
        "logits": ["batch", C],
    }
    assert model.opset_import[0].version == 17
    assert not list(tmp_path.glob("*.data")), "the model must be one self-contained file"


def test_a_frozen_dim_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "m.onnx"
    export_onnx(tiny_net("gru", False, "last"), path, opset=17, n_features=F, n_outputs=C)
    model = onnx.load(str(path))
    model.graph.input[0].type.tensor_type.shape.dim[1].dim_value = 5  # time frozen to 5
    with pytest.raises(contract.ContractError, match=r"a dim was frozen"):
        contract.check_graph(model, F, C)


def test_parity_failure_is_reported(tmp_path: Path, test_set: SequenceSet) -> None:
    path = tmp_path / "m.onnx"
    export_onnx(tiny_net("lstm", False, "mean", seed=0), path, opset=17, n_features=F, n_outputs=C)
    other = tiny_net("lstm", False, "mean", seed=1)  # different weights than the export
    result = check_parity(other, session(path), parity_batches(test_set, [4], 20), atol=1e-5)
    assert result["passed"] is False
    assert result["max_abs_diff"] > 1e-3


def test_lstm_int8_has_the_quantized_op(tmp_path: Path, test_set: SequenceSet) -> None:
    fp32, int8 = tmp_path / "m.onnx", tmp_path / "m.int8.onnx"
    net = tiny_net("lstm", True, "mean")
    export_onnx(net, fp32, opset=17, n_features=F, n_outputs=C)
    assert quantize_int8("lstm", fp32, int8) is None
    model = onnx.load(str(int8))
    assert contract.has_quantized_lstm(model)
    assert not any(n.op_type == "LSTM" for n in model.graph.node)
    # the quantized model still answers under the same contract
    x, lengths = parity_batches(test_set, [5], 20)[0]
    (logits,) = session(int8).run(None, {"x": x, "lengths": lengths})
    assert logits.shape == (5, C)


@pytest.mark.parametrize("cell", ["gru", "rnn"])
def test_int8_unsupported_cells_say_why(tmp_path: Path, cell: str) -> None:
    fp32 = tmp_path / "m.onnx"
    export_onnx(tiny_net(cell, False, "last"), fp32, opset=17, n_features=F, n_outputs=C)
    reason = quantize_int8(cell, fp32, tmp_path / "m.int8.onnx")
    assert reason == (
        f"onnxruntime dynamic quantization has no quantized {cell.upper()} kernel "
        "(it covers LSTM via DynamicQuantizeLSTM); the model stays fp32"
    )
    assert not (tmp_path / "m.int8.onnx").exists()


def test_max_length_below_training_lengths_is_an_error() -> None:
    processed = {
        "task": "sequence_classification",
        "feature_names": ["a"],
        "label_names": ["x", "y"],
        "max_train_length": 30,
    }
    with pytest.raises(ExportError, match=r"export.max_length = 20 is below the longest training"):
        bundle_preprocessing(processed, DataConfig(), max_length=20)
    bundle = bundle_preprocessing(processed, DataConfig(), max_length=64)
    assert (bundle["id_column"], bundle["time_column"], bundle["max_length"]) == ("id", "time", 64)


@pytest.mark.parametrize(("cell", "pooling"), [("lstm", "last"), ("gru", "mean"), ("rnn", "max")])
def test_forecast_head_exports_with_a_forecast_output_and_parity(
    tmp_path: Path, test_set: SequenceSet, cell: str, pooling: str
) -> None:
    torch.manual_seed(0)
    net = SequenceNet(F, 2, cell=cell, hidden_size=6, pooling=pooling, horizon=5).eval()
    path = tmp_path / "m.onnx"
    export_onnx(net, path, opset=17, n_features=F, n_outputs=2)
    assert contract.graph_shapes(onnx.load(str(path))) == {
        "x": ["batch", "time", F],
        "lengths": ["batch"],
        "forecast": ["batch", 5, 2],
    }
    result = check_parity(net, session(path), parity_batches(test_set, [1, 7], 36), atol=1e-5)
    assert result["passed"] and result["max_abs_diff"] <= 1e-5
    assert result["argmax_agreement"] is None  # no classes to agree on
    # a forecasting graph checked as a classifier (or with another horizon) is refused
    with pytest.raises(contract.ContractError, match=r"outputs \['forecast'\]; expected"):
        contract.check_graph(onnx.load(str(path)), F, 2)
    with pytest.raises(contract.ContractError, match="a dim was frozen"):
        contract.check_graph(onnx.load(str(path)), F, 2, horizon=6)
