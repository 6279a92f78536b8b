"""Torch-free inference: the ONNX bundle in `models/` + raw request rows → answer rows.

    seqops predict --model models/ --input new.csv [--output predictions.csv]

The bundle is `model.onnx`, `preprocessing.json` (the typed `seqops.contracts.Bundle`) and the
task's extra files (a text model's `tokenizer.json`), written by the export stage. A bundle is
served only whole: each file must have the sha256 `preprocessing.json` records for it
(`check_files`), else one DataError names the file (a killed export, a file from another). What a
request holds and what comes back is the task's (`Task.codec`, see `seqops.tasks`):

- sequence classification: long-format rows (an id column, a time column and every feature
  column the model was trained on; other columns are ignored) → one row per sequence: the id,
  the predicted `label` and `p_<class>` for every class;
- text classification: one row per text (the text column, an optional id; a `.txt` file is
  one text per line) → the same;
- forecasting: a history (time and every series, an optional id) → one row per future step;
- sequence regression: long-format rows → one number per sequence.

Bad input raises DataError naming the column, row or sequence: missing columns, non-numeric
or NaN/infinite features, no rows, duplicate time steps, and sequences longer than the
bundle's `max_length` (rejected, never truncated: truncation would silently change the answer).

`seqops.pyfunc_serving.OnnxSequenceModel` wraps the same predictor as an MLflow pyfunc model,
so `mlflow models serve` answers with exactly what `seqops predict` writes and turns bad input
into HTTP 400 with the same message.

A request with a `stream_state` column is a stream request, answered through the bundle's step
graph (`model_step.onnx`) from the state each sequence carries, with each new state in the
answer: see `seqops.stream_serving` for the state format and what is refused.

Nothing here imports torch, nor MLflow at import time (only the registry functions use it).
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any, cast

import numpy as np
import onnxruntime as ort
import pandas as pd

from seqops import onnx_contract as contract
from seqops import outputs
from seqops.contracts import Bundle
from seqops.data.sources import check_filled, numeric_columns, one_line, time_order
from seqops.errors import DataError, quote
from seqops.stream_serving import (
    STATE_COLUMN,
    StepSession,
    StreamRun,
    answer_states,
    fingerprint,
    request_states,
)
from seqops.tasks import read_bundle
from seqops.tasks.parts.serve import Codec, RunModel, get_serve

#: Sequences per onnxruntime call: bounds memory on large files, big enough to amortise calls.
CHUNK = 256

#: What onnxruntime raises for a file that is not a loadable model (truncated, not ONNX, ...).
_ORT_LOAD_ERRORS = tuple(
    getattr(ort.capi.onnxruntime_pybind11_state, name)
    for name in ("Fail", "InvalidArgument", "InvalidProtobuf", "InvalidGraph", "NoSuchFile",
                 "NotImplemented", "RuntimeException")
)  # fmt: skip

#: What MLflow writes beside a model it downloads from the registry: its name and version.
REGISTERED_META_FILE = "registered_model_meta"

#: Prediction files by suffix.
OUTPUT_FORMATS = (".csv", ".tsv", ".txt", ".parquet", ".jsonl", ".ndjson", ".json")

#: A sha256 in hex, and a bundle file's name (no directory), in `bundle.sha256`.
_HEX64 = re.compile(r"[0-9a-f]{64}")
_FILE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,254}")


def read_input(path: Path, text_column: str | None = None) -> pd.DataFrame:
    """Long-format rows from CSV, TSV, Parquet or JSON lines (by suffix), errors naming the file.

    With `text_column` (text models) a `.txt` file is one text per line, and CSV / TSV cells
    are read as plain strings (no `NA` → NaN guessing)."""
    if not path.is_file():
        raise DataError(f"{path}: input file does not exist")
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            return pd.read_parquet(path)
        if text_column is not None and suffix == ".txt":
            lines = path.read_text(encoding="utf-8").splitlines()
            return pd.DataFrame({text_column: lines})
        if text_column is not None and suffix in (".csv", ".tsv"):
            sep = "\t" if suffix == ".tsv" else ","
            return pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False)
        if suffix in (".csv", ".tsv", ".txt"):
            return pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",")
        if suffix in (".jsonl", ".ndjson", ".json"):
            return pd.read_json(path, lines=True)
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: input is empty") from None
    except (ValueError, pd.errors.ParserError) as exc:
        raise DataError(f"{path}: cannot be read as {suffix[1:]}: {exc}") from None
    raise DataError(f"{path}: unsupported format {suffix!r} (csv, tsv, parquet, jsonl)")


def long_format_sequences(
    frame: pd.DataFrame, bundle: Bundle, mean: np.ndarray, std: np.ndarray, where: str = "input"
) -> tuple[list[Any], list[np.ndarray]]:
    """Long-format rows (id, time, every feature of `bundle`) → sequence ids (first-appearance
    order) and their `(T, F)` float32 arrays standardised with `mean` / `std`."""
    feature_names = bundle.data.feature_names
    if frame.empty:
        raise DataError(f"{where}: no rows (expected one row per time step)")
    required = [bundle.id_column, bundle.time_column, *feature_names]
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise DataError(
            f"{where}: missing column(s) {missing}; the model needs {required}, "
            f"found {[str(c) for c in frame.columns]}"
        )
    check_filled(frame, bundle.id_column, where)
    time_keys = time_order(frame[bundle.time_column], where, bundle.time_column)
    features = numeric_columns(
        frame,
        feature_names,
        where,
        row_context=lambda row: f"sequence {frame[bundle.id_column].iloc[row]!r}",
    )
    scaled = ((features - mean) / std).astype(np.float32)

    ids: list[Any] = []
    sequences: list[np.ndarray] = []
    for seq_id, rows in frame.groupby(bundle.id_column, sort=False).indices.items():
        times = pd.Series(time_keys[rows])
        if times.duplicated().any():
            raise DataError(
                f"{where}: sequence {seq_id!r} has duplicate {bundle.time_column!r} values "
                f"{sorted(times[times.duplicated()].unique().tolist())[:5]}"
            )
        if len(rows) > bundle.max_length:
            raise DataError(
                f"{where}: sequence {seq_id!r} has {len(rows)} steps; the model accepts at most "
                f"{bundle.max_length} (export.max_length); split it or re-export with a larger "
                "limit"
            )
        order = rows[np.argsort(times.to_numpy(), kind="stable")]
        ids.append(seq_id.item() if isinstance(seq_id, np.generic) else seq_id)
        sequences.append(scaled[order])
    return ids, sequences


def pad(sequences: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Zero-pad `(T_i, F)` arrays into the contract's `x` `(B, max T, F)` (token ids `(T_i,)`
    into `tokens` `(B, max T)`, a tagger's packed `(T_i, 1 + W)` ids into `(B, max T, 1 + W)`,
    0 being the padding id) and `lengths` `(B,)`."""
    lengths = np.array([len(s) for s in sequences], dtype=np.int64)
    if sequences[0].ndim == 1 or np.issubdtype(sequences[0].dtype, np.integer):
        shape = (len(sequences), int(lengths.max()), *sequences[0].shape[1:])
        tokens = np.zeros(shape, dtype=np.int64)
        for i, s in enumerate(sequences):
            tokens[i, : len(s)] = s
        return tokens, lengths
    x = np.zeros((len(sequences), int(lengths.max()), sequences[0].shape[1]), dtype=np.float32)
    for i, s in enumerate(sequences):
        x[i, : len(s)] = s
    return x, lengths


