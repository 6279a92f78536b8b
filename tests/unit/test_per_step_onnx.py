"""Per-step ONNX graphs: symbolic batch and time on the output, parity with torch on padded
batches, and a CRF's transition outputs decoded without torch."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from seqops import onnx_contract as contract
from seqops.decoding import decode_batch
from seqops.errors import ExportError
from seqops.model.network import SequenceNet
from seqops.onnx_export import crf_outputs, export_onnx

F, C = 3, 4  # features, tags of the tiny taggers


def tagger(cell: str, bidirectional: bool, *, tokens: bool = False, crf: bool = False):
    torch.manual_seed(0)
    net = SequenceNet(
        0 if tokens else F, C, cell=cell, hidden_size=6, num_layers=2,
        bidirectional=bidirectional, per_step=True, crf=crf,
        vocab_size=25 if tokens else None, embedding_dim=5,
    )  # fmt: skip
    if net.crf is not None:
        with torch.no_grad():
            for p in net.crf.parameters():
                p.normal_()
    return net.eval()


def exported(net: SequenceNet, path: Path, input_name: str = contract.INPUT) -> Path:
    expected = contract.expected_shapes(
        input_name, F, contract.OUTPUT, contract.per_step_shape(C), crf_outputs(net)
    )
    export_onnx(net, path, 17, input_name, contract.OUTPUT, expected)
    return path


def padded_batch(tokens: bool) -> tuple[np.ndarray, np.ndarray]:
    """Four sequences of varied lengths in 13 steps (the export traced 3 x 5), garbage padding."""
    rng = np.random.default_rng(0)
    lengths = np.array([13, 1, 7, 4], dtype=np.int64)
    if tokens:
        x = rng.integers(1, 25, size=(4, 13)).astype(np.int64)
    else:
        x = rng.standard_normal((4, 13, F)).astype(np.float32)
        x[np.arange(13)[None, :] >= lengths[:, None]] = 9.0
    return x, lengths


def run(path: Path, x: np.ndarray, lengths: np.ndarray) -> list[np.ndarray]:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x, contract.LENGTHS: lengths})


@pytest.mark.parametrize(
    ("cell", "bidirectional", "tokens"),
    [*itertools.product(("lstm", "gru"), (False, True), (False,)), ("gru", True, True)],
)
def test_per_step_graph_has_symbolic_batch_and_time_and_matches_torch(
    tmp_path: Path, cell: str, bidirectional: bool, tokens: bool
) -> None:
    net = tagger(cell, bidirectional, tokens=tokens)
    path = exported(net, tmp_path / "tagger.onnx", contract.TOKENS if tokens else contract.INPUT)
    model = onnx.load(str(path))
    assert [o.name for o in model.graph.output] == [contract.OUTPUT]
    dims = model.graph.output[0].type.tensor_type.shape.dim
    assert [d.dim_param for d in dims[:2]] == [contract.BATCH, contract.TIME]
    assert dims[2].dim_value == C and not dims[2].dim_param

    x, lengths = padded_batch(tokens)
    (got,) = run(path, x, lengths)
    with torch.no_grad():
        expected = net(torch.from_numpy(x), torch.from_numpy(lengths)).numpy()
    assert got.shape == expected.shape == (4, 13, C)
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=1e-5)
    assert (got[np.arange(13)[None, :] >= lengths[:, None]] == 0).all()


def test_crf_graph_outputs_transitions_for_torch_free_decoding(tmp_path: Path) -> None:
    net = tagger("lstm", True, crf=True)
    assert net.crf is not None
    path = exported(net, tmp_path / "crf.onnx")
    model = onnx.load(str(path))
    assert [o.name for o in model.graph.output] == [contract.OUTPUT, *contract.CRF_OUTPUTS]
    assert contract.graph_shapes(model)[contract.TRANSITIONS] == [C, C]
    assert [d.dim_param for d in model.graph.output[0].type.tensor_type.shape.dim[:2]] == [
        contract.BATCH,
        contract.TIME,
    ]

    x, lengths = padded_batch(tokens=False)
    emissions, transitions, start, end = run(path, x, lengths)
    crf = net.crf
    np.testing.assert_array_equal(transitions, crf.transitions.detach().numpy())
    np.testing.assert_array_equal(start, crf.start_transitions.detach().numpy())
    np.testing.assert_array_equal(end, crf.end_transitions.detach().numpy())
    with torch.no_grad():
        scores = net(torch.from_numpy(x), torch.from_numpy(lengths))
        expected = crf.decode(scores, torch.from_numpy(lengths)).numpy()
    np.testing.assert_allclose(emissions, scores.numpy(), atol=1e-5, rtol=1e-5)
    np.testing.assert_array_equal(
        decode_batch(emissions, lengths, transitions, start, end), expected
    )


def test_contract_refuses_a_frozen_time_axis_and_missing_crf_outputs(tmp_path: Path) -> None:
    net = tagger("gru", False)
    path = exported(net, tmp_path / "tagger.onnx")
    frozen = contract.expected_shapes(contract.INPUT, F, contract.OUTPUT, [contract.BATCH, 5, C])
    with pytest.raises(contract.ContractError, match="shapes"):
        contract.check_graph(onnx.load(str(path)), frozen)
    with_crf = contract.expected_shapes(
        contract.INPUT, F, contract.OUTPUT, contract.per_step_shape(C), contract.crf_shapes(C)
    )
    with pytest.raises(contract.ContractError, match="outputs"):
        contract.check_graph(onnx.load(str(path)), with_crf)
    with pytest.raises(ExportError, match="no CRF"):
        export_onnx(net, tmp_path / "other.onnx", 17, contract.INPUT, contract.OUTPUT, with_crf)


def test_per_step_dynamic_axes_add_time_to_the_output_only() -> None:
    pooled = contract.dynamic_axes(contract.INPUT, contract.OUTPUT)
    per_step = contract.dynamic_axes(contract.INPUT, contract.OUTPUT, per_step=True)
    assert per_step == {**pooled, contract.OUTPUT: {0: contract.BATCH, 1: contract.TIME}}
    assert contract.is_per_step(contract.per_step_shape(C))
    assert not contract.is_per_step([contract.BATCH, 6, 2])  # a forecast's horizon is fixed
