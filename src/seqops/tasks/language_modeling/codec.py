"""Serving a language model (torch-free): one row per text in, its likelihood out.

    seqops predict --model models/ --input texts.txt     # one text per line, or a `text` column

Each text is encoded with the bundle's vocabulary (`lm_vocab.json`; unknown characters or
words read as `[UNK]`, as in training) and read from a zero state; its tokens after the first
are scored. Answer columns: the id (row numbers when the request has none), `n_tokens` (scored
tokens), `nll` (their summed negative log-likelihood, nats), the unit's metric
(`bits_per_char` or `perplexity`; NaN for a one-token text) and `next_token`, the most likely
token after the text (never `[PAD]` or `[UNK]`). With a `stream_state` column a text continues
its stream from the state the previous answer returned (`seqops.stream_serving`); its first
token is then context for the rest, as in any request. To write text, see `seqops generate`.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from seqops.contracts import Bundle
from seqops.errors import DataError, quote
from seqops.tasks.language_modeling.meta import LanguageModelMeta
from seqops.tasks.language_modeling.vocab import PAD_ID, UNK_ID, TokenVocabulary
from seqops.tasks.parts.serve import Codec, RunModel

if TYPE_CHECKING:
    from mlflow.models import ModelSignature

#: The request column holding the text.
TEXT_COLUMN = "text"


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Natural-log probabilities over the last axis (float64)."""
    z = logits.astype(np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


class LanguageModelCodec(Codec[LanguageModelMeta]):
    def __init__(self, bundle: Bundle[LanguageModelMeta], vocab: Path) -> None:
        self.bundle = bundle
        self.vocab = TokenVocabulary.load(vocab)
        if len(self.vocab) != bundle.data.vocab_size or self.vocab.unit != bundle.data.units:
            raise DataError(
                f"{vocab}: {len(self.vocab)} {self.vocab.unit} tokens, but the bundle's model "
                f"reads {bundle.data.vocab_size} {bundle.data.units} tokens; re-run `seqops export`"
            )
        self.metric = bundle.data.metric

    def read(self, path: Path) -> pd.DataFrame:
        from seqops.serving import read_input

        return read_input(path, TEXT_COLUMN)

    def encode(self, frame: pd.DataFrame, where: str) -> tuple[list[Any], list[np.ndarray]]:
        if frame.empty:
            raise DataError(f"{where}: no rows (expected one row per text)")
        if TEXT_COLUMN not in frame.columns:
            raise DataError(
                f"{where}: missing column {TEXT_COLUMN!r} (the text to score); found "
                f"{[str(c) for c in frame.columns]}"
            )
        encoded = []
        for row, value in enumerate(frame[TEXT_COLUMN]):
            if not isinstance(value, str):
                raise DataError(
                    f"{where}: column {TEXT_COLUMN!r} must hold text; row {row} holds "
                    f"{quote(value, 40)}"
                )
            ids = self.vocab.encode(value)
            if len(ids) == 0:
                raise DataError(f"{where}: row {row} holds no {self.vocab.unit} token")
            if len(ids) > self.bundle.max_length:
                raise DataError(
                    f"{where}: row {row} holds {len(ids)} tokens, more than the model's "
                    f"max_length {self.bundle.max_length}; split it, or stream it in chunks "
                    "(a stream_state column)"
                )
            encoded.append(ids)
        id_column = self.bundle.id_column
        ids_ = frame[id_column].tolist() if id_column in frame.columns else list(range(len(frame)))
        return [i.item() if isinstance(i, np.generic) else i for i in ids_], encoded

    def predict_frame(self, frame: pd.DataFrame, run: RunModel, where: str) -> pd.DataFrame:
        from seqops.serving import pad

        keys, encoded = self.encode(frame, where)
        x, lengths = pad(encoded)
        logits = run(x, lengths)  # (B, T, V)
        rows = []
        for i, ids in enumerate(encoded):
            logp = log_softmax(logits[i, : len(ids)])  # (T, V)
            nll = float(-logp[np.arange(len(ids) - 1), ids[1:]].sum())
            n = len(ids) - 1
            mean = nll / n if n else math.nan
            value = mean / math.log(2) if self.metric == "bits_per_char" else math.exp(mean)
            last = logp[-1].copy()
            last[[PAD_ID, UNK_ID]] = -np.inf
            rows.append((keys[i], n, nll, value, self.vocab.tokens[int(last.argmax())]))
        return pd.DataFrame(
            rows, columns=[self.bundle.id_column, "n_tokens", "nll", self.metric, "next_token"]
        )

    def signature(self) -> ModelSignature:
        from mlflow.models import ModelSignature
        from mlflow.types.schema import AnyType, ColSpec, DataType, Schema

        inputs: list[Any] = [
            ColSpec(DataType.string, TEXT_COLUMN),
            ColSpec(AnyType(), self.bundle.id_column, required=False),
        ]
        outs: list[Any] = [
            ColSpec(AnyType(), self.bundle.id_column),
            ColSpec(DataType.long, "n_tokens"),
            ColSpec(DataType.double, "nll"),
            ColSpec(DataType.double, self.metric),
            ColSpec(DataType.string, "next_token"),
        ]
        return ModelSignature(Schema(inputs), Schema(outs))
