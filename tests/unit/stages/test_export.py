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
from seqops.data.windows import ForecastSpec
from seqops.errors import ExportError
from seqops.model.network import SequenceNet
from seqops.onnx_export import check_parity, make_bundle, parity_batches, quantize_int8
from seqops.tasks.parts.serve import get_serve
from tests.unit.bundles import (
    classification_meta,
    expected_shapes,
    export,
    forecast_meta,
    predictor,
)
from tests.unit.model.test_network import randomise_norms

F, C = 3, 4  # features, classes of the tiny nets
#: The tiny nets' metadata: what export reads the graph contract and output from.
META = classification_meta(["a", "b", "c"], ["w", "x", "y", "z"])
CLASSIFIER = get_serve(META.task)


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
    export(net, path, META)
    # batch 1, a real batch, and sequences 3x longer than any in `test_set`
    batches = parity_batches(test_set, [1, 7], long_length=36)
    result = check_parity(net, predictor(path, META), batches, atol=1e-5, task=CLASSIFIER)
    lengths = test_set.lengths
    assert result.shapes_checked == [[1, lengths[0]], [7, lengths[:7].max()], [2, 36]]
    assert result.max_abs_diff <= 1e-5
    assert result.argmax_agreement == 1.0
    assert result.passed is True


@pytest.mark.parametrize("pooling", ["last", "mean"])
@pytest.mark.parametrize("norm", [False, True])
def test_conv_encoder_exports_with_dynamic_time_and_parity(
    tmp_path: Path, test_set: SequenceSet, pooling: str, norm: bool
) -> None:
    torch.manual_seed(0)
    net = SequenceNet(
        F,
        C,
        hidden_size=6,
        pooling=pooling,
        encoder="conv",
        encoder_kernel=4,
        encoder_stride=2,
        encoder_layers=2,
        encoder_norm=norm,
    )
    randomise_norms(net)
    net.eval()
    path = tmp_path / "m.onnx"
    export(net, path, META)
    batches = parity_batches(test_set, [1, 7], long_length=36)
    result = check_parity(net, predictor(path, META), batches, atol=1e-5, task=CLASSIFIER)
    assert result.max_abs_diff <= 1e-5
    assert result.passed is True


def test_written_graph_has_named_symbolic_dims(tmp_path: Path) -> None:
    path = tmp_path / "m.onnx"
    export(tiny_net("lstm", True, "mean"), path, META)
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
    export(tiny_net("gru", False, "last"), path, META)
    model = onnx.load(str(path))
    model.graph.input[0].type.tensor_type.shape.dim[1].dim_value = 5  # time frozen to 5
    with pytest.raises(contract.ContractError, match=r"a dim was frozen"):
        contract.check_graph(model, expected_shapes(META))


def test_parity_failure_is_reported(tmp_path: Path, test_set: SequenceSet) -> None:
    path = tmp_path / "m.onnx"
    export(tiny_net("lstm", False, "mean", seed=0), path, META)
    other = tiny_net("lstm", False, "mean", seed=1)  # different weights than the export
    batches = parity_batches(test_set, [4], 20)
    result = check_parity(other, predictor(path, META), batches, atol=1e-5, task=CLASSIFIER)
    assert result.passed is False
    assert result.max_abs_diff > 1e-3


def test_the_tolerance_has_an_absolute_and_a_relative_part() -> None:
    """numpy.allclose semantics: |got - expected| <= atol + rtol * |expected|."""
    tol = contract.Tolerance(atol=1e-5, rtol=1e-4)
    expected = np.array([[0.0, 40.0, -40.0]])
    assert tol.ratio(expected, expected) == 0.0
    # 2.5e-5 off a logit of 40 is well within; off a logit of 0 it is 2.5 times the margin
    assert tol.ratio(expected + np.array([0.0, 2.5e-5, -2.5e-5]), expected) < 0.01
    assert tol.ratio(expected + np.array([2.5e-5, 0.0, 0.0]), expected) == pytest.approx(2.5)
    assert contract.Tolerance(1e-5).ratio(expected + 2.5e-5, expected) == pytest.approx(2.5)
    rng = np.random.default_rng(0)
    for _ in range(200):
        b = rng.normal(0, 30, size=5)
        a = b + rng.normal(0, 1e-3, size=5)
        assert (tol.ratio(a, b) <= 1) == np.allclose(a, b, atol=1e-5, rtol=1e-4)
    assert tol.ratio(expected + np.array([0, 0, np.nan]), expected) == np.inf
    assert tol.ratio(expected[:, :2], expected) == np.inf  # another shape
    assert tol.scaled(10.0) == contract.Tolerance(1e-4, 1e-4)


