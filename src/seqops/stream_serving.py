"""Serving a stream without server-side sessions: the caller carries the recurrent state.

    seqops predict --model models/ --input chunk.csv      # rows with a `stream_state` column

A request that holds the column `STATE_COLUMN` (`stream_state`) is a stream request: each
sequence's rows are the next chunk of its stream, and its `stream_state` cell (the same on every
row of the sequence) is the state the previous answer returned, or empty to start a stream. The
answer rows are what the whole stream so far would answer (a classifier's label for the steps
seen so far, a tagger's tags for the chunk's steps) plus a `stream_state` column holding each
sequence's new state, to send with its next chunk. Nothing is kept between requests: any
replica can continue any stream, and a restarted server loses nothing.

A state is one ASCII string (a cell of a CSV, a JSON field), `seqops-state/1:<model>:<data>`:

- `<model>`: the model fingerprint, the first 16 hex digits of the sha256 of the bundle's step
  graph (`model_step.onnx`): a state is refused by any other model (one with other weights
  would answer nonsense from it);
- `<data>`: URL-safe base64 of the float32 little-endian values of each state of the step
  graph, in its input order: `h` `(layers, hidden)`, for an LSTM `c` `(layers, hidden)`, and
  for mean or attention pooling the running pooling state (`onnx_contract.POOL_STATES`):
  bit-exact, unlike decimal floats that a JSON encoder may round.

A state that is not such a string, has the wrong number of values, holds NaN or infinities, or
comes from another model is refused with one DataError naming the sequence (HTTP 400 from the
scoring server, exit status 2 from `seqops predict`). Only a unidirectional model with
per-step outputs or `last`, `mean` or `attention` pooling has a step graph
(`seqops.model.streaming` says why the others cannot stream); a stream request to another model
is refused the same way.

Each request's chunk is still checked against the bundle's `max_length`; the stream as a whole
may grow past it. Torch-free, like `seqops.serving`.

A forecaster has no step graph: it reads a fixed window of the latest steps, so its stream
state is that window (`WindowLayout`, `seqops-window/1:<model>:<values>:<time>`): the last
`lookback` (+ differencing lag) raw observations as float64 and the last time, for the model
fingerprint of `model.onnx`. A series' first request sends its whole history with an empty
state; each later one only the steps after the state's last time (anything else is refused,
naming the step expected), and its answer is bit for bit the whole history's.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from seqops import onnx_contract as contract
from seqops import outputs
from seqops.errors import DataError, quote

#: The request and answer column holding each sequence's stream state.
STATE_COLUMN = "stream_state"
#: What every state string starts with: the format and its version.
STATE_PREFIX = "seqops-state/1"
#: Hex digits of the step graph's sha256 that name the model a state belongs to.
FINGERPRINT_LENGTH = 16


def fingerprint(step_file: Path) -> str:
    """The model fingerprint a state carries: the start of the step graph's sha256."""
    return outputs.sha256(step_file)[:FINGERPRINT_LENGTH]


