"""The exported-model contract, declared once: names, dims and bundle files.

See docs/architecture.md, "Exported model".

Export writes a graph that satisfies it, the parity check and the benchmark feed it, and the
torch-free predictor in `seqops.serving` reads it. Opset and tolerance are params
(`export.opset`, `export.parity_atol` and `export.parity_rtol` in params.yaml); `Tolerance`
is how every export check compares two outputs.

    from seqops.onnx_contract import check_graph, expected_shapes
    check_graph(onnx.load("models/model.onnx"), expected_shapes("x", 12, "logits", ["batch", 9]))

Imports neither torch nor onnx at module level, so the predictor stays light.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from seqops.errors import SeqopsError

if TYPE_CHECKING:
    import onnx

INPUT = "x"
"""float32 `(batch, time, features)`, standardised features, zero-padded after each length."""
TOKENS = "tokens"
"""int64 `(batch, time)`, token ids (text models) padded with id 0 after each length; for a
tagger `(batch, time, 1 + W)`, each token's word id then its first W character ids (0 pads a
shorter word and every padded step), W fixed by the bundle (one per `feature_names`)."""
LENGTHS = "lengths"
"""int64 `(batch,)`, real steps per sequence (>= 1)."""
OUTPUT = "logits"
"""Classifiers' output: float32 `(batch, classes)`, unnormalised class scores; for per-step
models (taggers) `(batch, time, tags)`, 0 at padded steps (`per_step_shape`). Other tasks
name their own output (`Task.output`)."""
FORECAST = "forecast"
"""Forecasting models' output: float32 `(batch, horizon, targets)`, the next `horizon` steps
of each target, standardised (and differenced) as `preprocessing.json`'s `forecast` says; the
predictor turns them back into the series' units."""

TRANSITIONS = "transitions"
"""A CRF tagger's extra output: float32 `(tags, tags)`, the score of tag j following tag i at
`[i, j]`. With `START_TRANSITIONS` and `END_TRANSITIONS`, what `seqops.decoding.viterbi`
needs besides the per-step scores, so a predictor decodes without torch."""
START_TRANSITIONS = "start_transitions"
"""A CRF tagger's extra output: float32 `(tags,)`, the score of each tag at a first step."""
END_TRANSITIONS = "end_transitions"
"""A CRF tagger's extra output: float32 `(tags,)`, the score of each tag at a last step."""
CRF_OUTPUTS = (TRANSITIONS, START_TRANSITIONS, END_TRANSITIONS)
"""The CRF's outputs, in the order the graph lists them after the per-step scores."""

BATCH = "batch"
TIME = "time"

STATE_H = "h"
"""A step graph's input (`STEP_FILE`): float32 `(layers, batch, hidden)`, each layer's hidden
state after the stream's last step so far (zeros before its first step)."""
STATE_C = "c"
"""An LSTM step graph's input: float32 `(layers, batch, hidden)`, each layer's cell state."""
POOL_SUM = "pool_sum"
"""A mean-pooled step graph's input: float32 `(1, batch, D)`, the sum of the top layer's
states so far."""
POOL_COUNT = "pool_count"
"""A mean-pooled step graph's input: float32 `(1, batch, 1)`, the steps so far."""
POOL_SCORE = "pool_score"
"""An attention-pooled step graph's input: float32 `(1, batch, 1)`, the reference score the two
sums below are scaled by (the highest attention score so far; `STATE_FLOOR` before any)."""
POOL_WEIGHT = "pool_weight"
"""An attention-pooled step graph's input: float32 `(1, batch, 1)`, the sum of `exp(score -
pool_score)` so far (the softmax's denominator)."""
POOL_WEIGHTED = "pool_weighted"
"""An attention-pooled step graph's input: float32 `(1, batch, D)`, the sum of `exp(score -
pool_score) * state` so far (the softmax-weighted sum, undivided)."""
POOL_STATES = {"last": (), "mean": (POOL_SUM, POOL_COUNT),
               "attention": (POOL_SCORE, POOL_WEIGHT, POOL_WEIGHTED)}  # fmt: skip
"""The running pooling state a step graph carries after the recurrent one, per pooling (a
per-step network pools nothing: none)."""
STATE_FLOOR = float(np.finfo(np.float32).min)
"""`POOL_SCORE` before a stream's first step (every other state starts at 0): the lowest
finite float32, so it stays a finite number a state string can carry."""


def next_state(name: str) -> str:
    """The step graph's output holding state `name` after the chunk (`h` → `h_next`)."""
    return f"{name}_next"


NEXT_H = next_state(STATE_H)
NEXT_C = next_state(STATE_C)


def initial_state(name: str) -> float:
    """The value state `name` holds before a stream's first step."""
    return STATE_FLOOR if name == POOL_SCORE else 0.0