def bundle_files(bundle: Bundle, directory: Path) -> dict[str, Path]:
    """Where the task's extra bundle files (a tokenizer) are: beside `preprocessing.json`."""
    return {
        name: directory / name for name in get_serve(bundle.data.task).bundle_files(bundle.data)
    }


#: Largest integrity record read (a line per bundle file).
MAX_DIGESTS_BYTES = 64 << 10


def read_digests(record: Path) -> dict[str, str]:
    """The integrity record `bundle.sha256` (`<hex sha256>  <file name>` lines, as
    `sha256sum` writes them) as file name → digest; a missing or malformed one is refused."""
    if not record.is_file():
        raise DataError(
            f"{record}: not found: the bundle has no integrity record (an unfinished export, "
            "or one from an older seqops); re-run `seqops export`"
        )
    if record.stat().st_size > MAX_DIGESTS_BYTES:
        raise DataError(f"{record}: larger than an integrity record; re-run `seqops export`")
    digests: dict[str, str] = {}
    try:
        lines = record.read_bytes().decode("ascii").splitlines()
    except UnicodeDecodeError:
        lines = ["?"]
    for number, line in enumerate(lines, 1):
        digest, _, name = line.partition("  ")
        if not (_HEX64.fullmatch(digest) and _FILE_NAME.fullmatch(name)) or name in digests:
            raise DataError(
                f"{record}: line {number} is not '<sha256>  <file name>' of a new file; "
                "re-run `seqops export`"
            )
        digests[name] = digest
    return digests