def blank(value: Any) -> bool:
    """An empty `stream_state` cell (a stream's first chunk): None, NaN or an empty string."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return True
    return isinstance(value, float) and np.isnan(value)


def state_fields(
    value: Any, where: str, want_prefix: str, want_model: str, fields: tuple[str, ...]
) -> list[str]:
    """The data fields of a state string `<prefix>:<model>:<field>...` (named `fields` in the
    message), after checking it is one, in this format (`want_prefix`) and of this model
    (`want_model`); else one DataError naming `where`."""
    if not isinstance(value, str) or value.count(":") != 1 + len(fields):
        expected = ":".join([want_prefix, "<model>", *(f"<{f}>" for f in fields)])
        raise DataError(
            f"{where}: {STATE_COLUMN} {quote(value, 60)} is not a stream state (expected "
            f"'{expected}' as an answer returned it, or empty to start a stream)"
        )
    prefix, model, *found = value.strip().split(":")
    if prefix != want_prefix:
        raise DataError(
            f"{where}: {STATE_COLUMN} starts with {quote(prefix, 30)}, not {want_prefix!r} (a "
            "state from another kind of model, format or seqops version)"
        )
    if model != want_model:
        raise DataError(
            f"{where}: {STATE_COLUMN} comes from another model (fingerprint "
            f"{quote(model, 30)}; this model is {want_model!r}): a stream continues only on "
            "the model that started it; start a new stream with an empty state"
        )
    return found


@dataclass(frozen=True)
class StateLayout:
    """The states of one sequence, by name and `(rows, width)` in the step graph's input order
    (each `(rows, batch, width)` in a call), and the model they belong to."""

    shapes: tuple[tuple[str, int, int], ...]
    model: str
    """The model fingerprint (`fingerprint`)."""

    @property
    def names(self) -> list[str]:
        return [name for name, _, _ in self.shapes]

    @property
    def size(self) -> int:
        """float32 values in one sequence's state, all states together."""
        return sum(rows * width for _, rows, width in self.shapes)

    def describe(self) -> str:
        parts = ", ".join(f"{name} {rows} × {width}" for name, rows, width in self.shapes)
        return f"{self.size} float32 values ({parts})"

    def zeros(self, batch: int) -> list[np.ndarray]:
        """The states before a stream's first step, `(rows, batch, width)` each (zeros, or
        `onnx_contract.initial_state`'s floor)."""
        return [
            np.full((rows, batch, width), contract.initial_state(name), dtype=np.float32)
            for name, rows, width in self.shapes
        ]

    def encode(self, states: list[np.ndarray]) -> str:
        """One sequence's states, each `(rows, width)`, as a state string."""
        raw = np.concatenate([v.astype("<f4").ravel() for v in states]).tobytes()
        return f"{STATE_PREFIX}:{self.model}:{base64.urlsafe_b64encode(raw).decode('ascii')}"

    def decode(self, value: Any, where: str) -> list[np.ndarray]:
        """A state string back as one sequence's states, each `(rows, width)`; DataError
        naming `where` (the request and sequence) for anything a previous answer of this
        model did not write."""
        (data,) = state_fields(value, where, STATE_PREFIX, self.model, ("data",))
        try:
            raw = base64.urlsafe_b64decode(data.encode("ascii"))
        except (binascii.Error, UnicodeEncodeError, ValueError):
            raw = b"?"
        if len(raw) != 4 * self.size:
            raise DataError(
                f"{where}: {STATE_COLUMN} holds {len(raw)} bytes, not the {4 * self.size} of "
                f"this model's state ({self.describe()})"
            )
        values = np.frombuffer(raw, dtype="<f4").astype(np.float32)
        if not np.isfinite(values).all():
            raise DataError(f"{where}: {STATE_COLUMN} holds NaN or infinite values")
        states, start = [], 0
        for _, rows, width in self.shapes:
            states.append(values[start : start + rows * width].reshape(rows, width))
            start += rows * width
        return states


#: What a windowed model's state string starts with (`WindowLayout`).
WINDOW_PREFIX = "seqops-window/1"


