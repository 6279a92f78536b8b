"""`text_classification`: raw text → one class, over token ids from a fitted tokenizer.

Data: labelled text (`data.path`, optional `data.val_path` / `data.test_path`; CSV, TSV,
Parquet or `<label> <text>` lines). The tokenizer (`tokenizers` library) is fitted on the
training split only; prepare stores token ids, `tokenizer.json` and the raw texts of each split
(`<split>.texts.json`: the test texts are what the release scores both registered models on,
the training and validation texts what the classical baseline is fitted and tuned on). The
network reads token ids through an embedding (optionally pretrained vectors,
`model.embeddings_path`). Evaluation, the McNemar scorer and the card's metrics are
every classifier's (`seqops.tasks.classifier`); the baseline beside the model is TF-IDF over
word 1-2 grams with logistic regression, its C picked on the validation split
(`tfidf_baseline`).

Serving takes one row per text with the text column (default `text`) and optionally the id
column (echoed back; row numbers when absent); a `.txt` request file is one text per line.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
import pandas as pd
from pydantic import Field

from seqops import onnx_contract as contract
from seqops.contracts import Bundle, DataMeta, FileName
from seqops.errors import DataError, ExportError
from seqops.layout import SPLITS, split_file
from seqops.tasks.base import Codec, Prepared, longest_sequence
from seqops.tasks.classifier import (
    ClassifierCodec,
    ClassifierTask,
    ClassReport,
    class_report,
    encode_labels,
)

if TYPE_CHECKING:
    from mlflow.models import ModelSignature
    from torch import nn

    from seqops.config import DataConfig, ModelConfig
    from seqops.model.network import SequenceNet
    from seqops.serving import Predictor

#: Logistic regression's inverse penalties, the one scoring best on validation is kept.
TFIDF_CS = (0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0)


def texts_file(split: str) -> str:
    """A split's raw texts, in the order of its token ids."""
    return f"{split}.texts.json"


#: The raw test texts, in the order of the test split (what the release scores).
TEST_TEXTS_FILE = texts_file("test")
TOKENIZER_FILE = "tokenizer.json"


def write_texts(texts: list[str], path: Path) -> None:
    path.write_text(json.dumps(texts, ensure_ascii=False))