def check_digests(record: Path, digests: dict[str, str], files: dict[str, Path]) -> None:
    """Raise DataError unless each of `files` (bundle file name → where it is) is listed in
    the integrity record with its sha256, naming the first file that is not."""
    for name, path in files.items():
        want = digests.get(name)
        if want is None:
            raise DataError(
                f"{path}: not part of the bundle {record} records; re-run `seqops export`"
            )
        if not path.is_file():
            raise DataError(f"{path}: not found (run `seqops export` to write the ONNX bundle)")
        if outputs.sha256(path) != want:
            raise DataError(
                f"{path}: sha256 differs from the one {record} records (a file changed after "
                "export, or one from another export); re-run `seqops export`"
            )


def check_files(pre_file: Path | str, bundle: Bundle, files: dict[str, Path]) -> None:
    """Raise DataError unless each of `files` (bundle file name → where it is) has the sha256
    that `bundle` (read from `pre_file`) records for it: the files of one export, whole.

    Export records the digests last, after its checks, so a bundle a killed or failed export
    left half swapped, a file from another export, or a bundle from before the digests were
    recorded is refused, naming the file, instead of served unchecked."""
    if bundle.sha256 is None:
        raise DataError(
            f"{pre_file}: records no sha256 of the bundle's files (an unfinished export or "
            "one from an older seqops); re-run `seqops export`"
        )
    check_digests(Path(pre_file), bundle.sha256, files)


def registered_version(model_root: Path) -> tuple[str, str] | None:
    """`(name, version)` of the registered version a model directory was downloaded as
    (`models:/NAME/N` or `@alias`: MLflow writes `registered_model_meta` beside `MLmodel`),
    None for a model not loaded from the registry."""
    meta_file = model_root / REGISTERED_META_FILE
    if not meta_file.is_file() or meta_file.stat().st_size > MAX_DIGESTS_BYTES:
        return None
    import yaml

    try:
        meta = yaml.safe_load(meta_file.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError):
        return None
    if not isinstance(meta, dict) or not meta.get("model_name") or not meta.get("model_version"):
        return None
    return str(meta["model_name"]), str(meta["model_version"])


def check_registered(model_root: Path, record: Path | None) -> None:
    """Raise DataError when `model_root` was downloaded from the registry and its integrity
    record `record` is not the one the version records (tag `seqops.bundle_sha256`): a bundle
    rewritten in the artifact store, record and all. A version registered before versions
    recorded the digest carries no tag and is not compared."""
    found = registered_version(model_root)
    if found is None:
        return
    name, version = found
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    try:
        tags = MlflowClient().get_model_version(name, version).tags
    except MlflowException as exc:
        raise DataError(
            f"{name} v{version}: cannot read the registry's record of the bundle "
            f"({one_line(exc.message)})"
        ) from None
    want = tags.get(contract.DIGEST_TAG)
    if not want:
        return
    got = outputs.sha256(record) if record is not None and record.is_file() else "missing"
    if got != want:
        raise DataError(
            f"{name} v{version}: the bundle's {contract.DIGESTS_FILE} (sha256 {got[:16]}) is not "
            f"the one the registry records (sha256 {want[:16]}): the registered bundle changed "
            "after it was registered"
        )


