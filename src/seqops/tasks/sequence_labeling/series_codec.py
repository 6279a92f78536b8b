"""Serving a series labeler: long-format rows in, one label per step out (torch-free).

    seqops predict --model models/ --input steps.csv     # id, time, every feature

A request frame has one row per time step: the bundle's id column, its time column and every
feature of `preprocessing.json` (other columns are ignored). Rows are grouped by id (in order
of first appearance) and each series ordered by time, standardised with the training steps'
scaler and labelled by the served graph's decisions (`serving.Predictor.tags`: Viterbi with
the exported CRF, or argmax). The answer has one row per step, in that order: id, time (as
sent) and `label`.

Refused with one DataError naming the column or row: the data's label column (gold labels
are not input; drop it), no rows, a missing feature column, a feature that is not a finite
number, a repeated time within a series, and a series longer than the bundle's `max_length`
(`export.max_length`; never cut, which would silently drop labels).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from seqops.contracts import Bundle
from seqops.errors import DataError
from seqops.tasks.parts.serve import Codec, RunModel
from seqops.tasks.sequence_labeling.meta import SeriesLabelingMeta

if TYPE_CHECKING:
    from mlflow.models import ModelSignature

#: The answer's column holding each step's label.
LABEL = "label"


class StepCodec(Codec[SeriesLabelingMeta]):
    """Long-format rows → standardised `(T, F)` series → one row per step with its label."""

    def __init__(self, bundle: Bundle[SeriesLabelingMeta]) -> None:
        self.bundle = bundle
        meta = bundle.data
        self.mean = np.asarray(meta.scaler.mean, dtype=np.float64)
        self.std = np.asarray(meta.scaler.std, dtype=np.float64)
        self.label_column = meta.label_column
        self.label_names = meta.label_names

    def series(
        self, frame: pd.DataFrame, where: str
    ) -> tuple[list[Any], list[np.ndarray], list[np.ndarray]]:
        """Series ids, each series' time cells in time order, and its standardised steps."""
        from seqops.data.sources import time_order
        from seqops.serving import long_format_sequences

        if self.label_column in frame.columns:
            raise DataError(
                f"{where}: column {self.label_column!r} holds the labels the model predicts; "
                "gold labels are not input: drop the column"
            )
        ids, sequences = long_format_sequences(frame, self.bundle, self.mean, self.std, where)
        # The order long_format_sequences gave each series' steps, to answer their times.
        time = self.bundle.time_column
        keys = time_order(frame[time], where, time)
        cells = frame[time].to_numpy()
        groups = frame.groupby(self.bundle.id_column, sort=False).indices.values()
        times = [cells[rows[np.argsort(keys[rows], kind="stable")]] for rows in groups]
        return ids, times, sequences

    def label(self, sequences: list[np.ndarray], run: RunModel) -> list[np.ndarray]:
        """Each series' label names; `run` answers a padded batch's decisions `(B, T)`."""
        from seqops.serving import run_per_step

        names = np.asarray(self.label_names, dtype=object)
        return [names[codes] for codes in run_per_step(sequences, run)]

    def predict_frame(self, frame: pd.DataFrame, run: RunModel, where: str) -> pd.DataFrame:
        ids, times, sequences = self.series(frame, where)
        labels = self.label(sequences, run)
        return pd.DataFrame(
            {
                self.bundle.id_column: np.repeat(
                    np.array(ids, dtype=object), [len(s) for s in sequences]
                ),
                self.bundle.time_column: np.concatenate(times),
                LABEL: np.concatenate(labels).astype(str),
            }
        )

    def signature(self) -> ModelSignature:
        from mlflow.models import ModelSignature
        from mlflow.types.schema import AnyType, ColSpec, DataType, Schema

        b = self.bundle
        keys: list[Any] = [ColSpec(AnyType(), b.id_column), ColSpec(AnyType(), b.time_column)]
        inputs = keys + [ColSpec(DataType.double, name) for name in b.data.feature_names]
        return ModelSignature(Schema(inputs), Schema([*keys, ColSpec(DataType.string, LABEL)]))
