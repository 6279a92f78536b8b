"""`sequence_classification`'s export and serving part: long-format request rows in."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from seqops.contracts import Bundle
from seqops.layout import split_file
from seqops.tasks.classification.task import (
    ClassificationMeta,
    ClassificationReport,
    SequenceClassification,
)
from seqops.tasks.classifier.serve import ClassifierCodec, ClassifierServe
from seqops.tasks.long_format import example_frame
from seqops.tasks.parts.serve import Codec

if TYPE_CHECKING:
    from mlflow.models import ModelSignature


class SequenceCodec(ClassifierCodec[ClassificationMeta]):
    """Long-format rows (id, time, every feature) → standardised `(T, F)` sequences.

    Id and time accept any type (string or integer ids, integer or float or timestamp steps);
    features must be doubles, so the scoring server rejects text with a 400 before predict."""

    def __init__(self, bundle: Bundle[ClassificationMeta]) -> None:
        super().__init__(bundle)
        scaler = bundle.data.scaler
        self.mean = np.asarray(scaler.mean, dtype=np.float64)
        self.std = np.asarray(scaler.std, dtype=np.float64)

    def inputs(self, frame: pd.DataFrame, where: str) -> tuple[list[Any], list[np.ndarray]]:
        from seqops.serving import long_format_sequences

        return long_format_sequences(frame, self.bundle, self.mean, self.std, where)

    def signature(self) -> ModelSignature:
        from mlflow.models import ModelSignature
        from mlflow.types.schema import AnyType, ColSpec, DataType, Schema

        b = self.bundle
        inputs: list[Any] = [ColSpec(AnyType(), b.id_column), ColSpec(AnyType(), b.time_column)]
        inputs += [ColSpec(DataType.double, name) for name in b.data.feature_names]
        return ModelSignature(Schema(inputs), Schema(self.output_columns()))


class SequenceClassificationServe(
    ClassifierServe[ClassificationMeta, ClassificationReport], SequenceClassification
):
    def request_example(
        self, processed: Path, bundle: Bundle[ClassificationMeta], n: int
    ) -> pd.DataFrame:
        from seqops.data.sequences import SequenceSet

        return example_frame(SequenceSet.load(processed / split_file("test")), bundle, n)

    def codec(
        self, bundle: Bundle[ClassificationMeta], files: dict[str, Path]
    ) -> Codec[ClassificationMeta]:
        return SequenceCodec(bundle)
