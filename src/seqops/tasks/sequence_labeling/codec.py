"""Serving a text tagger: sentences in, one tag per token out (torch-free).

    seqops predict --model models/ --input tweets.txt      # one sentence per line
    seqops predict --model models/ --input tweets.conll    # one token per line, no tags

A request frame (the MLflow pyfunc's input, and what `read` makes of a file) has one row per
sentence: `text`, its tokens separated by whitespace, and optionally the bundle's id column
(echoed back; row numbers when absent). The answer has one row per token: the sentence id,
`token_index` (from 0), `token` and `tag`. Tokens are encoded through the bundle's
`vocab.json` exactly as in training (`vocab.Vocabulary`) and the tags are the served graph's
decisions (`serving.Predictor.tags`: Viterbi with the exported CRF, or argmax).

Refused with one DataError naming the row (or file line): no rows, no `text` column, a cell
that is not text, an empty sentence, a sentence longer than the bundle's `max_length`
(`export.max_length`; never cut, which would silently drop tags), and a CoNLL request with a
tag column (gold tags are not input).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from seqops.contracts import Bundle
from seqops.errors import DataError, quote
from seqops.tasks.parts.serve import Codec, RunModel
from seqops.tasks.sequence_labeling.conll import read_text, read_untagged
from seqops.tasks.sequence_labeling.meta import TextLabelingMeta
from seqops.tasks.sequence_labeling.vocab import Vocabulary

if TYPE_CHECKING:
    from mlflow.models import ModelSignature

#: The request column holding a sentence's whitespace-separated tokens.
TEXT_COLUMN = "text"
#: Answer columns after the sentence id.
ANSWER_COLUMNS = ("token_index", "token", "tag")
#: Request files read as CoNLL token columns (anything else but `.txt` is a table).
CONLL_SUFFIXES = (".conll", ".conllu", ".bio", ".iob")


def sentence_frame(
    sentences: Sequence[Sequence[str]], id_column: str, ids: Sequence[Any]
) -> pd.DataFrame:
    """Tokenised sentences as a request frame: one row per sentence, tokens joined by spaces."""
    return pd.DataFrame({id_column: list(ids), TEXT_COLUMN: [" ".join(s) for s in sentences]})


class TaggerCodec(Codec[TextLabelingMeta]):
    """Sentence rows → packed token ids → one row per token with its tag."""

    def __init__(self, bundle: Bundle[TextLabelingMeta], vocab: Path) -> None:
        self.bundle = bundle
        self.vocab = Vocabulary.load(vocab)
        self.tag_names = bundle.data.label_names

    def read(self, path: Path) -> pd.DataFrame:
        """A `.txt` file (one whitespace-tokenised sentence per line), an untagged CoNLL file
        (`.conll`: one token per line, blank lines between sentences) or a table with a
        `text` column (CSV, TSV, Parquet, JSON lines); sentence ids are line-order numbers
        for the first two."""
        suffix = path.suffix.lower()
        if suffix == ".txt":
            sentences = read_text(path)
        elif suffix in CONLL_SUFFIXES:
            sentences = read_untagged(path)
            for i, tokens in enumerate(sentences):
                for t, token in enumerate(tokens):
                    if len(token.split()) != 1:
                        raise DataError(
                            f"{path}: sentence {i}, token {t} ({quote(token)}) holds whitespace; "
                            "a token is one word"
                        )
        else:
            from seqops.serving import read_input

            return read_input(path, TEXT_COLUMN)
        return sentence_frame(sentences, self.bundle.id_column, range(len(sentences)))

    def sentences(self, frame: pd.DataFrame, where: str) -> tuple[list[Any], list[list[str]]]:
        """Sentence ids and token lists of a request frame, each row checked."""
        from seqops.data.text import text_cell

        if frame.empty:
            raise DataError(f"{where}: no rows (expected one row per sentence)")
        if TEXT_COLUMN not in frame.columns:
            raise DataError(
                f"{where}: missing column {TEXT_COLUMN!r} (the sentence's tokens, separated by "
                f"spaces); found {[str(c) for c in frame.columns]}"
            )
        sentences = []
        for row, value in enumerate(frame[TEXT_COLUMN]):
            tokens = text_cell(value, where, TEXT_COLUMN, row).split()
            if len(tokens) > self.bundle.max_length:
                raise DataError(
                    f"{where}: row {row} has {len(tokens)} tokens; the model accepts at most "
                    f"{self.bundle.max_length} (export.max_length): split the sentence or "
                    "re-export with a larger limit"
                )
            sentences.append(tokens)
        id_column = self.bundle.id_column
        ids = frame[id_column].tolist() if id_column in frame.columns else list(range(len(frame)))
        return [i.item() if isinstance(i, np.generic) else i for i in ids], sentences

    def tag(self, sentences: Sequence[Sequence[str]], run: RunModel) -> list[list[str]]:
        """Each sentence's tags; `run` answers a padded batch's decoded tags `(B, T)`."""
        from seqops.serving import run_per_step

        decided = run_per_step([self.vocab.encode(s) for s in sentences], run)
        return [[self.tag_names[i] for i in tags] for tags in decided]

    def predict_frame(self, frame: pd.DataFrame, run: RunModel, where: str) -> pd.DataFrame:
        ids, sentences = self.sentences(frame, where)
        tags = self.tag(sentences, run)
        rows = [
            (sentence_id, t, token, tag)
            for sentence_id, tokens, found in zip(ids, sentences, tags, strict=True)
            for t, (token, tag) in enumerate(zip(tokens, found, strict=True))
        ]
        return pd.DataFrame(rows, columns=[self.bundle.id_column, *ANSWER_COLUMNS])

    def signature(self) -> ModelSignature:
        from mlflow.models import ModelSignature
        from mlflow.types.schema import AnyType, ColSpec, DataType, Schema

        inputs: list[Any] = [
            ColSpec(DataType.string, TEXT_COLUMN),
            ColSpec(AnyType(), self.bundle.id_column, required=False),
        ]
        outputs: list[Any] = [
            ColSpec(AnyType(), self.bundle.id_column),
            ColSpec(DataType.long, "token_index"),
            ColSpec(DataType.string, "token"),
            ColSpec(DataType.string, "tag"),
        ]
        return ModelSignature(Schema(inputs), Schema(outputs))
