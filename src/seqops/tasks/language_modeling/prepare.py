"""prepare for a language model: a folder of `.txt` documents → encoded streams and blocks.

    prepared = prepare_corpus(cfg.data, cfg.seed)

Documents are split whole (`data.val_documents` / `data.test_documents` by name, else
`data.val_fraction` / `data.test_fraction` of them, seeded: `corpus`); the vocabulary
(`data.units`, `data.vocab_size`) is built from the training documents only (`vocab`).
Writes, beside the shared `<split>.npz` (each document cut into blocks of `data.block_tokens`
token ids, one next-token label per step, the last step of a document unlabelled), each
split's whole documents (`<split>.streams.npz`: what stateful training and evaluation read),
each split's blocks as raw text (`<split>.blocks.json`: what the release serves) and the
vocabulary (`lm_vocab.json`, carried by the bundle).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np

from seqops.config import DataConfig
from seqops.data.sequences import IGNORE_INDEX, SequenceSet
from seqops.errors import DataError
from seqops.layout import SPLITS
from seqops.tasks.base import Prepared, longest_sequence
from seqops.tasks.language_modeling.corpus import Corpus, Document
from seqops.tasks.language_modeling.meta import (
    VOCAB_FILE,
    LanguageModelMeta,
    LanguageModelMetrics,
    LanguageModelReport,
    blocks_file,
    streams_file,
)
from seqops.tasks.language_modeling.streams import block_spans, save_streams
from seqops.tasks.language_modeling.task import LanguageModeling
from seqops.tasks.language_modeling.vocab import UNK_ID, WORD_PATTERN, TokenVocabulary, Unit
from seqops.tasks.parts.prepare import PrepareTask


def token_offsets(text: str, unit: Unit) -> tuple[np.ndarray, np.ndarray]:
    """Each token's start and end character in `text` (what `vocab.tokenize` cuts)."""
    if unit == "char":
        starts = np.arange(len(text), dtype=np.int64)
        return starts, starts + 1
    spans = [m.span() for m in WORD_PATTERN.finditer(text)]
    found = np.array(spans, dtype=np.int64).reshape(-1, 2)
    return found[:, 0], found[:, 1]


def document_blocks(
    doc: Document, ids: np.ndarray, unit: Unit, block_tokens: int
) -> tuple[list[np.ndarray], list[np.ndarray], list[dict[str, str]]]:
    """A document's blocks: token ids, next-token labels (`IGNORE_INDEX` after the last token)
    and raw text (the characters from its first token's start to its last token's end)."""
    starts, ends = token_offsets(doc.text, unit)
    labels = np.append(ids[1:], IGNORE_INDEX).astype(np.int64)
    sequences, tags, texts = [], [], []
    for a, b in block_spans(len(ids), block_tokens):
        sequences.append(ids[a:b])
        tags.append(labels[a:b])
        texts.append({"document": doc.name, "text": doc.text[int(starts[a]) : int(ends[b - 1])]})
    return sequences, tags, texts


def _write_json(data: object, path: Path) -> None:
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")


def prepare_corpus(data: DataConfig, seed: int) -> Prepared:
    assert data.path is not None  # check_data
    corpus = Corpus.read(Path(data.path))
    splits = corpus.split(
        val=data.val_documents if data.val_documents is not None else data.val_fraction,
        test=data.test_documents if data.test_documents is not None else data.test_fraction,
        seed=seed,
    )
    unit: Unit = data.units
    vocab = TokenVocabulary.build(
        [d.text for d in splits.train], unit, data.vocab_size if unit == "word" else None
    )
    sets: dict[str, SequenceSet] = {}
    files: dict[str, Callable[[Path], None]] = {VOCAB_FILE: vocab.save}
    n_tokens, names, unknown = {}, {}, 0
    for split, documents in splits.items():
        encoded = [vocab.encode(d.text) for d in documents]
        for doc, ids in zip(documents, encoded, strict=True):
            if len(ids) < 2:
                raise DataError(
                    f"{data.path}/{doc.name}.txt: {len(ids)} {unit} token(s); a document needs "
                    "two or more (nothing to predict)"
                )
        sequences, tags, texts = [], [], []
        for doc, ids in zip(documents, encoded, strict=True):
            s, t, x = document_blocks(doc, ids, unit, data.block_tokens)
            sequences += s
            tags += t
            texts += x
        sets[split] = SequenceSet.with_step_labels(sequences, tags)
        names[split] = [d.name for d in documents]
        n_tokens[split] = int(sum(len(ids) for ids in encoded))
        if split == "test":
            unknown = int(sum(int((ids == UNK_ID).sum()) for ids in encoded))
        files[streams_file(split)] = partial(_save, names[split], encoded)
        files[blocks_file(split)] = partial(_write_json, texts)
    assert list(sets) == list(SPLITS)
    meta = LanguageModelMeta(
        feature_names=[],
        label_names=list(vocab.tokens),
        n_outputs=len(vocab),
        max_train_length=longest_sequence(sets),
        units=unit,
        vocab_size=len(vocab),
        block_tokens=data.block_tokens,
    )
    report = {
        "units": unit,
        "vocab_size": len(vocab),
        "n_documents": {split: len(n) for split, n in names.items()},
        "n_tokens": n_tokens,
        "documents": names,
        "test_unknown_rate": unknown / max(n_tokens["test"], 1),
    }
    return Prepared(sets, meta, str(data.path), report, files)


def _save(names: list[str], ids: list[np.ndarray], path: Path) -> None:
    save_streams(path, names, ids)


class LanguageModelingPrepare(
    PrepareTask[LanguageModelMeta, LanguageModelReport, LanguageModelMetrics], LanguageModeling
):
    def prepare(self, data: DataConfig, seed: int) -> Prepared:
        return prepare_corpus(data, seed)

    def summary(self, report: LanguageModelReport) -> str:
        docs, tokens = report.n_documents, report.n_tokens
        return (
            f"prepare: {docs['train']} train / {docs['val']} val / {docs['test']} test documents "
            f"({tokens['train']:,} / {tokens['val']:,} / {tokens['test']:,} {report.units} "
            f"tokens), vocabulary {report.vocab_size:,}, test [UNK] "
            f"{report.test_unknown_rate:.2%}, from {report.source}"
        )
