"""Text sources, the tokenizer (train split only, special ids, normalisation, truncation) and
word vectors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from seqops.data.text import (
    PAD_ID,
    UNK_ID,
    TextEncoder,
    load_word_vectors,
    read_labelled_text,
    train_tokenizer,
)
from seqops.errors import DataError

TEXTS = ["a fine film", "a dull film", "Fine acting , dull plot", "the plot is fine"]
LABELS = ["1", "0", "1", "1"]


def tokenizer(**overrides: object) -> TextEncoder:
    settings: dict = dict(
        kind="word",
        normalization="nfkc",
        lowercase=True,
        vocab_size=100,
        min_frequency=1,
        max_len=6,
    )
    settings.update(overrides)
    return TextEncoder(train_tokenizer(TEXTS, **settings))


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".parquet", ".txt"])
def test_every_input_format_reads_the_same_examples(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"data{suffix}"
    frame = pd.DataFrame({"review": TEXTS, "stars": LABELS})
    if suffix == ".csv":
        frame.to_csv(path, index=False)
    elif suffix == ".tsv":
        frame.to_csv(path, sep="\t", index=False)
    elif suffix == ".parquet":
        frame.to_parquet(path)
    else:  # `<label> <text>` lines; blank lines are skipped
        path.write_text("".join(f"{y} {t}\n\n" for t, y in zip(TEXTS, LABELS, strict=True)))
    assert read_labelled_text(path, "review", "stars") == (TEXTS, LABELS)


def test_bad_text_files_are_rejected_naming_the_problem(tmp_path: Path) -> None:
    lines = tmp_path / "train.txt"
    lines.write_text("1 good\n0\n")
    with pytest.raises(DataError, match=r"train.txt: line 2 has no text after its label '0'"):
        read_labelled_text(lines, "text", "label")
    table = tmp_path / "train.csv"
    pd.DataFrame({"text": ["good", "  "], "label": [1, 0]}).to_csv(table, index=False)
    with pytest.raises(DataError, match=r"train.csv: column 'text' is empty at row 1"):
        read_labelled_text(table, "text", "label")
    with pytest.raises(DataError, match=r"missing column\(s\) \['review'\]"):
        read_labelled_text(table, "review", "label")


def test_special_tokens_unknown_words_and_normalisation() -> None:
    enc = tokenizer()
    vocab = enc.tokenizer.get_vocab()
    assert vocab["[PAD]"] == PAD_ID == 0 and vocab["[UNK]"] == UNK_ID == 1
    # NFKC folds full-width letters, lower-casing folds case; unseen words are [UNK].
    (ids,) = enc.encode(["ＦＩＮＥ Film zebra"])
    assert ids.dtype == np.int64
    assert ids.tolist() == [vocab["fine"], vocab["film"], UNK_ID]


def test_min_frequency_and_truncation() -> None:
    enc = tokenizer(min_frequency=2)
    assert "acting" not in enc.tokenizer.get_vocab()  # seen once
    assert "fine" in enc.tokenizer.get_vocab()
    (long,) = enc.encode([" ".join(["fine"] * 50)])
    assert len(long) == enc.max_len == 6


def test_empty_text_is_rejected_naming_the_row() -> None:
    with pytest.raises(DataError, match=r"request: text at row 1 is empty \(no tokens\)"):
        tokenizer().encode(["fine", "   "], where="request")


def test_wordpiece_splits_unseen_words_into_known_pieces() -> None:
    enc = tokenizer(kind="wordpiece", vocab_size=60)
    (ids,) = enc.encode(["films"])
    assert UNK_ID not in ids.tolist()


def test_word_vectors_fill_known_words_and_check_the_dimension(tmp_path: Path) -> None:
    vocab = tokenizer().tokenizer.get_vocab()
    glove = tmp_path / "glove.txt"
    glove.write_text("fine 1 2 3\nzebra 4 5 6\n")
    weights, found = load_word_vectors(glove, vocab, 3)
    assert found == 1 and weights.shape == (len(vocab), 3)
    np.testing.assert_array_equal(weights[vocab["fine"]], [1, 2, 3])
    np.testing.assert_array_equal(weights[PAD_ID], [0, 0, 0])
    word2vec = tmp_path / "w2v.txt"
    word2vec.write_text("2 3\nfilm 7 8 9\nplot 1 1 1\n")
    weights, found = load_word_vectors(word2vec, vocab, 3)
    assert found == 2
    np.testing.assert_array_equal(weights[vocab["film"]], [7, 8, 9])
    with pytest.raises(DataError, match=r"line 1 has 3 values; model.embedding_dim is 4"):
        load_word_vectors(glove, vocab, 4)
