"""`text_classification`'s prepare part: labelled text → stratified splits (unless given),
token ids from a tokenizer fitted on the training split, the raw texts of each split."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from seqops.contracts import MetricsReport
from seqops.errors import DataError
from seqops.layout import SPLITS
from seqops.tasks.base import Prepared, longest_sequence
from seqops.tasks.classifier.prepare import class_report, encode_labels
from seqops.tasks.parts.prepare import PrepareTask
from seqops.tasks.text.task import (
    TOKENIZER_FILE,
    TextClassification,
    TextMeta,
    TextReport,
    texts_file,
)

if TYPE_CHECKING:
    from seqops.config import DataConfig


def write_texts(texts: list[str], path: Path) -> None:
    path.write_text(json.dumps(texts, ensure_ascii=False))


class TextClassificationPrepare(
    PrepareTask[TextMeta, TextReport, MetricsReport], TextClassification
):
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