@dataclass(frozen=True)
class WindowLayout:
    """The stream state of a model that reads a fixed window of the latest raw steps (a
    forecaster: `lookback` steps plus its differencing lag): those `rows` steps of `width`
    values, float64 little-endian (bit-exact, so a continued stream answers exactly what the
    whole history does), and the time of the last one, as
    `seqops-window/1:<model>:<values>:<time>` (URL-safe base64; the time as JSON)."""

    rows: int
    width: int
    model: str
    """The model fingerprint (`fingerprint` of the ONNX graph)."""

    def encode(self, values: np.ndarray, last: Any) -> str:
        raw = np.ascontiguousarray(values[-self.rows :], dtype="<f8").tobytes()
        time = json.dumps(last).encode("utf-8")
        parts = (base64.urlsafe_b64encode(b).decode("ascii") for b in (raw, time))
        return ":".join([WINDOW_PREFIX, self.model, *parts])

    def decode(self, value: Any, where: str) -> tuple[np.ndarray, Any]:
        """A state string back as the window `(rows, width)` and the last step's time (an ISO
        timestamp or an integer step); DataError naming `where` for anything else."""
        data, time = state_fields(value, where, WINDOW_PREFIX, self.model, ("values", "time"))
        try:
            raw = base64.urlsafe_b64decode(data.encode("ascii"))
            last = json.loads(base64.urlsafe_b64decode(time.encode("ascii")))
        except (binascii.Error, UnicodeError, ValueError):
            raw, last = b"?", None
        size = 8 * self.rows * self.width
        if len(raw) != size or not isinstance(last, str | int) or isinstance(last, bool):
            raise DataError(
                f"{where}: {STATE_COLUMN} holds {len(raw)} bytes and time {quote(last, 40)}, "
                f"not the {size} bytes ({self.rows} steps of {self.width} float64 values) and "
                "the timestamp or step number of this model's window"
            )
        values = np.frombuffer(raw, dtype="<f8").astype(np.float64).reshape(self.rows, self.width)
        if not np.isfinite(values).all():
            raise DataError(f"{where}: {STATE_COLUMN} holds NaN or infinite values")
        return values, last


def stream_cells(frame: pd.DataFrame, members: np.ndarray, where: str) -> Any | None:
    """The one `stream_state` of a sequence's rows `members` (None: empty, a new stream);
    DataError when its rows disagree."""
    cells = frame[STATE_COLUMN].to_numpy(dtype=object)[members]
    values = [None if blank(v) else v for v in cells]
    if len({repr(v) for v in values}) > 1:
        raise DataError(
            f"{where}: its rows carry different {STATE_COLUMN} values; send the state its "
            "previous answer returned on every row (empty on every row starts a stream)"
        )
    return values[0]


#: Runs the step graph: a chunk `(B, T, ...)` and the states (each `(rows, B, width)`) → the
#: chunk's per-step outputs `(B, T, C)` and the states after it.
StepModel = Callable[[np.ndarray, list[np.ndarray]], tuple[np.ndarray, list[np.ndarray]]]


def columns(states: list[np.ndarray], rows: Any) -> list[np.ndarray]:
    """The sequences `rows` (an index or a slice of the batch axis) of each state."""
    return [np.ascontiguousarray(s[:, rows]) for s in states]


def run_ragged(
    step: StepModel, x: np.ndarray, lengths: np.ndarray, states: list[np.ndarray]
) -> tuple[np.ndarray, list[np.ndarray]]:
    """A padded batch of chunks (`lengths` real steps each) through the step graph, one call
    per distinct length (a chunk holds no padding): per-step outputs `(B, T, C)`, 0 at padded
    steps, and each sequence's states after its last real step."""
    out: np.ndarray | None = None
    after = [np.empty_like(s) for s in states]
    for length in np.unique(lengths):
        rows = np.flatnonzero(lengths == length)
        got, found = step(np.ascontiguousarray(x[rows, :length]), columns(states, rows))
        if out is None:
            out = np.zeros((len(x), x.shape[1], got.shape[-1]), dtype=got.dtype)
        out[rows, :length] = got
        for target, value in zip(after, found, strict=True):
            target[:, rows] = value
    assert out is not None
    return out, after


