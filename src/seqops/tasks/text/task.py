"""`text_classification`'s seam (name, metadata, report) and what prepare and train run of it
(see the package's docstring).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
from pydantic import Field

from seqops.contracts import DataMeta, FileName
from seqops.errors import DataError
from seqops.layout import SPLITS
from seqops.tasks.base import Prepared, longest_sequence
from seqops.tasks.classifier.task import (
    ClassifierTask,
    ClassReport,
    class_report,
    encode_labels,
)

if TYPE_CHECKING:
    from torch import nn

    from seqops.config import DataConfig, ModelConfig

#: Logistic regression's inverse penalties, the one scoring best on validation is kept.


def texts_file(split: str) -> str:
    """A split's raw texts, in the order of its token ids."""
    return f"{split}.texts.json"


#: The raw test texts, in the order of the test split (what the release scores).
TEST_TEXTS_FILE = texts_file("test")
TOKENIZER_FILE = "tokenizer.json"


def write_texts(texts: list[str], path: Path) -> None:
    path.write_text(json.dumps(texts, ensure_ascii=False))


class TextMeta(DataMeta):
    classifier: ClassVar[bool] = True

    task: Literal["text_classification"] = "text_classification"
    input: Literal["tokens"] = "tokens"
    tokenizer: FileName = TOKENIZER_FILE
    vocab_size: int = Field(ge=3)
    max_len: int = Field(ge=1)
    text_column: str


class TextReport(ClassReport):
    task: Literal["text_classification"] = "text_classification"
    vocab_size: int
    test_unknown_token_rate: float
    """Share of the test split's tokens the training vocabulary does not hold (`[UNK]`)."""

    def task_numbers(self) -> dict[str, Any]:
        return {
            **super().task_numbers(),
            "vocab_size": self.vocab_size,
            "test_unknown_token_rate": self.test_unknown_token_rate,
        }


class TextClassification(ClassifierTask[TextMeta, TextReport]):
    """The seam, with what prepare and train run."""

    name = "text_classification"
    meta_type = TextMeta
    data_report_type = TextReport
    reads = (
        "data.tokenizer.",
        "data.text_column",
        "data.val_path",
        "data.test_path",
        "model.embedding_dim",
        "model.embeddings_path",
        "model.freeze_embeddings",
        "model.ngram_buckets",
    )
    ignored = (
        "data.dataset",
        "data.time_column",
        "data.feature_columns",
        "train.noise_std",
    )

    def check_data(self, data: DataConfig) -> None:
        if data.path is None:
            raise ValueError("data.task=text_classification reads data.path; set dataset: null")

    def prepare(self, data: DataConfig, seed: int) -> Prepared:
        from seqops.data.sequences import SequenceSet
        from seqops.data.splits import check_class_sizes, stratified_split
        from seqops.data.text import TextEncoder, read_labelled_text, tokenizer_from_config

        assert data.path is not None
        texts, labels = read_labelled_text(data.path, data.text_column, data.label_column)
        names = sorted(set(labels))
        if len(names) < 2:
            raise DataError(
                f"{data.path}: {data.label_column!r} has one class ({names}); need at least 2"
            )
        parts: dict[str, tuple[list[str], np.ndarray]] = {}
        rest = (texts, encode_labels(labels, names, str(data.path)))
        carved = ["train"] + [
            split
            for split, path in (("validation", data.val_path), ("test", data.test_path))
            if path is None
        ]
        check_class_sizes(rest[1], names, carved, str(data.path))
        for split, path, fraction in (
            ("test", data.test_path, data.test_fraction),
            ("val", data.val_path, data.val_fraction),
        ):
            if path is not None:
                t, raw = read_labelled_text(path, data.text_column, data.label_column)
                parts[split] = (t, encode_labels(raw, names, str(path)))
            else:
                what = "validation" if split == "val" else split
                keep, held = stratified_split(rest[1], fraction, seed, names=names, what=what)
                parts[split] = ([rest[0][i] for i in held], rest[1][held])
                rest = ([rest[0][i] for i in keep], rest[1][keep])
        parts["train"] = rest
        tokenizer = tokenizer_from_config(parts["train"][0], data.tokenizer)
        encoder = TextEncoder(tokenizer)
        splits = {
            name: SequenceSet(encoder.encode(parts[name][0], where=f"{name} split"), parts[name][1])
            for name in SPLITS
        }
        meta = TextMeta(
            feature_names=[],
            label_names=names,
            n_outputs=len(names),
            max_train_length=longest_sequence(splits),
            vocab_size=encoder.vocab_size,
            max_len=encoder.max_len,
            text_column=data.text_column,
        )
        unknown = sum(int((s == 1).sum()) for s in splits["test"].sequences)
        total = sum(len(s) for s in splits["test"].sequences)
        report = {
            "vocab_size": encoder.vocab_size,
            "test_unknown_token_rate": unknown / total,
            **class_report(splits, names),
        }
        files: dict[str, Callable[[Path], None]] = {
            TOKENIZER_FILE: lambda path: tokenizer.save(str(path))
        }
        for split in SPLITS:
            files[texts_file(split)] = partial(write_texts, parts[split][0])
        return Prepared(splits, meta, str(data.path), report, files)

    def summary(self, report: TextReport) -> str:
        return (
            f"prepare: {report.n_train} train / {report.n_val} val / {report.n_test} test "
            f"sequences, {report.vocab_size} tokens, {report.n_classes} classes "
            f"from {report.source}"
        )

    def network_args(self, meta: TextMeta, processed: Path, model: ModelConfig) -> dict[str, Any]:
        return {
            "vocab_size": meta.vocab_size,
            "embedding_dim": model.embedding_dim,
            "ngram_buckets": model.ngram_buckets,
        }

    def init_model(
        self, net: nn.Module, meta: TextMeta, processed: Path, model: ModelConfig
    ) -> None:
        if model.ngram_buckets:
            fit_text_ngrams(net, processed)
        if model.embeddings_path is None:
            return
        import torch
        from tokenizers import Tokenizer

        from seqops.data.text import load_word_vectors

        vocab = Tokenizer.from_file(str(processed / meta.tokenizer)).get_vocab()
        weights, _ = load_word_vectors(model.embeddings_path, vocab, model.embedding_dim)
        embedding = net.embedding
        assert isinstance(embedding, torch.nn.Embedding)
        embedding.weight.data.copy_(torch.from_numpy(weights))
        embedding.weight.requires_grad_(not model.freeze_embeddings)


def fit_text_ngrams(net: nn.Module, processed: Path) -> None:
    """Fit a text network's n-gram path (`seqops.model.ngrams`) on the prepared training
    split, its penalty chosen on the validation split."""
    from seqops.data.sequences import SequenceSet
    from seqops.layout import split_file
    from seqops.model.ngrams import fit_ngram_path

    ngrams = getattr(net, "ngrams", None)
    if ngrams is None:
        raise ValueError("model.ngram_buckets is set but the network has no n-gram path")
    train = SequenceSet.load(processed / split_file("train"))
    val = SequenceSet.load(processed / split_file("val"))
    c = fit_ngram_path(
        ngrams, train.sequences, np.asarray(train.labels), val.sequences, np.asarray(val.labels)
    )
    print(f"train: n-gram path fitted by logistic regression (C={c:g}, on validation log-loss)")
