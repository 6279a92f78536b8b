"""Language-modeling data: a folder of documents splits by whole document (named or by a
seeded fraction), bad folders, documents and names are refused naming them, the vocabularies
round-trip through JSON, and bits per character / perplexity follow from summed nats."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from seqops.errors import DataError
from seqops.tasks.language_modeling.corpus import Corpus
from seqops.tasks.language_modeling.metrics import bits_per_token, perplexity, unit_metrics
from seqops.tasks.language_modeling.vocab import PAD_ID, UNK_ID, TokenVocabulary


def _folder(tmp_path: Path, docs: dict[str, str]) -> Path:
    for name, text in docs.items():
        (tmp_path / f"{name}.txt").write_text(text, encoding="utf-8")
    return tmp_path


@pytest.fixture
def corpus(tmp_path: Path) -> Corpus:
    docs = {f"doc{i}": f"text of document {i}\n" * (i + 1) for i in range(10)}
    return Corpus.read(_folder(tmp_path, docs))


def test_named_split_takes_whole_documents(corpus: Corpus) -> None:
    splits = corpus.split(val=["doc3"], test=["doc7", "doc1"])
    assert [d.name for d in splits.val] == ["doc3"]
    assert [d.name for d in splits.test] == ["doc1", "doc7"]
    assert [d.name for d in splits.train] == [
        "doc0",
        "doc2",
        "doc4",
        "doc5",
        "doc6",
        "doc8",
        "doc9",
    ]
    texts = {d.name: d.text for d in corpus.documents}
    assert all(d.text == texts[d.name] for _, docs in splits.items() for d in docs)


def test_fraction_split_is_seeded_and_disjoint(corpus: Corpus) -> None:
    a = corpus.split(val=0.2, test=0.2, seed=3)
    assert a == corpus.split(val=0.2, test=0.2, seed=3)
    names = [{d.name for d in docs} for _, docs in a.items()]
    assert [len(n) for n in names] == [6, 2, 2]
    assert set().union(*names) == set(corpus.names)
    assert sum(len(n) for n in names) == len(corpus.names)
    other = [corpus.split(val=0.2, test=0.2, seed=s).test for s in range(5)]
    assert len({tuple(d.name for d in t) for t in other}) > 1


def test_missing_folder_and_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such folder"):
        Corpus.read(tmp_path / "nowhere")
    with pytest.raises(DataError, match=r"no \*\.txt files"):
        Corpus.read(tmp_path)


def test_empty_document_is_named(tmp_path: Path) -> None:
    folder = _folder(tmp_path, {"good": "some text", "blank": "  \n\n "})
    with pytest.raises(DataError, match=r"blank\.txt: empty document"):
        Corpus.read(folder)


def test_not_utf8_is_named(tmp_path: Path) -> None:
    (tmp_path / "latin.txt").write_bytes("café".encode("latin-1"))
    with pytest.raises(DataError, match=r"latin\.txt: not UTF-8"):
        Corpus.read(tmp_path)


def test_unknown_name_overlap_and_empty_splits(corpus: Corpus) -> None:
    with pytest.raises(DataError, match="no document named 'hamlet' for test"):
        corpus.split(val=["doc1"], test=["hamlet"])
    with pytest.raises(DataError, match="both validation and test: doc2"):
        corpus.split(val=["doc1", "doc2"], test=["doc2"])
    with pytest.raises(DataError, match="the val split has no documents"):
        corpus.split(val=[], test=["doc2"])
    with pytest.raises(DataError, match="the train split has no documents"):
        corpus.split(val=[f"doc{i}" for i in range(5)], test=[f"doc{i}" for i in range(5, 10)])
    with pytest.raises(DataError, match="fraction must be in"):
        corpus.split(val=1.5, test=["doc2"])
    with pytest.raises(DataError, match="named twice: doc4"):
        corpus.split(val=["doc4", "doc4"], test=["doc2"])
    with pytest.raises(DataError, match="list of names"):
        corpus.split(val="doc4", test=["doc2"])


def test_char_vocabulary_from_training_text(tmp_path: Path) -> None:
    vocab = TokenVocabulary.build(["abba", "cab"])
    assert vocab.tokens == ("[PAD]", "[UNK]", "a", "b", "c")  # by frequency, then character
    ids = vocab.encode("abz")
    assert ids.dtype == np.int64 and ids.tolist() == [2, 3, UNK_ID]
    assert vocab.decode([PAD_ID, 2, 4]) == "ac"
    vocab.save(tmp_path / "vocab.json")
    assert TokenVocabulary.load(tmp_path / "vocab.json") == vocab


def test_word_vocabulary_keeps_the_most_frequent(tmp_path: Path) -> None:
    vocab = TokenVocabulary.build(["To be, or not to be.", "be it so"], unit="word", max_size=5)
    assert vocab.tokens == ("[PAD]", "[UNK]", "be", ",", ".")
    assert vocab.encode("be it, so").tolist() == [2, UNK_ID, 3, UNK_ID]
    assert vocab.decode(vocab.encode("be , .")) == "be , ."
    vocab.save(tmp_path / "words.json")
    assert TokenVocabulary.load(tmp_path / "words.json") == vocab
    (tmp_path / "bad.json").write_text('{"unit": "word"}')
    with pytest.raises(DataError, match=r"bad\.json: not a language-model vocabulary"):
        TokenVocabulary.load(tmp_path / "bad.json")


def test_bits_per_char_and_perplexity() -> None:
    # Uniform over 4 symbols: 2 bits per token, perplexity 4.
    nll = 1000 * math.log(4)
    assert bits_per_token(nll, 1000) == pytest.approx(2.0)
    assert perplexity(nll, 1000) == pytest.approx(4.0)
    assert unit_metrics("char", nll, 1000) == {"bits_per_char": pytest.approx(2.0)}
    assert unit_metrics("word", nll, 1000) == {"perplexity": pytest.approx(4.0)}
    assert perplexity(nll, 1000) == pytest.approx(2 ** bits_per_token(nll, 1000))
    with pytest.raises(ValueError, match="no scored tokens"):
        bits_per_token(1.0, 0)
