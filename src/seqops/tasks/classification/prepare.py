"""`sequence_classification`'s prepare part: a UEA set or a long-format file → stratified
splits, standardised on the training split."""

from __future__ import annotations

from typing import TYPE_CHECKING

from seqops.contracts import MetricsReport, Scaler
from seqops.errors import DataError
from seqops.layout import SPLITS
from seqops.tasks.base import Prepared, longest_sequence
from seqops.tasks.classification.task import (
    ClassificationMeta,
    ClassificationReport,
    SequenceClassification,
)
from seqops.tasks.classifier.prepare import class_report, encode_labels
from seqops.tasks.long_format import load_sequences
from seqops.tasks.parts.prepare import PrepareTask

if TYPE_CHECKING:
    from seqops.config import DataConfig


class SequenceClassificationPrepare(
    PrepareTask[ClassificationMeta, ClassificationReport, MetricsReport], SequenceClassification
):
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

    def summary(self, report: ClassificationReport) -> str:
        return (
            f"prepare: {report.n_train} train / {report.n_val} val / {report.n_test} test "
            f"sequences, {report.n_features} features, {report.n_classes} classes "
            f"from {report.source}"
        )