def run_batches(sequences: Sequence[np.ndarray], run: RunModel) -> np.ndarray:
    """The model's raw outputs for `sequences` (standardised floats or token ids), padded and
    run `CHUNK` at a time, in order. Per-step outputs (a time axis as long as each chunk's
    longest sequence) are padded with 0 to the longest of all chunks (`run_per_step` gives
    each sequence's own steps)."""
    chunks = [run(*pad(sequences[i : i + CHUNK])) for i in range(0, len(sequences), CHUNK)]
    widest = np.max([chunk.shape for chunk in chunks], axis=0)
    if any(chunk.shape[1:] != tuple(widest[1:]) for chunk in chunks):
        chunks = [
            np.pad(
                chunk,
                [(0, 0), *((0, w - d) for d, w in zip(chunk.shape[1:], widest[1:], strict=True))],
            )
            for chunk in chunks
        ]
    return np.concatenate(chunks)


def run_per_step(sequences: Sequence[np.ndarray], run: RunModel) -> list[np.ndarray]:
    """Per-step outputs of `run` for `sequences`, each cut to its own `(T_i, ...)` steps."""
    out = run_batches(sequences, run)
    return [out[i, : len(s)] for i, s in enumerate(sequences)]


def session_options(threads: int | None = None) -> ort.SessionOptions:
    """Fixed intra-op threads with spinning off (steady latency), or onnxruntime's defaults."""
    options = ort.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        # Spinning threads burn a core between calls and skew a neighbour's timings.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    return options