def dynamic_axes(
    input_name: str, output_name: str = OUTPUT, *, per_step: bool = False
) -> dict[str, dict[int, str]]:
    """The named symbolic dims (torch.onnx's `dynamic_axes` form) of a graph whose first input
    is `x` or `tokens`: batch and time on the input, batch on `lengths` and on the output,
    and with `per_step` time on the output too (one output per input step). A CRF's
    transition outputs have fixed dims only, so they appear nowhere here."""
    output_axes = {0: BATCH, 1: TIME} if per_step else {0: BATCH}
    return {input_name: {0: BATCH, 1: TIME}, LENGTHS: {0: BATCH}, output_name: output_axes}


def step_axes(input_name: str, output_name: str, states: list[str]) -> dict[str, dict[int, str]]:
    """The named symbolic dims of a step graph: batch and time on the chunk and on its
    outputs, batch on each of `states` and its next value (their other dims are fixed)."""
    named = [n for name in states for n in (name, next_state(name))]
    return {
        input_name: {0: BATCH, 1: TIME},
        output_name: {0: BATCH, 1: TIME},
        **{name: {1: BATCH} for name in named},
    }


def step_shapes(
    input_name: str,
    n_features: int,
    output_name: str,
    n_outputs: int,
    states: dict[str, tuple[int, int]],
    *,
    token_width: int = 0,
) -> dict[str, list[str | int]]:
    """Each step-graph input and output's shape, inputs first (the chunk, then each state of
    `states`, name → (rows, width), shaped `(rows, batch, width)`: `h` and for an LSTM `c`,
    `(layers, batch, hidden)`, then the pooling's running state), then the chunk's per-step
    outputs and each state after the chunk (`h_next`, ...). A chunk has no `lengths`: every
    sequence of a batch has all of its steps."""
    full = expected_shapes(input_name, n_features, output_name, [BATCH], token_width=token_width)
    shapes: dict[str, list[str | int]] = {input_name: full[input_name]}
    for name, (rows, width) in states.items():
        shapes[name] = [rows, BATCH, width]
    shapes[output_name] = [BATCH, TIME, n_outputs]
    for name, (rows, width) in states.items():
        shapes[next_state(name)] = [rows, BATCH, width]
    return shapes


def step_inputs(shapes: dict[str, list[str | int]], output_name: str) -> int:
    """How many of `step_shapes`' entries are inputs: those before the output."""
    return list(shapes).index(output_name)


def per_step_shape(n_tags: int) -> list[str | int]:
    """The shape of a per-step output: one score per tag at every step of every sequence."""
    return [BATCH, TIME, n_tags]


def is_per_step(output_shape: list[str | int]) -> bool:
    """Whether an output of this shape has a time axis, i.e. one output per input step."""
    return output_shape[:2] == [BATCH, TIME]


def crf_shapes(n_tags: int) -> dict[str, list[str | int]]:
    """The shapes of a CRF tagger's extra outputs (`CRF_OUTPUTS`)."""
    return {TRANSITIONS: [n_tags, n_tags], START_TRANSITIONS: [n_tags], END_TRANSITIONS: [n_tags]}


MODEL_FILE = "model.onnx"
STEP_FILE = "model_step.onnx"
"""The streaming step graph of a unidirectional model (`step_shapes`), beside `MODEL_FILE`;
absent when the model cannot stream (`reports/export.json` says why)."""
INT8_FILE = "model.int8.onnx"
PREPROCESSING_FILE = "preprocessing.json"
DIGESTS_FILE = "bundle.sha256"
"""The bundle's integrity record, written last by export: the sha256 of every other file of
the bundle, `preprocessing.json` included, one `<hex>  <name>` line each (`sha256sum -c`
reads it). The predictor opens nothing that does not match it."""
DIGEST_TAG = "seqops.bundle_sha256"
"""The model-version tag holding the sha256 of a registered bundle's `DIGESTS_FILE`, set at
registration; `seqops predict --model models:/...` and the scoring server refuse a bundle
whose record differs from it."""


@dataclass(frozen=True)
class Tolerance:
    """How far an output may be from the one it is checked against: `|got - expected| <=
    atol + rtol * |expected|` elementwise (numpy.allclose), so a logit of 40 may differ by
    more than one of 0.01, as float32 arithmetic in another order does."""

    atol: float
    rtol: float = 0.0

    def ratio(self, got: np.ndarray, expected: np.ndarray) -> float:
        """The largest `|got - expected| / (atol + rtol * |expected|)`: at most 1 within the
        tolerance; infinite for a NaN, an infinity or a shape mismatch."""
        got, expected = np.asarray(got, np.float64), np.asarray(expected, np.float64)
        if got.shape != expected.shape:
            return float("inf")
        if got.size == 0:
            return 0.0
        with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
            diff = np.abs(got - expected)
            ratio = np.where(diff == 0, 0.0, diff / (self.atol + self.rtol * np.abs(expected)))
        return float(np.max(np.where(np.isfinite(ratio), ratio, np.inf)))

    def scaled(self, scale: float) -> Tolerance:
        """The same tolerance for outputs multiplied by `scale` (a target's std): the
        absolute part scales, the relative part does not."""
        return Tolerance(self.atol * scale, self.rtol)


