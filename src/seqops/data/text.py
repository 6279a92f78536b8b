"""Raw labelled text → token-id sequences, with a `tokenizers` tokenizer fitted on train only.

    from seqops.data.text import read_labelled_text, train_tokenizer, TextEncoder
    texts, labels = read_labelled_text(Path("stsa.binary.train"), "text", "label")
    tokenizer = train_tokenizer(texts, lowercase=True, normalization="nfkc", kind="word",
                                vocab_size=20000, min_frequency=1, max_len=64)
    ids = TextEncoder(tokenizer).encode(["a stirring , funny film"])   # [int64 (T,)]

Inputs: CSV, TSV, Parquet (columns named in params), or plain `<label> <text>` lines (any
other suffix, e.g. SST-2's `stsa.binary.train`). Token ids: 0 is `[PAD]`, 1 is `[UNK]`; the
tokenizer truncates to `max_len` tokens and that setting travels inside `tokenizer.json`, so
prediction truncates exactly like training did. Imports neither torch nor onnx (the
predictor uses `TextEncoder`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from tokenizers import Tokenizer, normalizers, pre_tokenizers
from tokenizers.models import WordLevel, WordPiece
from tokenizers.trainers import WordLevelTrainer, WordPieceTrainer

if TYPE_CHECKING:
    from seqops.config import TokenizerConfig

from seqops.data.sources import one_line
from seqops.errors import DataError

PAD, UNK = "[PAD]", "[UNK]"
PAD_ID, UNK_ID = 0, 1
TOKENIZER_FILE = "tokenizer.json"

_NORMALIZERS = {
    "nfc": normalizers.NFC,
    "nfd": normalizers.NFD,
    "nfkc": normalizers.NFKC,
    "nfkd": normalizers.NFKD,
}


def read_labelled_text(
    path: Path, text_column: str, label_column: str
) -> tuple[list[str], list[str]]:
    """Texts and string labels from a table (by suffix) or `<label> <text>` lines."""
    if not path.is_file():
        raise DataError(f"{path}: file does not exist")
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv", ".parquet"):
        return _read_table(path, suffix, text_column, label_column)
    try:
        lines = path.read_text(encoding="utf-8").split("\n")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path} is not UTF-8 text (byte {exc.start}); save it as UTF-8") from None
    texts, labels = [], []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue  # blank lines carry no example
        label, _, text = line.strip().partition(" ")
        if not text.strip():
            raise DataError(
                f"{path}: line {number} has no text after its label {label!r} "
                "(expected '<label> <text>')"
            )
        labels.append(label)
        texts.append(text.strip())
    if not texts:
        raise DataError(f"{path}: no examples (expected '<label> <text>' lines)")
    return texts, labels


def _read_table(
    path: Path, suffix: str, text_column: str, label_column: str
) -> tuple[list[str], list[str]]:
    try:
        if suffix == ".parquet":
            frame = pd.read_parquet(path)
        else:
            frame = pd.read_csv(
                path, sep="\t" if suffix == ".tsv" else ",", dtype=str, keep_default_na=False
            )
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: file is empty") from None
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        raise DataError(f"{path}: cannot be read as {suffix[1:]}: {one_line(exc)}") from None
    missing = [c for c in (text_column, label_column) if c not in frame.columns]
    if missing:
        raise DataError(
            f"{path}: missing column(s) {missing} (data.text_column / data.label_column); "
            f"found {[str(c) for c in frame.columns]}"
        )
    if frame.empty:
        raise DataError(f"{path}: no rows")
    texts = [text_cell(v, path, text_column, row) for row, v in enumerate(frame[text_column])]
    labels = []
    for row, value in enumerate(frame[label_column]):
        if value is None or (isinstance(value, float) and math.isnan(value)) or str(value) == "":
            raise DataError(f"{path}: column {label_column!r} is empty at row {row}")
        labels.append(str(value))
    return texts, labels


def text_cell(value: Any, where: str | Path, column: str, row: int) -> str:
    """`value` if it is non-blank text, else DataError naming the column and row."""
    if value is None or (
        not isinstance(value, str) and pd.api.types.is_scalar(value) and pd.isna(value)
    ):
        raise DataError(f"{where}: column {column!r} is empty at row {row}")
    if not isinstance(value, str):
        raise DataError(f"{where}: column {column!r} must hold text; row {row} holds {value!r}")
    if not value.strip():
        raise DataError(f"{where}: column {column!r} is empty at row {row}")
    return value


def train_tokenizer(
    texts: Sequence[str],
    *,
    kind: str,
    normalization: str,
    lowercase: bool,
    vocab_size: int,
    min_frequency: int,
    max_len: int,
) -> Tokenizer:
    """A word-level or WordPiece tokenizer fitted on `texts` (the training split only)."""
    tokenizer = Tokenizer(WordLevel(unk_token=UNK) if kind == "word" else WordPiece(unk_token=UNK))
    steps: list[normalizers.Normalizer] = []
    if normalization != "none":
        steps.append(_NORMALIZERS[normalization]())
    if lowercase:
        steps.append(normalizers.Lowercase())
    if steps:
        tokenizer.normalizer = normalizers.Sequence(steps)
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer_cls = WordLevelTrainer if kind == "word" else WordPieceTrainer
    # Special tokens first, so [PAD] = 0 (the embedding's padding index) and [UNK] = 1.
    trainer = trainer_cls(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=[PAD, UNK],
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer)
    if tokenizer.token_to_id(PAD) != PAD_ID or tokenizer.token_to_id(UNK) != UNK_ID:
        raise RuntimeError("tokenizer special tokens are not at ids 0 ([PAD]) and 1 ([UNK])")
    tokenizer.enable_truncation(max_len)
    return tokenizer


def tokenizer_from_config(texts: Sequence[str], cfg: TokenizerConfig) -> Tokenizer:
    """`train_tokenizer` with the settings of `data.tokenizer`."""
    return train_tokenizer(
        texts,
        kind=cfg.kind,
        normalization=cfg.normalization,
        lowercase=cfg.lowercase,
        vocab_size=cfg.vocab_size,
        min_frequency=cfg.min_frequency,
        max_len=cfg.max_len,
    )


class TextEncoder:
    """Raw text → int64 token ids `(T,)`, truncated to the tokenizer's `max_len`."""

    def __init__(self, tokenizer: Tokenizer) -> None:
        self.tokenizer = tokenizer

    @classmethod
    def load(cls, path: Path) -> TextEncoder:
        if not path.is_file():
            raise DataError(f"{path}: tokenizer file not found")
        return cls(Tokenizer.from_file(str(path)))

    @property
    def vocab_size(self) -> int:
        return int(self.tokenizer.get_vocab_size())

    @property
    def max_len(self) -> int:
        truncation = self.tokenizer.truncation
        return int(truncation["max_length"]) if truncation else 0

    def encode(self, texts: Sequence[str], where: str = "input") -> list[np.ndarray]:
        """Token ids per text; an empty text (no tokens once normalised) raises DataError."""
        encodings = self.tokenizer.encode_batch(list(texts), add_special_tokens=False)
        ids = [np.asarray(e.ids, dtype=np.int64) for e in encodings]
        for row, seq in enumerate(ids):
            if len(seq) == 0:
                raise DataError(f"{where}: text at row {row} is empty (no tokens)")
        return ids


def load_word_vectors(path: Path, vocab: dict[str, int], dim: int) -> tuple[np.ndarray, int]:
    """`(len(vocab), dim)` float32 rows from a word2vec / GloVe text file, and how many words
    it covered. Words missing from the file keep a small random row; `[PAD]` stays zero."""
    if not path.is_file():
        raise DataError(f"model.embeddings_path: {path} does not exist")
    rng = np.random.default_rng(0)
    weights = rng.normal(0.0, 0.1, (len(vocab), dim)).astype(np.float32)
    weights[PAD_ID] = 0.0
    found = 0
    with open(path, encoding="utf-8", errors="replace") as fh:
        for number, line in enumerate(fh, start=1):
            parts = line.rstrip().split(" ")
            if number == 1 and len(parts) == 2 and all(p.isdigit() for p in parts):
                continue  # word2vec text header: "<words> <dim>"
            if len(parts) != dim + 1:
                raise DataError(
                    f"model.embeddings_path: {path} line {number} has {len(parts) - 1} values; "
                    f"model.embedding_dim is {dim}"
                )
            index = vocab.get(parts[0])
            if index is not None and index != PAD_ID:
                weights[index] = np.asarray(parts[1:], dtype=np.float32)
                found += 1
    return weights, found
