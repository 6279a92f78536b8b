"""`sequence_classification`: variable-length multivariate float sequences → one class each.

Data: a UCR/UEA set bundled in sktime's wheel (`data.dataset`, official train/test split kept)
or a long-format file (`data.path`: id, time, features, label; stratified test split).
Validation is carved from train (stratified, seeded); the scaler is fitted on the training
split only. Evaluate reports accuracy, macro-F1 and ECE with per-class precision / recall, the
confusion matrix and micro-averaged ROC / precision-recall curves, beside a classical baseline
fitted on the same training split and scored on the same test sequences: MiniRocket features
(sktime, sequences zero-padded in standardised units) with a ridge classifier
(`minirocket_baseline`). The release compares the candidate with the champion, and with the
baseline, by McNemar's exact test on per-example correctness.

What it shares with the text task (evaluation, scorer, model card) is in
`seqops.tasks.classifier`; the long-format loading it shares with regression in
`seqops.tasks.long_format`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
import pandas as pd
from pydantic import model_validator

from seqops.contracts import Bundle, Scaler
from seqops.errors import DataError
from seqops.layout import SPLITS, split_file
from seqops.tasks.base import Codec, Prepared, kernel_network_args, longest_sequence
from seqops.tasks.classifier import (
    ClassifierCodec,
    ClassifierTask,
    ClassReport,
    class_report,
    encode_labels,
)
from seqops.tasks.long_format import ScaledMeta, example_frame, load_sequences

if TYPE_CHECKING:
    from mlflow.models import ModelSignature

    from seqops.config import DataConfig, ModelConfig
    from seqops.data.sequences import SequenceSet


class ClassificationMeta(ScaledMeta):
    classifier: ClassVar[bool] = True

    task: Literal["sequence_classification"] = "sequence_classification"
    input: Literal["x"] = "x"

    @model_validator(mode="after")
    def _scaler_per_feature(self) -> ClassificationMeta:
        self.scaler.check_features(len(self.feature_names))
        return self


class ClassificationReport(ClassReport):
    task: Literal["sequence_classification"] = "sequence_classification"


# -- evaluate ---------------------------------------------------------------------------------

#: MiniRocket's kernels span 9 steps: shorter sets are zero-padded to this length.
MINIROCKET_MIN_LENGTH = 9
#: Ridge penalties RidgeClassifierCV chooses from by leave-one-out on the training split (the
#: ROCKET papers' grid).
RIDGE_ALPHAS = tuple(np.logspace(-3, 3, 10).tolist())


def padded_panel(sequences: list[np.ndarray], length: int) -> np.ndarray:
    """`(N, F, length)`: each `(T_i, F)` sequence zero-padded at the end (standardised units,
    so padding is the training mean) or cut to `length`."""
    panel = np.zeros((len(sequences), sequences[0].shape[1], length))
    for i, s in enumerate(sequences):
        steps = min(len(s), length)
        panel[i, :, :steps] = s[:steps].T
    return panel


def minirocket_baseline(train: SequenceSet, test: SequenceSet) -> np.ndarray:
    """Test class indices of MiniRocket + RidgeClassifierCV fitted on `train` (Dempster et al.
    2021), the strong, cheap time-series classifier: 10k random convolution features
    (sktime's `MiniRocketMultivariate`, seeded) on sequences zero-padded to the longest
    training or test length, standardised, and a ridge classifier whose penalty leave-one-out
    picks on the training split. MiniRocket rather than ROCKET: as accurate on the UCR archive
    and about 10x faster; numba compiles its kernels on the first call in an environment
    (about 30 s, cached afterwards)."""
    from sklearn.linear_model import RidgeClassifierCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sktime.transformations.rocket import MiniRocketMultivariate

    length = max(int(train.lengths.max()), int(test.lengths.max()), MINIROCKET_MIN_LENGTH)
    features = MiniRocketMultivariate(random_state=0, n_jobs=1)
    x_train = features.fit_transform(padded_panel(train.sequences, length))
    x_test = features.transform(padded_panel(test.sequences, length))
    ridge = make_pipeline(StandardScaler(), RidgeClassifierCV(alphas=RIDGE_ALPHAS))
    ridge.fit(np.asarray(x_train), train.labels)
    return np.asarray(ridge.predict(np.asarray(x_test)), dtype=np.int64)


def warm_baseline() -> None:
    """Compile MiniRocket's numba kernels into the environment's cache (`make install` calls
    this), so no pipeline run or test pays the compilation."""
    from seqops.data.sequences import SequenceSet

    rng = np.random.default_rng(0)
    sequences = [rng.normal(size=(12, 2)).astype(np.float32) for _ in range(4)]
    tiny = SequenceSet(sequences, np.array([0, 1, 0, 1], dtype=np.int64))
    minirocket_baseline(tiny, tiny)


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


# -- the task ---------------------------------------------------------------------------------


class SequenceClassification(ClassifierTask[ClassificationMeta, ClassificationReport]):
    name = "sequence_classification"
    # Chosen on validation splits carved from the training data (README, "Against classical
    # baselines"): lower validation loss on all five sets checked, accuracy level on average.
    augment: ClassVar[dict[str, float] | None] = {
        "augment_noise": 0.1,
        "augment_scale": 0.1,
        "augment_crop": 0.0,
    }
    meta_type = ClassificationMeta
    data_report_type = ClassificationReport
    reads = ("model.kernel_features",)

    def prepare(self, data: DataConfig, seed: int) -> Prepared:
        from seqops.data.scaling import ChannelScaler
        from seqops.data.sequences import SequenceSet
        from seqops.data.splits import check_class_sizes, stratified_split

        raw, raw_test, source = load_sequences(data)
        names = sorted(set(raw.labels))
        everything = SequenceSet(raw.sequences, encode_labels(raw.labels, names, source))
        carved = ["train", "validation"] + (["test"] if raw_test is None else [])
        check_class_sizes(everything.labels, names, carved, source)
        if raw_test is None:
            keep, held = stratified_split(
                everything.labels, data.test_fraction, seed, names=names, what="test"
            )
            train_all, test = everything.subset(keep), everything.subset(held)
        else:
            train_all = everything
            test = SequenceSet(raw_test.sequences, encode_labels(raw_test.labels, names, source))
        if len(names) < 2:
            raise DataError(
                f"{source}: {data.label_column!r} has one class ({names}); need at least 2"
            )
        keep, held = stratified_split(
            train_all.labels, data.val_fraction, seed, names=names, what="validation"
        )
        train, val = train_all.subset(keep), train_all.subset(held)
        scaler = ChannelScaler.fit(train.sequences)
        splits = {
            name: SequenceSet(scaler.transform(part.sequences), part.labels)
            for name, part in zip(SPLITS, (train, val, test), strict=True)
        }
        meta = ClassificationMeta(
            feature_names=raw.feature_names,
            label_names=names,
            n_outputs=len(names),
            max_train_length=longest_sequence(splits),
            scaler=Scaler(**scaler.to_dict()),
        )
        return Prepared(splits, meta, source, class_report(splits, names), files={})

    def network_args(
        self, meta: ClassificationMeta, processed: Path, model: ModelConfig
    ) -> dict[str, Any]:
        return kernel_network_args(meta.max_train_length, model)

    def summary(self, report: ClassificationReport) -> str:
        return (
            f"prepare: {report.n_train} train / {report.n_val} val / {report.n_test} test "
            f"sequences, {report.n_features} features, {report.n_classes} classes "
            f"from {report.source}"
        )

    def baselines(self, processed: Path) -> dict[str, np.ndarray]:
        from seqops.data.sequences import SequenceSet

        train = SequenceSet.load(processed / split_file("train"))
        test = SequenceSet.load(processed / split_file("test"))
        return {"minirocket": minirocket_baseline(train, test)}

    def request_example(
        self, processed: Path, bundle: Bundle[ClassificationMeta], n: int
    ) -> pd.DataFrame:
        from seqops.data.sequences import SequenceSet

        return example_frame(SequenceSet.load(processed / split_file("test")), bundle, n)

    def codec(
        self, bundle: Bundle[ClassificationMeta], files: dict[str, Path]
    ) -> Codec[ClassificationMeta]:
        return SequenceCodec(bundle)

    def card_inputs(self, report: ClassificationReport) -> str:
        return str(report.n_features)

    def card_use(self, report: ClassificationReport) -> str:
        return (
            f"Classifies variable-length multivariate sequences shaped like `{report.source}` "
            f"({report.n_features} standardised channels) into one of {report.n_classes} "
            "classes. Inputs go through `preprocessing.json` (the training split's scaler); "
            "sequences longer than the export's `max_length` are rejected, not truncated. "
            "The test set is finite, so read the intervals above; the model has not been "
            "checked for distribution shift or adversarial input. Use the probabilities with "
            "care: see the calibration error above."
        )