#: The op onnxruntime's dynamic quantization turns an LSTM into; absent means it stayed fp32.
QUANTIZED_LSTM_OP = "DynamicQuantizeLSTM"
#: Per cell that dynamic int8 quantization covers, the op it must leave in the graph: the
#: LSTM kernel, or for a transformer the integer matrix products of its Linear layers. GRU
#: and RNN have no quantized kernel.
QUANTIZED_OPS = {"lstm": QUANTIZED_LSTM_OP, "transformer": "MatMulInteger"}

# ONNX TensorProto element types (onnx.TensorProto.FLOAT / INT64), spelled out so this module
# does not need onnx to be importable.
_FLOAT, _INT64 = 1, 7


class ContractError(SeqopsError):
    """An ONNX graph does not match the contract (names, dtypes or symbolic dims)."""


def expected_shapes(
    input_name: str,
    n_features: int,
    output_name: str,
    output_shape: list[str | int],
    extra_outputs: dict[str, list[str | int]] | None = None,
    *,
    token_width: int = 0,
) -> dict[str, list[str | int]]:
    """Each graph input and output's shape; strings are symbolic dims. The task gives its
    output's name and shape (`[batch, classes]`, `[batch, horizon, targets]`, ...); a graph
    with more outputs (a CRF's, `crf_shapes`) lists them in `extra_outputs`, after it.
    Token input has a third, fixed dim only when each step is a packed row of `token_width`
    ids (a tagger's word and character ids; `token_width` of its bundle)."""
    first: list[str | int] = [BATCH, TIME, n_features]
    if input_name == TOKENS:
        first = [BATCH, TIME, token_width] if token_width else [BATCH, TIME]
    return {input_name: first, LENGTHS: [BATCH], output_name: output_shape, **(extra_outputs or {})}


def graph_shapes(model: onnx.ModelProto) -> dict[str, list[str | int]]:
    """Shapes as the graph declares them: a symbolic dim by name, a fixed one by value."""
    return {
        value.name: [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]
        for value in [*model.graph.input, *model.graph.output]
    }


def check_graph(
    model: onnx.ModelProto, expected: dict[str, list[str | int]], n_inputs: int = 2
) -> None:
    """Raise ContractError unless names, dtypes and symbolic dims are `expected` (the
    `n_inputs` inputs first, `x` or `tokens` then `lengths` (or a step graph's state), then the
    outputs, as `expected_shapes` and `step_shapes` order them).

    Exporters can freeze a dim silently (tracing with batch 1, torch.export specialising a
    recurrent loop), so this reads the written graph rather than trusting the export call.
    """
    want_inputs, want_outputs = list(expected)[:n_inputs], list(expected)[n_inputs:]
    inputs = [v.name for v in model.graph.input]
    outputs = [v.name for v in model.graph.output]
    if inputs != want_inputs or outputs != want_outputs:
        raise ContractError(
            f"graph has inputs {inputs} and outputs {outputs}; "
            f"expected inputs {want_inputs} and outputs {want_outputs}"
        )
    dtypes = {
        v.name: v.type.tensor_type.elem_type for v in [*model.graph.input, *model.graph.output]
    }
    want_dtypes = {
        name: _INT64 if name in (TOKENS, LENGTHS) else _FLOAT
        for name in [*want_inputs, *want_outputs]
    }
    if dtypes != want_dtypes:
        raise ContractError(f"graph element types {dtypes}; expected {want_dtypes}")
    shapes = graph_shapes(model)
    if shapes != expected:
        raise ContractError(f"graph shapes {shapes}; expected {expected} (a dim was frozen?)")


def token_width(input_name: str, feature_names: list[str]) -> int:
    """Ids per step of a `tokens` input: one per feature name when the bundle names its
    packed columns (a tagger's word and characters), else 0 (plain `(batch, time)` ids)."""
    return len(feature_names) if input_name == TOKENS else 0


def has_quantized_lstm(model: onnx.ModelProto) -> bool:
    return has_op(model, QUANTIZED_LSTM_OP)


def has_op(model: onnx.ModelProto, op: str) -> bool:
    return any(node.op_type == op for node in model.graph.node)