class Predictor:
    """An onnxruntime session over one ONNX model, plus its bundle's request codec."""

    def __init__(
        self,
        model_file: Path,
        bundle: Bundle,
        files: dict[str, Path] | None = None,
        threads: int | None = None,
        step_file: Path | None = None,
    ) -> None:
        if not model_file.is_file():
            raise DataError(
                f"{model_file}: not found (run `seqops export` to write the ONNX bundle)"
            )
        self.bundle = bundle
        task = get_serve(bundle.data.task)
        self.codec: Codec = task.codec(bundle, files or {})
        self.input_name = bundle.onnx.inputs[0]
        self.output_name = bundle.onnx.outputs[0]
        self.per_step = contract.is_per_step(task.output_shape(bundle.data))
        """One output per input step."""
        self.decide_steps = self.per_step and task.step_decisions
        """The codec gets each step's decision (`tags`), not its scores (`Task.step_decisions`)."""
        self.crf = tuple(bundle.onnx.outputs[1:]) == contract.CRF_OUTPUTS
        self.session = open_session(model_file, threads)
        self.model_file = model_file
        expected = self._check_graph(model_file)
        self.stepper: StepSession | None = None
        """The streaming step graph (`stream`), when the bundle has one."""
        if step_file is not None:
            self.stepper = StepSession(open_session(step_file, threads), step_file, expected)

    @cached_property
    def fingerprint(self) -> str:
        """The model a window stream's state names (`seqops.stream_serving.WindowLayout`):
        hashed on the first stream request, not at every load."""
        return fingerprint(self.model_file)

    def _check_graph(self, model_file: Path) -> dict[str, list[str | int]]:
        """The graph is the one `preprocessing.json` describes: its input and output names,
        element types and shapes (`onnx_contract.expected_shapes` for the bundle's task: the
        feature count, one output per label, the forecast horizon), symbolic dims by name."""
        meta = self.bundle.data
        task = get_serve(meta.task)
        ins, outs = self.session.get_inputs(), self.session.get_outputs()
        graph = {v.name: v.shape for v in [*ins, *outs]}
        names = [v.name for v in ins], [v.name for v in outs]
        described = self.bundle.onnx.inputs, self.bundle.onnx.outputs
        if sorted(names[0]) != sorted(described[0]) or names[1] != described[1]:
            raise DataError(
                f"{model_file}: graph inputs {quote(names[0])} and outputs {quote(names[1])} "
                f"do not match {contract.PREPROCESSING_FILE} ({quote(described[0])}, "
                f"{quote(described[1])}); re-run `seqops export`"
            )
        n_features = len(meta.feature_names)
        last = graph[self.input_name][-1]
        if self.input_name == contract.INPUT and isinstance(last, int) and last != n_features:
            raise DataError(
                f"{model_file}: the graph takes {last} features per step but "
                f"{contract.PREPROCESSING_FILE} lists {n_features}; re-run `seqops export`"
            )
        crf = contract.crf_shapes(meta.n_outputs) if self.crf else None
        expected = contract.expected_shapes(
            meta.input,
            n_features,
            task.output,
            task.output_shape(meta),
            crf,
            token_width=contract.token_width(meta.input, meta.feature_names),
        )
        if graph != expected:
            raise DataError(
                f"{model_file}: graph shapes {quote(graph, 200)} do not match the "
                f"{quote(expected, 200)} that {contract.PREPROCESSING_FILE} describes; re-run "
                "`seqops export`"
            )
        types = {v.name: v.type for v in [*ins, *outs]}
        integers = (contract.TOKENS, contract.LENGTHS)
        want = {n: "tensor(int64)" if n in integers else "tensor(float)" for n in expected}
        if types != want:
            raise DataError(
                f"{model_file}: graph element types {types}, expected {want}; re-run "
                "`seqops export`"
            )
        return expected

    @classmethod
    def load(cls, model_dir: Path, *, int8: bool = False, threads: int | None = None) -> Predictor:
        """The bundle in `model_dir` (`models/`): fp32 by default, the int8 model on request.

        The bundle proves itself before it answers: `preprocessing.json` must match the
        integrity record (`bundle.sha256`) before it is parsed, then validate as the strict
        typed `Bundle` (finite means, positive scales, a name per output, ...), then the ONNX
        model and the task's files must match the record, and the graph the metadata."""
        if not model_dir.is_dir():
            raise DataError(f"{model_dir}: model directory does not exist")
        pre_file = model_dir / contract.PREPROCESSING_FILE
        if not pre_file.is_file():
            raise DataError(f"{pre_file}: not found (run `seqops export` to write the ONNX bundle)")
        record = model_dir / contract.DIGESTS_FILE
        digests = read_digests(record)
        check_digests(record, digests, {contract.PREPROCESSING_FILE: pre_file})
        bundle = read_bundle(pre_file)
        files = bundle_files(bundle, model_dir)
        name = contract.INT8_FILE if int8 else contract.MODEL_FILE
        # The step graph is fp32: an int8 predictor does not stream.
        step = contract.STEP_FILE if contract.STEP_FILE in digests and not int8 else None
        models = {n: model_dir / n for n in (name, step) if n is not None}
        check_digests(record, digests, {**models, **files})
        check_files(pre_file, bundle, {**models, **files})
        return cls(model_dir / name, bundle, files, threads, model_dir / step if step else None)

    def run(self, x: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """Contract inputs `x` (B, T, F) float32 or `tokens` (B, T) int64, and `lengths` (B,)
        int64 → the model's output (logits (B, C), a scaled forecast (B, H, K), per-step
        scores (B, T, C), ...)."""
        (out,) = self.session.run(
            [self.output_name], {self.input_name: x, contract.LENGTHS: lengths}
        )
        return np.asarray(out)

    def tags(self, x: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """A per-step model's decisions `(B, T)` int64, -1 at padded steps: the Viterbi path
        under the graph's CRF outputs for a CRF tagger (`seqops.decoding`), else each step's
        argmax."""
        from seqops.decoding import decode_batch

        if not self.crf:
            return argmax_tags(self.run(x, lengths), lengths)
        names = [self.output_name, *contract.CRF_OUTPUTS]
        scores, transitions, start, end = self.session.run(
            names, {self.input_name: x, contract.LENGTHS: lengths}
        )
        return decode_batch(scores, lengths, transitions, start, end)

    def run_sequences(self, sequences: Sequence[np.ndarray]) -> np.ndarray:
        """Raw outputs for already-prepared sequences (standardised floats or token ids)."""
        return run_batches(sequences, self.run)

    def predict_frame(self, frame: pd.DataFrame, where: str = "input") -> pd.DataFrame:
        """Answer rows for raw request rows (classes, forecasts, numbers, tags: see the task);
        a per-step model's codec gets its decoded tags (`tags`), any other its raw output.
        A frame with a `stream_state` column is a stream request (`predict_stream`)."""
        if STATE_COLUMN in frame.columns:
            return self.predict_stream(frame, where)
        return self.codec.predict_frame(frame, self.tags if self.decide_steps else self.run, where)

    def predict_stream(self, frame: pd.DataFrame, where: str = "input") -> pd.DataFrame:
        """Answer rows for the next chunk of each sequence's stream, from the state in its
        `stream_state` cells, with each new state in the answer's `stream_state` column
        (`seqops.stream_serving`): what the whole stream so far would answer."""
        if self.stepper is None:
            windowed = self.codec.window_stream(frame, self.run, where, self.fingerprint)
            if windowed is not None:
                return windowed
            raise DataError(
                f"{where}: column {STATE_COLUMN!r} asks for a stream, but this model has no step "
                f"graph ({contract.STEP_FILE}) and cannot stream (a bidirectional cell, a conv "
                "encoder, max pooling or a CRF: reports/export.json says which); "
                f"drop the {STATE_COLUMN!r} column"
            )
        layout = self.stepper.layout
        id_column = self.bundle.id_column
        keys, states = request_states(frame, id_column, layout, where)
        run = StreamRun(self.stepper, states, per_step=self.per_step)
        model = (
            (lambda x, lengths: argmax_tags(run(x, lengths), lengths)) if self.decide_steps else run
        )
        answer = self.codec.predict_frame(frame.drop(columns=[STATE_COLUMN]), model, where)
        return answer_states(answer, id_column, keys, run, layout)

    def stream(
        self, x: np.ndarray, states: list[np.ndarray]
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """One chunk `(B, T, ...)` with no padding through the step graph from `states` (each
        `(rows, B, width)`, `stepper.layout.zeros(B)` before a stream's first step): its
        per-step outputs `(B, T, C)` and the states after it."""
        if self.stepper is None:
            raise DataError(f"this bundle has no step graph ({contract.STEP_FILE}): cannot stream")
        return self.stepper(x, states)


def argmax_tags(scores: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Each real step's highest-scoring tag `(B, T)` int64, -1 at padded steps."""
    real = np.arange(scores.shape[1])[None, :] < lengths[:, None]  # (B, T)
    return np.where(real, scores.argmax(axis=-1), -1)


def open_session(model_file: Path, threads: int | None = None) -> ort.InferenceSession:
    """An onnxruntime CPU session over `model_file`; one that is not a loadable model is a
    DataError naming it."""
    try:
        return ort.InferenceSession(
            str(model_file), session_options(threads), providers=["CPUExecutionProvider"]
        )
    except _ORT_LOAD_ERRORS as exc:
        raise DataError(
            f"{model_file}: not a loadable ONNX model ({one_line(exc)}); re-run `seqops export`"
        ) from None


def write_predictions(predictions: pd.DataFrame, path: Path | None) -> None:
    """CSV to stdout without a path; else CSV, TSV, Parquet or JSON lines by suffix (atomic:
    a temporary file beside it, renamed over it). A place that cannot be written is one
    DataError, and nothing is left there."""
    if path is None:
        predictions.to_csv(sys.stdout, index=False)
        return
    suffix = check_output(path)
    try:
        if suffix == ".parquet":
            with outputs.atomic_path(path) as tmp:
                predictions.to_parquet(tmp, index=False)
        elif suffix in (".csv", ".tsv", ".txt"):
            text = predictions.to_csv(index=False, sep="\t" if suffix == ".tsv" else ",")
            outputs.write_text(path, text)
        else:
            outputs.write_text(path, predictions.to_json(orient="records", lines=True))
    except OSError as exc:
        raise DataError(f"{path}: cannot write the predictions ({exc.strerror or exc})") from None


def check_output(path: Path) -> str:
    """The predictions file's suffix, checked before any work: a directory, an unknown
    suffix, or a folder that is missing or not writable is refused."""
    if path.is_dir():
        raise DataError(f"{path}: --output is a directory; name a file (csv, tsv, parquet, jsonl)")
    suffix = path.suffix.lower()
    if suffix not in OUTPUT_FORMATS:
        raise DataError(
            f"{path}: unsupported output format {quote(suffix, 20)} (csv, tsv, parquet, jsonl)"
        )
    folder = path.parent
    if not folder.is_dir():
        problem = "is not a folder" if folder.exists() else "does not exist (create it first)"
        raise DataError(f"{path}: --output's folder {folder} {problem}")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise DataError(f"{path}: --output's folder {folder} is not writable")
    return suffix


def predict_file(
    model_dir: Path, input_file: Path, output_file: Path | None = None
) -> pd.DataFrame:
    """What `seqops predict` does: read, predict, write; returns the predictions."""
    if output_file is not None:
        check_output(output_file)
    if str(model_dir).startswith(REGISTRY_SCHEME):
        with tempfile.TemporaryDirectory(prefix="seqops-predict-") as tmp:
            return _predict(load_registered(str(model_dir), Path(tmp)), input_file, output_file)
    return _predict(Predictor.load(model_dir), input_file, output_file)


def _predict(predictor: Predictor, input_file: Path, output_file: Path | None) -> pd.DataFrame:
    frame = predictor.codec.read(input_file)
    predictions = predictor.predict_frame(frame, where=str(input_file))
    write_predictions(predictions, output_file)
    return predictions


#: `seqops predict --model models:/NAME/N` (or `models:/NAME@alias`): a registered version.
REGISTRY_SCHEME = "models:/"


def load_registered(uri: str, tmp: Path) -> Predictor:
    """The predictor of registered model `uri`, downloaded into `tmp` from the tracking store
    (`MLFLOW_TRACKING_URI`, else `tracking.uri` of `params.yaml` in the working directory) and
    loaded as the scoring server loads it: every file checked against the bundle's record, and
    the record against the registry's (`check_registered`)."""
    import mlflow
    from mlflow.artifacts import download_artifacts
    from mlflow.exceptions import MlflowException

    from seqops import credentials
    from seqops.config import TrackingConfig, read_yaml

    params = Path("params.yaml")
    raw = read_yaml(params) if params.is_file() else None
    section = raw.get("tracking") if isinstance(raw, dict) else None
    cfg = TrackingConfig.model_validate(section or {})
    # A relative SQLite store resolves against the working directory, as MLflow resolves it.
    mlflow.set_tracking_uri(credentials.rdb_url(os.environ.get("MLFLOW_TRACKING_URI") or cfg.uri))
    before = os.environ.get("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR")
    os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
    try:
        local = Path(download_artifacts(artifact_uri=uri, dst_path=str(tmp)))
    except MlflowException as exc:
        raise DataError(
            f"--model {uri}: cannot be loaded from the registry ({one_line(exc.message)})"
        ) from None
    finally:
        if before is None:
            os.environ.pop("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", None)
        else:
            os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = before
    try:
        model = mlflow.pyfunc.load_model(str(local))
    except MlflowException as exc:
        raise DataError(f"--model {uri}: not a seqops bundle ({one_line(exc.message)})") from None
    # The logged model runs the serving code logged with it: its class, not necessarily ours.
    predictor = getattr(model.unwrap_python_model(), "_predictor", None)
    if not isinstance(predictor, Predictor) and type(predictor).__name__ != "Predictor":
        raise DataError(f"--model {uri}: not a seqops ONNX bundle")
    return cast(Predictor, predictor)  # ours, or the same class as logged with the model


def artifact_key(file_name: str) -> str:
    """The MLflow artifact key of a bundle file (`tokenizer.json` → `tokenizer`)."""
    return Path(file_name).stem


def served_signature(codec: Codec) -> Any:
    """The signature logged with the pyfunc model: the codec's answer columns, and no request
    schema. The codec checks requests itself, as `seqops predict` does: MLflow's enforcement
    would turn a boolean feature column into numbers, and the server cannot read a CSV body
    against a schema with free-typed (id, time) columns."""
    from mlflow.models import ModelSignature

    return ModelSignature(inputs=None, outputs=codec.signature().outputs)
