"""A classifier's export and serving part: the codec's answer columns (id, `label`,
`p_<class>`), argmax agreement for parity and test accuracy as the served quality."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from seqops.contracts import Bundle, MetaT, MetricsReport
from seqops.layout import split_file
from seqops.tasks.classifier.task import ClassReportT
from seqops.tasks.parts.serve import Codec, Quality, RunModel, ServeTask

if TYPE_CHECKING:
    from seqops.serving import Predictor


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=-1, keepdims=True)


class ClassifierCodec(Codec[MetaT]):
    """Rows → model inputs (the subclass says how), logits → id, `label`, `p_<class>`."""

    def __init__(self, bundle: Bundle[MetaT]) -> None:
        self.bundle = bundle
        self.label_names = bundle.data.label_names

    @property
    def probability_columns(self) -> list[str]:
        return [f"p_{name}" for name in self.label_names]

    def inputs(self, frame: pd.DataFrame, where: str) -> tuple[list[Any], list[np.ndarray]]:
        raise NotImplementedError

    def predict_proba(self, sequences: list[np.ndarray], run: RunModel) -> np.ndarray:
        from seqops.serving import run_batches

        return softmax(run_batches(sequences, run))

    def predict_frame(self, frame: pd.DataFrame, run: RunModel, where: str) -> pd.DataFrame:
        ids, sequences = self.inputs(frame, where)
        probs = self.predict_proba(sequences, run)
        out = pd.DataFrame(probs.astype(np.float64), columns=self.probability_columns)
        out.insert(0, "label", [self.label_names[i] for i in probs.argmax(axis=1)])
        out.insert(0, self.bundle.id_column, ids)
        return out

    def output_columns(self) -> list[Any]:
        from mlflow.types.schema import AnyType, ColSpec, DataType

        columns: list[Any] = [
            ColSpec(AnyType(), self.bundle.id_column),
            ColSpec(DataType.string, "label"),
        ]
        return columns + [ColSpec(DataType.double, name) for name in self.probability_columns]


class ClassifierServe(ServeTask[MetaT, ClassReportT, MetricsReport]):
    """Argmax parity and test accuracy of the served model."""

    def agreement(self, got: np.ndarray, expected: np.ndarray) -> int | None:
        return int((got.argmax(axis=1) == expected.argmax(axis=1)).sum())

    def quality(self, predictor: Predictor, processed: Path) -> Quality:
        from seqops.data.sequences import SequenceSet

        test = SequenceSet.load(processed / split_file("test"))
        logits = predictor.run_sequences(test.sequences)
        accuracy = float((logits.argmax(axis=1) == test.labels).mean())
        return Quality("test/accuracy", accuracy, lower_is_better=False)
