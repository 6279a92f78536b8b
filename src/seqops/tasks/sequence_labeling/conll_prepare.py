"""prepare for text tagging: three CoNLL files → token ids, per-token tags and the vocabulary.

    prepared = prepare_conll(cfg.data)   # a `Prepared` for `stages.prepare.write`

`data.path`, `data.val_path` and `data.test_path` are the train, validation and test CoNLL
files (`conll.read_conll`; the splits are kept as given). The word and character vocabularies
are built from the training split only (`vocab.Vocabulary`, settings `data.labeling`); tag
names are the training split's tags as read (`O` first, then sorted), and a tag that only
validation or test holds is refused, naming the file. Each split is stored with one tag per
token (`SequenceSet.with_step_labels`), beside `vocab.json` (carried by the bundle) and the
raw sentences of each split (`<split>.sentences.json`: the CRF baseline fits and is scored on
them, the release scores served models on the test ones).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from seqops.errors import DataError
from seqops.tasks.base import Prepared
from seqops.tasks.sequence_labeling.conll import Sentence, entities, read_conll
from seqops.tasks.sequence_labeling.meta import VOCAB_FILE, TextLabelingMeta
from seqops.tasks.sequence_labeling.vocab import Vocabulary

if TYPE_CHECKING:
    from seqops.config import DataConfig
    from seqops.data.sequences import SequenceSet

SPLITS = ("train", "val", "test")


def sentences_file(split: str) -> str:
    """A split's raw sentences (tokens and gold tags), in the order of its token ids."""
    return f"{split}.sentences.json"


def write_sentences(sentences: Sequence[Sentence], path: Path) -> None:
    rows = [{"tokens": list(s.tokens), "tags": list(s.tags)} for s in sentences]
    path.write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")


def read_sentences(processed: Path, split: str) -> list[Sentence]:
    """The raw sentences prepare wrote for `split`."""
    path = processed / sentences_file(split)
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))
        return [Sentence(tuple(r["tokens"]), tuple(r["tags"])) for r in rows]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataError(
            f"{path}: not the sentences prepare writes ({exc}); re-run prepare"
        ) from None


def tag_names(train: Sequence[Sentence]) -> list[str]:
    """The training split's tags: `O` first (the confusion matrix reads better), then sorted."""
    seen = {tag for s in train for tag in s.tags}
    return sorted(seen, key=lambda tag: (tag != "O", tag))


def encode(
    sentences: Sequence[Sentence], vocab: Vocabulary, names: list[str], where: Path
) -> SequenceSet:
    """Packed token ids and tag indices of `sentences`; an unknown tag names the file."""
    from seqops.data.sequences import SequenceSet

    index = {name: i for i, name in enumerate(names)}
    unknown = sorted({t for s in sentences for t in s.tags} - set(index))
    if unknown:
        raise DataError(f"{where}: tag(s) {unknown} never appear in the training split")
    return SequenceSet.with_step_labels(
        [vocab.encode(s.tokens) for s in sentences],
        [np.array([index[t] for t in s.tags], dtype=np.int64) for s in sentences],
    )


def describe(
    parts: dict[str, list[Sentence]], splits: dict[str, SequenceSet], vocab: Vocabulary
) -> dict[str, Any]:
    """The task's fields of `reports/data.json`: tags, entities and tokens per split, the
    vocabularies' sizes and the share of test tokens whose word is `[UNK]`."""
    test_words = np.concatenate([s[:, 0] for s in splits["test"].sequences])
    return {
        "n_classes": len({t for s in parts["train"] for t in s.tags}),
        "vocab_size": len(vocab.words),
        "char_vocab_size": len(vocab.chars),
        "test_unknown_token_rate": float(np.mean(test_words == 1)),
        "n_tokens": {split: sum(len(s.tokens) for s in parts[split]) for split in SPLITS},
        "tag_counts": {
            split: dict(sorted(Counter(t for s in parts[split] for t in s.tags).items()))
            for split in SPLITS
        },
        "entity_counts": {
            split: dict(
                sorted(
                    Counter(span.type for s in parts[split] for span in entities(s.tags)).items()
                )
            )
            for split in SPLITS
        },
    }


def prepare_conll(data: DataConfig) -> Prepared:
    """Read, encode and describe the three CoNLL splits (see the module docstring)."""
    assert data.path is not None and data.val_path is not None and data.test_path is not None
    paths = {"train": data.path, "val": data.val_path, "test": data.test_path}
    parts = {split: read_conll(path) for split, path in paths.items()}
    names = tag_names(parts["train"])
    if len(names) < 2:
        raise DataError(f"{data.path}: every token is tagged {names}; need at least 2 tags")
    settings = data.labeling
    vocab = Vocabulary.build(
        (s.tokens for s in parts["train"]),
        lowercase=settings.lowercase,
        min_frequency=settings.min_frequency,
        max_word_length=settings.max_word_length,
    )
    splits = {split: encode(parts[split], vocab, names, paths[split]) for split in SPLITS}
    meta = TextLabelingMeta(
        feature_names=["word", *(f"char_{i}" for i in range(1, vocab.width))],
        label_names=names,
        n_outputs=len(names),
        max_train_length=int(max(s.lengths.max() for s in splits.values())),
        vocab=VOCAB_FILE,
        vocab_size=len(vocab.words),
        char_vocab_size=len(vocab.chars),
        max_word_length=vocab.max_word_length,
    )
    files: dict[str, Callable[[Path], None]] = {VOCAB_FILE: vocab.save}
    for split in SPLITS:
        files[sentences_file(split)] = partial(write_sentences, parts[split])
    report = {"input": meta.input, **describe(parts, splits, vocab)}
    return Prepared(splits, meta, str(data.path), report, files)
