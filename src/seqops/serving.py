"""Torch-free inference: the ONNX bundle in `models/` + raw long-format rows → class probabilities.

    seqops predict --model models/ --input new.csv [--output predictions.csv]

The bundle is `model.onnx` and `preprocessing.json` (written by the export stage). Input is
long format, one row per time step, exactly like training data (CSV, TSV, Parquet or JSON
lines): an id column, a time column and every feature column the model was trained on; other
columns (a label, say) are ignored. Output has one row per sequence, in order of first
appearance: the id, the predicted `label` and `p_<class>` for every class.

Bad input raises DataError naming the column, row or sequence: missing columns, non-numeric
or NaN/infinite features, no rows, duplicate time steps, and sequences longer than the
bundle's `max_length` (rejected, never truncated: truncation would silently change the answer).

Text models (`data.task: text_classification`) take raw text instead: one row per text with
the text column (default `text`) and optionally the id column (echoed back; row numbers when
absent); a `.txt` input file is one text per line. The bundle's `tokenizer.json` turns text
into token ids exactly as in training: Unicode is normalised (NFKC) and lower-cased, words
never seen in training become `[UNK]`, texts longer than the tokenizer's `max_len` tokens are
truncated to their first `max_len` tokens (as training data was), and an empty or
whitespace-only text is rejected (DataError naming the row; HTTP 400 from the server).

Forecasting models (`data.task: forecasting`) take a history instead: rows of the time
column and every series the model was trained on (an id column is optional and separates
several histories). Each history must be strictly increasing in time, on the model's
frequency with no missing step or value, and at least `lookback` (+ the differencing lag)
steps long; the model reads its last `lookback` steps. Output is one row per future step:
id, time, `horizon` (1..horizon) and each target, in the series' own units.

`OnnxSequenceClassifier` wraps the same predictor as an MLflow pyfunc model, so
`mlflow models serve` answers with exactly what `seqops predict` writes and turns bad input
into HTTP 400 with the same message. Nothing here imports torch.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE
from mlflow.pyfunc import PythonModel
from mlflow.types.schema import AnyType, ColSpec, DataType, Schema, TensorSpec

from seqops import onnx_contract as contract
from seqops import outputs
from seqops.data.series import parse_times, regularise
from seqops.data.sources import numeric_columns
from seqops.data.text import TextEncoder, text_cell
from seqops.data.windows import HORIZON_COLUMN, ForecastSpec
from seqops.errors import DataError

#: Sequences per onnxruntime call: bounds memory on large files, big enough to amortise calls.
_CHUNK = 256


@dataclass(frozen=True)
class Preprocessing:
    """The contents of `preprocessing.json`: what turns raw rows into model input."""

    feature_names: list[str]
    label_names: list[str]
    mean: np.ndarray
    std: np.ndarray
    id_column: str
    time_column: str
    max_length: int

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Preprocessing:
        return cls(
            feature_names=[str(f) for f in d["feature_names"]],
            label_names=[str(n) for n in d["label_names"]],
            mean=np.asarray(d["scaler"]["mean"], dtype=np.float64),
            std=np.asarray(d["scaler"]["std"], dtype=np.float64),
            id_column=str(d["id_column"]),
            time_column=str(d["time_column"]),
            max_length=int(d["max_length"]),
        )

    @classmethod
    def load(cls, path: Path) -> Preprocessing:
        if not path.is_file():
            raise DataError(f"{path}: not found (run `seqops export` to write the ONNX bundle)")
        try:
            return cls.from_dict(json.loads(path.read_text()))
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"{path}: not a seqops preprocessing file ({exc!r})") from None

    @property
    def probability_columns(self) -> list[str]:
        return [f"p_{name}" for name in self.label_names]


@dataclass(frozen=True)
class TextPreprocessing:
    """`preprocessing.json` of a text model plus its tokenizer: raw text → token ids."""

    label_names: list[str]
    text_column: str
    id_column: str
    encoder: TextEncoder

    @property
    def probability_columns(self) -> list[str]:
        return [f"p_{name}" for name in self.label_names]

    @classmethod
    def from_dict(cls, d: dict[str, Any], tokenizer_file: Path) -> TextPreprocessing:
        return cls(
            label_names=[str(n) for n in d["label_names"]],
            text_column=str(d["text_column"]),
            id_column=str(d["id_column"]),
            encoder=TextEncoder.load(tokenizer_file),
        )


@dataclass(frozen=True)
class ForecastPreprocessing:
    """`preprocessing.json` of a forecasting model: history rows → windows, forecasts → units."""

    spec: ForecastSpec
    freq: str | None
    """pandas frequency of timestamps; None when time counts integer steps."""
    id_column: str
    time_column: str

    @property
    def feature_names(self) -> list[str]:
        return self.spec.feature_names

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ForecastPreprocessing:
        return cls(
            spec=ForecastSpec.from_dict(d["forecast"]),
            freq=d["freq"],
            id_column=str(d["id_column"]),
            time_column=str(d["time_column"]),
        )

    def future_times(self, last: Any) -> list[Any]:
        """The `horizon` steps after `last`: ISO timestamps, or integers."""
        h = self.spec.horizon
        if self.freq is None:
            return [int(last) + i for i in range(1, h + 1)]
        steps = pd.date_range(last, periods=h + 1, freq=self.freq)[1:]
        return [t.isoformat() for t in steps]


AnyPreprocessing = Preprocessing | TextPreprocessing | ForecastPreprocessing


def load_preprocessing(path: Path, tokenizer_file: Path | None = None) -> AnyPreprocessing:
    """The bundle's preprocessing, float, text or forecasting; a text bundle's tokenizer sits
    beside it unless `tokenizer_file` says otherwise (MLflow keeps each artifact in its own
    folder)."""
    if not path.is_file():
        raise DataError(f"{path}: not found (run `seqops export` to write the ONNX bundle)")
    try:
        d = json.loads(path.read_text())
        if d.get("task") == "text_classification":
            return TextPreprocessing.from_dict(d, tokenizer_file or path.parent / d["tokenizer"])
        if d.get("task") == "forecasting":
            return ForecastPreprocessing.from_dict(d)
        return Preprocessing.from_dict(d)
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(f"{path}: not a seqops preprocessing file ({exc!r})") from None


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


def to_sequences(
    frame: pd.DataFrame, pre: Preprocessing, where: str = "input"
) -> tuple[list[Any], list[np.ndarray]]:
    """Sequence ids (first-appearance order) and their standardised `(T, F)` float32 arrays."""
    if frame.empty:
        raise DataError(f"{where}: no rows (expected one row per time step)")
    required = [pre.id_column, pre.time_column, *pre.feature_names]
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise DataError(
            f"{where}: missing column(s) {missing}; the model needs {required}, "
            f"found {[str(c) for c in frame.columns]}"
        )
    for col in (pre.id_column, pre.time_column):
        if frame[col].isna().any():
            row = int(np.flatnonzero(frame[col].isna().to_numpy())[0])
            raise DataError(f"{where}: column {col!r} is empty at row {row}")
    features = numeric_columns(
        frame,
        pre.feature_names,
        where,
        row_context=lambda row: f"sequence {frame[pre.id_column].iloc[row]!r}",
    )
    scaled = ((features - pre.mean) / pre.std).astype(np.float32)

    ids: list[Any] = []
    sequences: list[np.ndarray] = []
    for seq_id, rows in frame.groupby(pre.id_column, sort=False).indices.items():
        times = frame[pre.time_column].iloc[rows]
        if times.duplicated().any():
            raise DataError(
                f"{where}: sequence {seq_id!r} has duplicate {pre.time_column!r} values "
                f"{sorted(times[times.duplicated()].unique().tolist())[:5]}"
            )
        if len(rows) > pre.max_length:
            raise DataError(
                f"{where}: sequence {seq_id!r} has {len(rows)} steps; the model accepts at most "
                f"{pre.max_length} (export.max_length); split it or re-export with a larger limit"
            )
        order = rows[np.argsort(times.to_numpy(), kind="stable")]
        ids.append(seq_id.item() if isinstance(seq_id, np.generic) else seq_id)
        sequences.append(scaled[order])
    return ids, sequences


def text_inputs(
    frame: pd.DataFrame, pre: TextPreprocessing, where: str = "input"
) -> tuple[list[Any], list[np.ndarray]]:
    """Ids (the id column, or row numbers) and token ids `(T,)` int64 of one text per row."""
    if frame.empty:
        raise DataError(f"{where}: no rows (expected one row per text)")
    if pre.text_column not in frame.columns:
        raise DataError(
            f"{where}: missing column {pre.text_column!r} (the text to classify); "
            f"found {[str(c) for c in frame.columns]}"
        )
    texts = [
        text_cell(v, where, pre.text_column, row) for row, v in enumerate(frame[pre.text_column])
    ]
    ids = (
        frame[pre.id_column].tolist() if pre.id_column in frame.columns else list(range(len(frame)))
    )
    ids = [i.item() if isinstance(i, np.generic) else i for i in ids]
    return ids, pre.encoder.encode(texts, where)


def forecast_inputs(
    frame: pd.DataFrame, pre: ForecastPreprocessing, where: str = "input"
) -> tuple[list[Any], list[np.ndarray], list[Any]]:
    """Series ids, their regular histories `(T, F)` in units, and each one's last time.

    The id column is optional (absent: the rows are one series, id 0). Each history must be
    strictly increasing and gap-free on the model's frequency, and at least `min_history`
    steps long; the model reads its last `lookback` (transformed) steps."""
    if frame.empty:
        raise DataError(f"{where}: no rows (expected one row per time step of the history)")
    required = [pre.time_column, *pre.feature_names]
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise DataError(
            f"{where}: missing column(s) {missing}; the model needs {required} "
            f"(and optionally {pre.id_column!r}), found {[str(c) for c in frame.columns]}"
        )
    if pre.id_column in frame.columns:
        groups = frame.groupby(pre.id_column, sort=False).indices.items()
    else:
        groups = [(0, np.arange(len(frame)))]
    spec = pre.spec
    ids, histories, lasts = [], [], []
    for seq_id, rows in groups:
        part = frame.iloc[rows]
        label = f"{where}: series {seq_id!r}"
        times = parse_times(part[pre.time_column].reset_index(drop=True), label, pre.time_column)
        if (pre.freq is None) != (not isinstance(times, pd.DatetimeIndex)):
            kind = "timestamps" if pre.freq else "integer steps"
            raise DataError(f"{label}: column {pre.time_column!r} must hold {kind}")
        values = numeric_columns(part, pre.feature_names, label, gaps=True)
        series = regularise(
            times, values, pre.feature_names, pre.freq, "error", label, "fill them first"
        )
        if len(series) < spec.min_history:
            lag = f" + {spec.lag} for {spec.differencing} differencing" if spec.lag else ""
            raise DataError(
                f"{label}: history of {len(series)} steps is too short; the model needs at "
                f"least {spec.min_history} (lookback {spec.lookback}{lag})"
            )
        ids.append(seq_id.item() if isinstance(seq_id, np.generic) else seq_id)
        histories.append(series.values)
        lasts.append(series.times[-1])
    return ids, histories, lasts


def pad(sequences: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Zero-pad `(T_i, F)` arrays into the contract's `x` `(B, max T, F)` (token ids `(T_i,)`
    into `tokens` `(B, max T)`, 0 being the padding id) and `lengths` `(B,)`."""
    lengths = np.array([len(s) for s in sequences], dtype=np.int64)
    if sequences[0].ndim == 1:
        tokens = np.zeros((len(sequences), int(lengths.max())), dtype=np.int64)
        for i, s in enumerate(sequences):
            tokens[i, : len(s)] = s
        return tokens, lengths
    x = np.zeros((len(sequences), int(lengths.max()), sequences[0].shape[1]), dtype=np.float32)
    for i, s in enumerate(sequences):
        x[i, : len(s)] = s
    return x, lengths


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=-1, keepdims=True)


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
    """An onnxruntime session over one ONNX model plus its preprocessing."""

    def __init__(self, model_file: Path, pre: AnyPreprocessing, threads: int | None = None) -> None:
        if not model_file.is_file():
            raise DataError(
                f"{model_file}: not found (run `seqops export` to write the ONNX bundle)"
            )
        self.pre = pre
        self.input_name = contract.TOKENS if isinstance(pre, TextPreprocessing) else contract.INPUT
        self.output_name = (
            contract.FORECAST if isinstance(pre, ForecastPreprocessing) else contract.OUTPUT
        )
        self.session = ort.InferenceSession(
            str(model_file), session_options(threads), providers=["CPUExecutionProvider"]
        )

    @classmethod
    def load(cls, model_dir: Path, *, int8: bool = False, threads: int | None = None) -> Predictor:
        """The bundle in `model_dir` (`models/`): fp32 by default, the int8 model on request."""
        if not model_dir.is_dir():
            raise DataError(f"{model_dir}: model directory does not exist")
        pre = load_preprocessing(model_dir / contract.PREPROCESSING_FILE)
        name = contract.INT8_FILE if int8 else contract.MODEL_FILE
        return cls(model_dir / name, pre, threads)

    def logits(self, x: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """Contract inputs `x` (B, T, F) float32 or `tokens` (B, T) int64, and `lengths` (B,)
        int64 → logits (B, C), or a forecasting model's scaled forecast (B, H, K)."""
        (out,) = self.session.run(
            [self.output_name], {self.input_name: x, contract.LENGTHS: lengths}
        )
        return np.asarray(out)

    def forecast(self, histories: Sequence[np.ndarray]) -> np.ndarray:
        """`(N, H, K)` forecasts in the series' units from raw histories `(T_i, F)`."""
        assert isinstance(self.pre, ForecastPreprocessing)
        spec = self.pre.spec
        chunks = []
        for i in range(0, len(histories), _CHUNK):
            part = histories[i : i + _CHUNK]
            x = np.stack([spec.model_input(h) for h in part])
            z = self.logits(x, np.full(len(part), spec.lookback, dtype=np.int64))
            chunks.append(spec.invert(z, np.stack([spec.tail(h) for h in part])))
        return np.concatenate(chunks)

    def forecast_frame(self, frame: pd.DataFrame, where: str = "input") -> pd.DataFrame:
        """One row per (series, future step): id, time, horizon (1..H), a column per target."""
        pre = self.pre
        assert isinstance(pre, ForecastPreprocessing)
        ids, histories, lasts = forecast_inputs(frame, pre, where)
        forecasts = self.forecast(histories)  # (N, H, K)
        h = pre.spec.horizon
        out = pd.DataFrame(
            forecasts.reshape(-1, forecasts.shape[-1]), columns=pre.spec.target_names
        )
        out.insert(0, HORIZON_COLUMN, np.tile(np.arange(1, h + 1), len(ids)))
        out.insert(0, pre.time_column, [t for last in lasts for t in pre.future_times(last)])
        out.insert(0, pre.id_column, np.repeat(np.array(ids, dtype=object), h))
        return out

    def predict_proba(self, sequences: Sequence[np.ndarray]) -> np.ndarray:
        """`(N, C)` probabilities of already-standardised sequences (or token ids)."""
        chunks = [
            softmax(self.logits(*pad(sequences[i : i + _CHUNK])))
            for i in range(0, len(sequences), _CHUNK)
        ]
        return np.concatenate(chunks)

    def predict_frame(self, frame: pd.DataFrame, where: str = "input") -> pd.DataFrame:
        """One row per sequence (or text): id, predicted `label`, `p_<class>` for each class;
        forecasting models: one row per future step (`forecast_frame`)."""
        if isinstance(self.pre, ForecastPreprocessing):
            return self.forecast_frame(frame, where)
        if isinstance(self.pre, TextPreprocessing):
            ids, sequences = text_inputs(frame, self.pre, where)
        else:
            ids, sequences = to_sequences(frame, self.pre, where)
        probs = self.predict_proba(sequences)
        out = pd.DataFrame(probs.astype(np.float64), columns=self.pre.probability_columns)
        out.insert(0, "label", [self.pre.label_names[i] for i in probs.argmax(axis=1)])
        out.insert(0, self.pre.id_column, ids)
        return out


def write_predictions(predictions: pd.DataFrame, path: Path | None) -> None:
    """CSV to stdout without a path; else CSV, TSV, Parquet or JSON lines by suffix (atomic)."""
    if path is None:
        predictions.to_csv(sys.stdout, index=False)
        return
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        with outputs.atomic_path(path) as tmp:
            predictions.to_parquet(tmp, index=False)
    elif suffix in (".csv", ".tsv", ".txt"):
        text = predictions.to_csv(index=False, sep="\t" if suffix == ".tsv" else ",")
        outputs.write_text(path, text)
    elif suffix in (".jsonl", ".ndjson", ".json"):
        outputs.write_text(path, predictions.to_json(orient="records", lines=True))
    else:
        raise DataError(f"{path}: unsupported output format {suffix!r} (csv, tsv, parquet, jsonl)")


def predict_file(
    model_dir: Path, input_file: Path, output_file: Path | None = None
) -> pd.DataFrame:
    """What `seqops predict` does: read, predict, write; returns the predictions."""
    predictor = Predictor.load(model_dir)
    text_column = (
        predictor.pre.text_column if isinstance(predictor.pre, TextPreprocessing) else None
    )
    frame = read_input(input_file, text_column)
    predictions = predictor.predict_frame(frame, where=str(input_file))
    write_predictions(predictions, output_file)
    return predictions


def model_signature(pre: AnyPreprocessing) -> ModelSignature:
    """The pyfunc signature: long-format rows in, one row per sequence out.

    Id and time accept any type (string or integer ids, integer or float or timestamp steps);
    features must be doubles, so the scoring server rejects text with a 400 before predict.
    A text model takes a string column and an optional id column of any type. A forecasting
    model takes history rows (time, every feature as double, an optional id) and answers one
    row per future step: id, time, horizon and one double per target.
    """
    if isinstance(pre, ForecastPreprocessing):
        history: list[ColSpec | TensorSpec] = [
            ColSpec(AnyType(), pre.id_column, required=False),
            ColSpec(AnyType(), pre.time_column),
        ]
        history += [ColSpec(DataType.double, name) for name in pre.feature_names]
        future: list[ColSpec | TensorSpec] = [
            ColSpec(AnyType(), pre.id_column),
            ColSpec(AnyType(), pre.time_column),
            ColSpec(DataType.long, HORIZON_COLUMN),
        ]
        future += [ColSpec(DataType.double, name) for name in pre.spec.target_names]
        return ModelSignature(Schema(history), Schema(future))
    outputs: list[ColSpec | TensorSpec] = [
        ColSpec(AnyType(), pre.id_column),
        ColSpec(DataType.string, "label"),
    ]
    outputs += [ColSpec(DataType.double, name) for name in pre.probability_columns]
    if isinstance(pre, TextPreprocessing):
        text_in: list[ColSpec | TensorSpec] = [
            ColSpec(DataType.string, pre.text_column),
            ColSpec(AnyType(), pre.id_column, required=False),
        ]
        return ModelSignature(Schema(text_in), Schema(outputs))
    inputs: list[ColSpec | TensorSpec] = [
        ColSpec(AnyType(), pre.id_column),
        ColSpec(AnyType(), pre.time_column),
    ]
    inputs += [ColSpec(DataType.double, name) for name in pre.feature_names]
    return ModelSignature(Schema(inputs), Schema(outputs))


class OnnxSequenceClassifier(PythonModel):
    """MLflow pyfunc over the ONNX bundle; artifacts `model` (ONNX), `preprocessing` (JSON) and,
    for text models, `tokenizer` (tokenizer.json)."""

    def load_context(self, context: Any) -> None:
        tokenizer = context.artifacts.get("tokenizer")
        pre = load_preprocessing(
            Path(context.artifacts["preprocessing"]), Path(tokenizer) if tokenizer else None
        )
        self._predictor = Predictor(Path(context.artifacts["model"]), pre)

    # A pd.DataFrame hint tells MLflow to infer no schema from the hint: the signature logged
    # with the model (long-format columns) validates requests instead.
    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        try:
            return self._predictor.predict_frame(frame, where="request")
        except DataError as exc:
            # MlflowException with this code is what the scoring server answers as HTTP 400.
            raise MlflowException(str(exc), error_code=INVALID_PARAMETER_VALUE) from None
