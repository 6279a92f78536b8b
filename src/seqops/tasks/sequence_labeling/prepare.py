"""`sequence_labeling`'s prepare part: numeric series (`series_prepare`) or CoNLL text
(`conll_prepare`), as the `data` section names (`task.series_source`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from seqops.tasks.base import Prepared
from seqops.tasks.parts.prepare import PrepareTask
from seqops.tasks.sequence_labeling.meta import TextOrSeriesMeta
from seqops.tasks.sequence_labeling.task import (
    LabelingMetrics,
    LabelingReport,
    SequenceLabeling,
    series_source,
)

if TYPE_CHECKING:
    from seqops.config import DataConfig


class SequenceLabelingPrepare(
    PrepareTask[TextOrSeriesMeta, LabelingReport, LabelingMetrics], SequenceLabeling
):
    def prepare(self, data: DataConfig, seed: int) -> Prepared:
        if series_source(data):
            from seqops.tasks.sequence_labeling.series_prepare import prepare_series

            return prepare_series(data, seed)
        from seqops.tasks.sequence_labeling.conll_prepare import prepare_conll

        return prepare_conll(data)

    def summary(self, report: LabelingReport) -> str:
        if report.input == "x":
            return (
                f"prepare: {report.n_train} train / {report.n_val} val / {report.n_test} test "
                f"series ({report.n_steps.get('train', 0):,} / {report.n_steps.get('val', 0):,} "
                f"/ {report.n_steps.get('test', 0):,} steps), {report.n_features} features, "
                f"{report.n_classes} labels from {report.source}"
            )
        return (
            f"prepare: {report.n_train} train / {report.n_val} val / {report.n_test} test "
            f"sentences, {report.vocab_size} words, {report.char_vocab_size} characters, "
            f"{report.n_classes} tags from {report.source}"
        )