def stream_chunks(
    step: StepModel, x: np.ndarray, lengths: np.ndarray, chunk: int, states: list[np.ndarray]
) -> tuple[np.ndarray, list[np.ndarray]]:
    """A padded batch fed to the step graph `chunk` steps at a time (0: each sequence whole),
    the states carried from `states`: per-step outputs `(B, T, C)`, 0 at padded steps, and the
    states after each sequence's last real step. What a client streaming its sequences does."""
    time = x.shape[1]
    chunk = chunk or time
    out: np.ndarray | None = None
    states = [s.copy() for s in states]
    for start in range(0, time, chunk):
        steps = np.clip(lengths - start, 0, chunk)
        live = np.flatnonzero(steps > 0)
        if len(live) == 0:
            break
        width = int(steps[live].max())
        got, found = run_ragged(
            step, x[live, start : start + width], steps[live], columns(states, live)
        )
        if out is None:
            out = np.zeros((len(x), time, got.shape[-1]), dtype=got.dtype)
        out[live, start : start + width] = got
        for target, value in zip(states, found, strict=True):
            target[:, live] = value
    assert out is not None, "no real steps"
    return out, states


@dataclass
class StreamRun:
    """The model function a codec calls (`Codec.predict_frame`'s `run`) when answering a
    stream request: the codec's padded batches, in its sequence order, are run through the
    step graph from `states` (one column per sequence), and each sequence's new states kept.

    `per_step`: answer per-step outputs `(B, T, C)`; else the output at each sequence's last
    step `(B, C)`, what the full graph answers for the whole stream so far."""

    step: StepModel
    states: list[np.ndarray]
    per_step: bool
    seen: int = 0
    after: list[np.ndarray] = field(init=False)

    def __post_init__(self) -> None:
        self.after = [np.empty_like(s) for s in self.states]

    @property
    def streams(self) -> int:
        return int(self.states[0].shape[1])

    def __call__(self, x: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        start, stop = self.seen, self.seen + len(x)
        if stop > self.streams:
            raise DataError(
                f"request: more sequences than its {self.streams} streams (one per id): give "
                "each sequence its own id"
            )
        out, found = run_ragged(self.step, x, lengths, columns(self.states, slice(start, stop)))
        for target, value in zip(self.after, found, strict=True):
            target[:, start:stop] = value
        self.seen = stop
        if self.per_step:
            return out
        return out[np.arange(len(x)), lengths - 1]  # (B, C)


def stream_keys(frame: pd.DataFrame, id_column: str) -> tuple[list[Any], list[np.ndarray]]:
    """The streams of a request, in the order codecs read its sequences: each id's rows in
    order of first appearance, or each row its own stream when there is no id column (text)."""
    if id_column not in frame.columns:
        return list(range(len(frame))), [np.array([i]) for i in range(len(frame))]
    groups = frame.groupby(id_column, sort=False, dropna=False).indices
    keys = [k.item() if isinstance(k, np.generic) else k for k in groups]
    return keys, list(groups.values())


def request_states(
    frame: pd.DataFrame, id_column: str, layout: StateLayout, where: str
) -> tuple[list[Any], list[np.ndarray]]:
    """Each stream's key and its states from the `stream_state` column, stacked as
    `(rows, streams, width)`: the initial states for an empty cell; DataError naming the
    stream for rows that disagree or a state this model did not write."""
    keys, rows = stream_keys(frame, id_column)
    states = layout.zeros(len(keys))
    cells = frame[STATE_COLUMN].to_numpy(dtype=object)
    for i, (key, members) in enumerate(zip(keys, rows, strict=True)):
        here = f"{where}: sequence {quote(key, 40)}"
        for value in cells[members]:
            if not blank(value) and not isinstance(value, str):
                layout.decode(value, here)  # refused: not a state string
        state = stream_cells(frame, members, here)
        if state is None:
            continue
        for target, value in zip(states, layout.decode(state, here), strict=True):
            target[:, i] = value
    return keys, states


def answer_states(
    answer: pd.DataFrame, id_column: str, keys: list[Any], run: StreamRun, layout: StateLayout
) -> pd.DataFrame:
    """`answer` with a `stream_state` column: each row's stream's new state."""
    if run.seen != len(keys):
        raise DataError(
            f"request: {len(keys)} streams by {id_column!r} but {run.seen} sequences; give each "
            f"stream its own {id_column!r}"
        )
    tokens = {key: layout.encode([s[:, i] for s in run.after]) for i, key in enumerate(keys)}
    rows = answer[id_column].tolist() if id_column in answer.columns else list(range(len(answer)))
    return answer.assign(**{STATE_COLUMN: [tokens[k] for k in rows]})


class StepSession:
    """An onnxruntime session over a step graph (`model_step.onnx`), checked against the step
    contract of its full graph when opened; called as a `StepModel`."""

    def __init__(self, session: Any, step_file: Path, expected_full: dict[str, list[str | int]]):
        self.session = session
        self.layout = check_step_graph(session, step_file, expected_full)
        self.input_name = next(iter(expected_full))
        self.output_names = [v.name for v in session.get_outputs()]

    def __call__(
        self, x: np.ndarray, states: list[np.ndarray]
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        feed = {self.input_name: x, **dict(zip(self.layout.names, states, strict=True))}
        out, *after = self.session.run(self.output_names, feed)
        return out, after


#: The state combinations a step graph may carry: the recurrent state (`h`, and `c` for an
#: LSTM), then one pooling's running state.
_KNOWN_STATES = [
    [*recurrent, *pooling]
    for recurrent in ([contract.STATE_H], [contract.STATE_H, contract.STATE_C])
    for pooling in contract.POOL_STATES.values()
]


def check_step_graph(
    session: Any, step_file: Path, expected_full: dict[str, list[str | int]]
) -> StateLayout:
    """The state layout of an onnxruntime session over `step_file`, after checking that its
    names, types and shapes are the step contract (`onnx_contract.step_shapes`) of the full
    graph `expected_full` (its input, feature count and output width) with the states it
    declares: a known combination (`_KNOWN_STATES`), each `(rows, batch, width)`."""
    inputs, outs = session.get_inputs(), session.get_outputs()
    graph = {v.name: v.shape for v in [*inputs, *outs]}
    names = [v.name for v in inputs[1:]]
    shapes = {name: graph[name] for name in names}
    fixed = all(
        len(d) == 3 and isinstance(d[0], int) and isinstance(d[2], int) for d in shapes.values()
    )
    if names not in _KNOWN_STATES or not fixed:
        raise DataError(
            f"{step_file}: step graph states {quote(shapes, 200)} are not a recurrent state "
            "(h, and c for an LSTM) and a pooling's, each (rows, batch, width); re-run "
            "`seqops export`"
        )
    full = list(expected_full)
    first, output = full[0], full[2]
    width = int(expected_full[first][2]) if len(expected_full[first]) == 3 else 0
    states = {name: (int(d[0]), int(d[2])) for name, d in shapes.items()}
    expected = contract.step_shapes(
        first,
        width if first == contract.INPUT else 0,
        output,
        int(expected_full[output][-1]),
        states,
        token_width=width if first == contract.TOKENS else 0,
    )
    n_inputs = contract.step_inputs(expected, output)
    order = [v.name for v in inputs], [v.name for v in outs]
    want = list(expected)[:n_inputs], list(expected)[n_inputs:]
    if order != want or graph != expected:
        raise DataError(
            f"{step_file}: step graph {quote(graph, 200)} does not match the "
            f"{quote(expected, 200)} its full graph implies; re-run `seqops export`"
        )
    integers = (contract.TOKENS, contract.LENGTHS)
    types = {v.name: v.type for v in [*inputs, *outs]}
    want_types = {n: "tensor(int64)" if n in integers else "tensor(float)" for n in expected}
    if types != want_types:
        raise DataError(
            f"{step_file}: element types {types}, expected {want_types}; re-run `seqops export`"
        )
    layout = tuple((name, rows, width) for name, (rows, width) in states.items())
    return StateLayout(layout, fingerprint(step_file))