class _Offset:
    """A predictor whose outputs are the network's times `scale` plus `shift`."""

    def __init__(self, net: SequenceNet, scale: float, shift: float = 0.0) -> None:
        self.net, self.scale, self.shift = net, scale, shift

    def run(self, x: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            out = self.net(torch.from_numpy(x), torch.from_numpy(lengths)).numpy()
        return out * self.scale + self.shift


def test_parity_uses_the_relative_tolerance_and_reports_its_margin(test_set: SequenceSet) -> None:
    net = tiny_net("gru", False, "mean")
    batches = parity_batches(test_set, [4], 20)
    scaled = _Offset(net, 1 + 5e-5)  # off in proportion to each output, as float32 kernels are
    strict = check_parity(net, scaled, batches, atol=1e-9, task=CLASSIFIER)
    relative = check_parity(net, scaled, batches, atol=1e-9, task=CLASSIFIER, rtol=1e-4)
    assert strict.passed is False and strict.worst_ratio is not None and strict.worst_ratio > 1
    assert relative.passed is True and relative.worst_ratio is not None
    assert 0.4 < relative.worst_ratio <= 0.5 + 1e-6
    assert (relative.atol, relative.rtol) == (1e-9, 1e-4)
    assert relative.argmax_agreement == 1.0
    # a decision that changes fails whatever the tolerance
    flipped = _Offset(net, -1.0)
    result = check_parity(net, flipped, batches, atol=1e3, task=CLASSIFIER, rtol=0.9)
    assert result.argmax_agreement is not None and result.argmax_agreement < 1.0
    assert result.worst_ratio is not None and result.worst_ratio <= 1.0
    assert result.passed is False
    # NaN is never within any tolerance
    nan = _Offset(net, 1.0, np.nan)
    assert check_parity(net, nan, batches, atol=1.0, task=CLASSIFIER, rtol=0.5).passed is False


def test_lstm_int8_has_the_quantized_op(tmp_path: Path, test_set: SequenceSet) -> None:
    fp32, int8 = tmp_path / "m.onnx", tmp_path / "m.int8.onnx"
    net = tiny_net("lstm", True, "mean")
    export(net, fp32, META)
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
    export(tiny_net(cell, False, "last"), fp32, META)
    reason = quantize_int8(cell, fp32, tmp_path / "m.int8.onnx")
    assert reason == (
        f"onnxruntime dynamic quantization has no quantized {cell.upper()} kernel "
        "(it covers LSTM via DynamicQuantizeLSTM); the model stays fp32"
    )
    assert not (tmp_path / "m.int8.onnx").exists()


def test_max_length_below_training_lengths_is_an_error() -> None:
    meta = classification_meta(["a"], ["x", "y"], max_train_length=30)
    task = get_serve(meta.task)
    with pytest.raises(ExportError, match=r"export.max_length = 20 is below the longest training"):
        make_bundle(meta, task, DataConfig(), max_length=20)
    bundle = make_bundle(meta, task, DataConfig(), max_length=64)
    assert (bundle.id_column, bundle.time_column, bundle.max_length) == ("id", "time", 64)
    assert bundle.data == meta and bundle.onnx.inputs == ["x", "lengths"]
    assert bundle.onnx.outputs == ["logits"]


@pytest.mark.parametrize(("cell", "pooling"), [("lstm", "last"), ("gru", "mean"), ("rnn", "max")])
def test_forecast_head_exports_with_a_forecast_output_and_parity(
    tmp_path: Path, test_set: SequenceSet, cell: str, pooling: str
) -> None:
    torch.manual_seed(0)
    # One direction, one layer: SequenceNet's defaults before they followed ModelConfig.
    net = SequenceNet(
        F, 2, cell=cell, hidden_size=6, num_layers=1, bidirectional=False, pooling=pooling,
        horizon=5,
    ).eval()  # fmt: skip
    spec = ForecastSpec(
        lookback=8, horizon=5, differencing="none", season_length=1,
        feature_names=["a", "b", "c"], target_names=["a", "b"], mean=np.zeros(F), std=np.ones(F),
    )  # fmt: skip
    meta = forecast_meta(spec, freq=None)
    path = tmp_path / "m.onnx"
    export(net, path, meta)
    assert contract.graph_shapes(onnx.load(str(path))) == {
        "x": ["batch", "time", F],
        "lengths": ["batch"],
        "forecast": ["batch", 5, 2],
    }
    forecasting = get_serve(meta.task)
    batches = parity_batches(test_set, [1, 7], 36)
    result = check_parity(net, predictor(path, meta), batches, atol=1e-5, task=forecasting)
    assert result.passed and result.max_abs_diff <= 1e-5
    assert result.argmax_agreement is None  # no classes to agree on
    # a forecasting graph checked as a classifier (or with another horizon) is refused
    as_classifier = contract.expected_shapes("x", F, contract.OUTPUT, [contract.BATCH, 2])
    with pytest.raises(contract.ContractError, match=r"outputs \['forecast'\]; expected"):
        contract.check_graph(onnx.load(str(path)), as_classifier)
    other_horizon = contract.expected_shapes("x", F, contract.FORECAST, [contract.BATCH, 6, 2])
    with pytest.raises(contract.ContractError, match="a dim was frozen"):
        contract.check_graph(onnx.load(str(path)), other_horizon)