def tfidf_baseline(
    train: tuple[list[str], np.ndarray],
    val: tuple[list[str], np.ndarray],
    test: list[str],
) -> np.ndarray:
    """Test class indices of TF-IDF (word 1-2 grams, sublinear tf, fitted on the training
    texts) + logistic regression, with C the best validation accuracy in `TFIDF_CS` (the
    smallest on a tie), refitted on the training split only: the classical text baseline."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True).fit(train[0])
    x_train, x_val = vectorizer.transform(train[0]), vectorizer.transform(val[0])
    best: tuple[float, LogisticRegression] | None = None
    for c in TFIDF_CS:
        model = LogisticRegression(C=c, max_iter=1000).fit(x_train, train[1])
        accuracy = float(np.mean(model.predict(x_val) == val[1]))
        if best is None or accuracy > best[0]:
            best = (accuracy, model)
    assert best is not None
    return np.asarray(best[1].predict(vectorizer.transform(test)), dtype=np.int64)


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


class TextCodec(ClassifierCodec[TextMeta]):
    """One row per text → token ids through the bundle's tokenizer (exactly as in training:
    normalised, lower-cased, unseen words `[UNK]`, truncated to `max_len` tokens); an empty
    text is refused naming its row."""

    def __init__(self, bundle: Bundle[TextMeta], tokenizer: Path) -> None:
        from seqops.data.text import TextEncoder

        super().__init__(bundle)
        self.text_column = bundle.data.text_column
        self.encoder = TextEncoder.load(tokenizer)

    def read(self, path: Path) -> pd.DataFrame:
        from seqops.serving import read_input

        return read_input(path, self.text_column)

    def inputs(self, frame: pd.DataFrame, where: str) -> tuple[list[Any], list[np.ndarray]]:
        from seqops.data.text import text_cell

        if frame.empty:
            raise DataError(f"{where}: no rows (expected one row per text)")
        if self.text_column not in frame.columns:
            raise DataError(
                f"{where}: missing column {self.text_column!r} (the text to classify); "
                f"found {[str(c) for c in frame.columns]}"
            )
        texts = [
            text_cell(v, where, self.text_column, row)
            for row, v in enumerate(frame[self.text_column])
        ]
        id_column = self.bundle.id_column
        ids = frame[id_column].tolist() if id_column in frame.columns else list(range(len(frame)))
        ids = [i.item() if isinstance(i, np.generic) else i for i in ids]
        return ids, self.encoder.encode(texts, where)

    def signature(self) -> ModelSignature:
        from mlflow.models import ModelSignature
        from mlflow.types.schema import AnyType, ColSpec, DataType, Schema

        inputs: list[Any] = [
            ColSpec(DataType.string, self.text_column),
            ColSpec(AnyType(), self.bundle.id_column, required=False),
        ]
        return ModelSignature(Schema(inputs), Schema(self.output_columns()))


def text_frame(texts: list[str], id_column: str, text_column: str, n: int | None = None):
    """The first `n` raw texts as a request frame (ids `seq<i>`, the text column)."""
    chosen = texts if n is None else texts[:n]
    return pd.DataFrame({id_column: [f"seq{i}" for i in range(len(chosen))], text_column: chosen})


class TextClassification(ClassifierTask[TextMeta, TextReport]):
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

    def baselines(self, processed: Path) -> dict[str, np.ndarray]:
        from seqops.data.sequences import SequenceSet

        def split(name: str) -> tuple[list[str], np.ndarray]:
            texts = json.loads((processed / texts_file(name)).read_text())
            return texts, SequenceSet.load(processed / split_file(name)).labels

        train, val, test = split("train"), split("val"), split("test")
        return {"tfidf_lr": tfidf_baseline(train, val, test[0])}

    def network_args(self, meta: TextMeta, processed: Path, model: ModelConfig) -> dict[str, Any]:
        return {"vocab_size": meta.vocab_size, "embedding_dim": model.embedding_dim}

    def init_model(
        self, net: nn.Module, meta: TextMeta, processed: Path, model: ModelConfig
    ) -> None:
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

    def served_checks(
        self,
        system: SequenceNet,
        predictor: Predictor,
        processed: Path,
        tolerance: contract.Tolerance,
    ) -> dict[str, float]:
        """The raw test texts through `tokenizer.json` and ONNX must match the prepared token
        ids' probabilities, or the served model is not the evaluated one."""
        from seqops.data.sequences import SequenceSet

        codec = predictor.codec
        assert isinstance(codec, TextCodec)
        test = SequenceSet.load(processed / split_file("test"))
        texts = json.loads((processed / TEST_TEXTS_FILE).read_text())
        requests = text_frame(texts, codec.bundle.id_column, codec.text_column)
        served = predictor.predict_frame(requests, where="test texts")
        prepared = codec.predict_proba(test.sequences, predictor.run)
        gap = float(np.abs(served[codec.probability_columns].to_numpy() - prepared).max())
        if gap > 1e-6:
            raise ExportError(
                f"raw test texts served through tokenizer.json give probabilities up to {gap:.3g} "
                "away from the prepared token ids': tokenizer.json does not match"
            )
        return {"raw_text_max_abs_diff": gap}

    def request_example(self, processed: Path, bundle: Bundle[TextMeta], n: int) -> pd.DataFrame:
        texts = json.loads((processed / TEST_TEXTS_FILE).read_text())
        return text_frame(texts, bundle.id_column, bundle.data.text_column, n)

    def bundle_files(self, meta: TextMeta) -> list[str]:
        return [meta.tokenizer]

    def codec(self, bundle: Bundle[TextMeta], files: dict[str, Path]) -> Codec[TextMeta]:
        return TextCodec(bundle, files[bundle.data.tokenizer])

    def card_inputs(self, report: TextReport) -> str:
        return f"{report.vocab_size:,}-token vocabulary"

    def card_use(self, report: TextReport) -> str:
        return (
            f"Classifies texts like those of `{report.source}` into one of {report.n_classes} "
            "classes. Raw text goes through `tokenizer.json` (fitted on the training split; "
            "unseen words become `[UNK]`, texts are truncated to the tokenizer's `max_len`). "
            "The test set is finite, so read the intervals above; the model has not been "
            "checked for distribution shift or adversarial input. Use the probabilities with "
            "care: see the calibration error above."
        )
