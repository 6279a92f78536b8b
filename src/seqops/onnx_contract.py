"""The exported-model contract (design.md §9), declared once: names, dims and bundle files.

Export writes a graph that satisfies it, the parity check and the benchmark feed it, and the
torch-free predictor in `seqops.serving` reads it. Opset and tolerance are params
(`export.opset`, `export.parity_atol` in params.yaml).

    from seqops.onnx_contract import check_graph
    check_graph(onnx.load("models/model.onnx"), n_features=12, n_outputs=9)

Imports neither torch nor onnx at module level, so the predictor stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from seqops.errors import SeqopsError

if TYPE_CHECKING:
    import onnx

INPUT = "x"
"""float32 `(batch, time, features)`, standardised features, zero-padded after each length."""
TOKENS = "tokens"
"""int64 `(batch, time)`, token ids (text models) padded with id 0 after each length."""
LENGTHS = "lengths"
"""int64 `(batch,)`, real steps per sequence (>= 1)."""
OUTPUT = "logits"
"""float32 `(batch, classes)`, unnormalised class scores."""
FORECAST = "forecast"
"""Forecasting models' output: float32 `(batch, horizon, targets)`, the next `horizon` steps
of each target, standardised (and differenced) as `preprocessing.json`'s `forecast` says; the
predictor turns them back into the series' units."""

BATCH = "batch"
TIME = "time"

#: Named symbolic dims per graph input and output (torch.onnx's `dynamic_axes` form).
DYNAMIC_AXES: dict[str, dict[int, str]] = {
    INPUT: {0: BATCH, 1: TIME},
    LENGTHS: {0: BATCH},
    OUTPUT: {0: BATCH},
}

#: The same for text models, whose first input is `tokens`.
TEXT_DYNAMIC_AXES: dict[str, dict[int, str]] = {
    TOKENS: {0: BATCH, 1: TIME},
    LENGTHS: {0: BATCH},
    OUTPUT: {0: BATCH},
}


def dynamic_axes(input_name: str, output_name: str = OUTPUT) -> dict[str, dict[int, str]]:
    """The named symbolic dims of a graph whose first input is `x` or `tokens` and whose
    output is `logits` or `forecast`."""
    axes = TEXT_DYNAMIC_AXES if input_name == TOKENS else DYNAMIC_AXES
    return {name if name != OUTPUT else output_name: dims for name, dims in axes.items()}


MODEL_FILE = "model.onnx"
INT8_FILE = "model.int8.onnx"
PREPROCESSING_FILE = "preprocessing.json"

#: The op onnxruntime's dynamic quantization turns an LSTM into; absent means it stayed fp32.
QUANTIZED_LSTM_OP = "DynamicQuantizeLSTM"

# ONNX TensorProto element types (onnx.TensorProto.FLOAT / INT64), spelled out so this module
# does not need onnx to be importable.
_FLOAT, _INT64 = 1, 7


class ContractError(SeqopsError):
    """An ONNX graph does not match the contract (names, dtypes or symbolic dims)."""


def expected_shapes(
    n_features: int, n_outputs: int, input_name: str = INPUT, horizon: int | None = None
) -> dict[str, list[str | int]]:
    """Each graph input and output's shape; strings are symbolic dims. With `horizon`
    (forecasting) the output is `forecast` `[batch, horizon, n_outputs]`."""
    output: dict[str, list[str | int]] = (
        {FORECAST: [BATCH, horizon, n_outputs]} if horizon else {OUTPUT: [BATCH, n_outputs]}
    )
    if input_name == TOKENS:
        return {TOKENS: [BATCH, TIME], LENGTHS: [BATCH], **output}
    return {INPUT: [BATCH, TIME, n_features], LENGTHS: [BATCH], **output}


def graph_shapes(model: onnx.ModelProto) -> dict[str, list[str | int]]:
    """Shapes as the graph declares them: a symbolic dim by name, a fixed one by value."""
    return {
        value.name: [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]
        for value in [*model.graph.input, *model.graph.output]
    }


def check_graph(
    model: onnx.ModelProto,
    n_features: int,
    n_outputs: int,
    input_name: str = INPUT,
    horizon: int | None = None,
) -> None:
    """Raise ContractError unless names, dtypes and symbolic dims are as declared above.

    Exporters can freeze a dim silently (tracing with batch 1, torch.export specialising a
    recurrent loop), so this reads the written graph rather than trusting the export call.
    """
    inputs = [v.name for v in model.graph.input]
    outputs = [v.name for v in model.graph.output]
    output = FORECAST if horizon else OUTPUT
    if inputs != [input_name, LENGTHS] or outputs != [output]:
        raise ContractError(
            f"graph has inputs {inputs} and outputs {outputs}; "
            f"expected inputs {[input_name, LENGTHS]} and outputs {[output]}"
        )
    dtypes = {
        v.name: v.type.tensor_type.elem_type for v in [*model.graph.input, *model.graph.output]
    }
    want_dtypes = {input_name: _INT64 if input_name == TOKENS else _FLOAT, LENGTHS: _INT64}
    want_dtypes[output] = _FLOAT
    if dtypes != want_dtypes:
        raise ContractError(f"graph element types {dtypes}; expected {want_dtypes}")
    shapes = graph_shapes(model)
    want = expected_shapes(n_features, n_outputs, input_name, horizon)
    if shapes != want:
        raise ContractError(f"graph shapes {shapes}; expected {want} (a dim was frozen?)")


def has_quantized_lstm(model: onnx.ModelProto) -> bool:
    return any(node.op_type == QUANTIZED_LSTM_OP for node in model.graph.node)
