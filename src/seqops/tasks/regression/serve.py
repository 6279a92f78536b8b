"""`sequence_regression`'s export and serving part: long-format rows in, the target in its
units out."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from seqops import onnx_contract as contract
from seqops.contracts import (
    Bundle,
    MetricsReport,
)
from seqops.layout import split_file
from seqops.tasks.long_format import example_frame
from seqops.tasks.parts.serve import Codec, Quality, RunModel, ServeTask, served_gap
from seqops.tasks.regression.evaluate import model_predict
from seqops.tasks.regression.task import (
    PREDICTION,
    RegressionMeta,
    RegressionReport,
    SequenceRegression,
)

if TYPE_CHECKING:
    from mlflow.models import ModelSignature

    from seqops.model.network import SequenceNet
    from seqops.serving import Predictor


class RegressionCodec(Codec[RegressionMeta]):
    """Long-format rows (id, time, every feature) → standardised `(T, F)` sequences, exactly as
    the classifier reads them; answers one row per sequence: id and `prediction` in the
    target's units."""

    def __init__(self, bundle: Bundle[RegressionMeta]) -> None:
        self.bundle = bundle
        meta = bundle.data
        self.mean = np.asarray(meta.scaler.mean, dtype=np.float64)
        self.std = np.asarray(meta.scaler.std, dtype=np.float64)
        self.target = meta.target

    def predict(self, sequences: Sequence[np.ndarray], run: RunModel) -> np.ndarray:
        """`(N,)` predictions in the target's units of standardised sequences."""
        from seqops.serving import run_batches

        z = np.asarray(run_batches(list(sequences), run), dtype=np.float64)  # (N, 1)
        return z[:, 0] * self.target.std + self.target.mean

    def predict_frame(self, frame: pd.DataFrame, run: RunModel, where: str) -> pd.DataFrame:
        from seqops.serving import long_format_sequences

        ids, sequences = long_format_sequences(frame, self.bundle, self.mean, self.std, where)
        out = pd.DataFrame({PREDICTION: self.predict(sequences, run)})
        out.insert(0, self.bundle.id_column, ids)
        return out

    def signature(self) -> ModelSignature:
        from mlflow.models import ModelSignature
        from mlflow.types.schema import AnyType, ColSpec, DataType, Schema

        b = self.bundle
        inputs: list[Any] = [ColSpec(AnyType(), b.id_column), ColSpec(AnyType(), b.time_column)]
        inputs += [ColSpec(DataType.double, name) for name in b.data.feature_names]
        answer: list[Any] = [ColSpec(AnyType(), b.id_column), ColSpec(DataType.double, PREDICTION)]
        return ModelSignature(Schema(inputs), Schema(answer))


class SequenceRegressionServe(
    ServeTask[RegressionMeta, RegressionReport, MetricsReport], SequenceRegression
):
    def quality(self, predictor: Predictor, processed: Path) -> Quality:
        """Test RMSE in the target's units of the ONNX model."""
        from seqops.data.sequences import SequenceSet

        codec = RegressionCodec(predictor.bundle)
        test = SequenceSet.load(processed / split_file("test"))
        predicted = codec.predict(test.sequences, predictor.run)
        actual = test.labels.astype(np.float64) * codec.target.std + codec.target.mean
        rmse = float(np.sqrt(((predicted - actual) ** 2).mean()))
        return Quality("test/rmse", rmse, lower_is_better=True)

    def served_checks(
        self,
        system: SequenceNet,
        predictor: Predictor,
        processed: Path,
        tolerance: contract.Tolerance,
    ) -> dict[str, float]:
        """Raw test rows → preprocessing.json → ONNX → units against the evaluated model; the
        limit is `tolerance` on the standardised output, in units (its absolute part × target
        std, its relative part as it is)."""
        from seqops.data.sequences import SequenceSet

        codec = RegressionCodec(predictor.bundle)
        test = SequenceSet.load(processed / split_file("test"))
        expected = model_predict(system, test) * codec.target.std + codec.target.mean
        requests = example_frame(test, codec.bundle, len(test))
        served = predictor.predict_frame(requests, where="test requests")
        got = served[PREDICTION].to_numpy()
        limit = tolerance.scaled(codec.target.std)
        return served_gap(
            got, expected, limit, "predictions served from raw test rows", "prediction"
        )

    def request_example(
        self, processed: Path, bundle: Bundle[RegressionMeta], n: int
    ) -> pd.DataFrame:
        from seqops.data.sequences import SequenceSet

        return example_frame(SequenceSet.load(processed / split_file("test")), bundle, n)

    def codec(
        self, bundle: Bundle[RegressionMeta], files: dict[str, Path]
    ) -> Codec[RegressionMeta]:
        return RegressionCodec(bundle)
