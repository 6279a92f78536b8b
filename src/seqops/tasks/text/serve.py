"""`text_classification`'s export and serving part: one row per raw text in, through
`tokenizer.json`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from seqops import onnx_contract as contract
from seqops.contracts import Bundle
from seqops.errors import DataError, ExportError
from seqops.layout import split_file
from seqops.tasks.classifier.serve import ClassifierCodec, ClassifierServe
from seqops.tasks.parts.serve import Codec
from seqops.tasks.text.task import (
    TEST_TEXTS_FILE,
    TextClassification,
    TextMeta,
    TextReport,
)

if TYPE_CHECKING:
    from mlflow.models import ModelSignature

    from seqops.model.network import SequenceNet
    from seqops.serving import Predictor

#: Logistic regression's inverse penalties, the one scoring best on validation is kept.
TFIDF_CS = (0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0)


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


class TextClassificationServe(ClassifierServe[TextMeta, TextReport], TextClassification):
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
