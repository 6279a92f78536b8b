"""`sequence_labeling`'s export and serving part: the per-step output, the served entity or
segment F1, the whole-path tag check, and the request codec (`codec` for sentences,
`series_codec` for long-format rows)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, TypeGuard

import numpy as np
import pandas as pd

from seqops import onnx_contract as contract
from seqops.contracts import Bundle
from seqops.errors import DataError, ExportError
from seqops.layout import split_file
from seqops.tasks.parts.serve import Codec, Quality, ServeTask
from seqops.tasks.sequence_labeling.meta import (
    SeriesLabelingMeta,
    TextLabelingMeta,
    TextOrSeriesMeta,
)
from seqops.tasks.sequence_labeling.task import LabelingMetrics, LabelingReport, SequenceLabeling

if TYPE_CHECKING:
    from seqops.model.network import SequenceNet
    from seqops.serving import Predictor


def _test_requests(
    processed: Path, bundle: Bundle[TextOrSeriesMeta], n: int | None = None
) -> pd.DataFrame:
    """The first `n` raw test sentences (all with None) as a request frame, ids `seq<i>`."""
    from seqops.tasks.sequence_labeling.codec import sentence_frame
    from seqops.tasks.sequence_labeling.conll_prepare import read_sentences

    test = read_sentences(processed, "test")[:n]
    return sentence_frame(
        [s.tokens for s in test], bundle.id_column, [f"seq{i}" for i in range(len(test))]
    )


def _series_requests(
    processed: Path, bundle: Bundle[SeriesLabelingMeta], n: int | None = None
) -> pd.DataFrame:
    """The first `n` raw test series (all with None) as request rows: prepare's test rows
    without the label column."""
    from seqops.tasks.sequence_labeling.series_prepare import read_steps

    steps = read_steps(processed).drop(columns=[bundle.data.label_column])
    if n is not None:
        keep = list(dict.fromkeys(steps[bundle.id_column].tolist()))[:n]
        steps = steps[steps[bundle.id_column].isin(keep)].reset_index(drop=True)
    return steps


def _series(bundle: Bundle[TextOrSeriesMeta]) -> TypeGuard[Bundle[SeriesLabelingMeta]]:
    """Whether the bundle serves numeric series (the `input` prepare recorded is `x`)."""
    return bundle.data.input == "x"


def _text(bundle: Bundle[TextOrSeriesMeta]) -> TypeGuard[Bundle[TextLabelingMeta]]:
    """Whether the bundle serves CoNLL text (the `input` prepare recorded is `tokens`)."""
    return bundle.data.input == "tokens"


class SequenceLabelingServe(
    ServeTask[TextOrSeriesMeta, LabelingReport, LabelingMetrics],
    SequenceLabeling,
):
    """Per-step scores out; sentences or long-format rows in."""

    def output_shape(self, meta: TextOrSeriesMeta) -> list[str | int]:
        return contract.per_step_shape(meta.n_outputs)

    def agreement(self, got: np.ndarray, expected: np.ndarray) -> int | None:
        """Sequences whose every step has the same highest-scoring tag."""
        return int((got.argmax(axis=-1) == expected.argmax(axis=-1)).all(axis=1).sum())

    def quality(self, predictor: Predictor, processed: Path) -> Quality:
        """Entity F1 (text) or segment F1 (series) of the served graph's decoded tags on the
        prepared test split."""
        from seqops.data.sequences import SequenceSet
        from seqops.serving import run_per_step

        test = SequenceSet.load(processed / split_file("test"))
        meta: TextOrSeriesMeta = predictor.bundle.data
        names = meta.label_names
        tags = [[names[i] for i in t] for t in run_per_step(test.sequences, predictor.tags)]
        if meta.input == "x":
            from seqops.tasks.sequence_labeling.series import score_series

            gold = [np.asarray(names)[y] for y in test.labels]
            f1 = score_series(gold, [np.asarray(t) for t in tags]).segment_f1
            return Quality("test/segment_f1", f1, lower_is_better=False)
        from seqops.tasks.sequence_labeling.conll_prepare import read_sentences
        from seqops.tasks.sequence_labeling.scoring import score

        sentences = [s.tags for s in read_sentences(processed, "test")]
        return Quality("test/entity_f1", score(sentences, tags).entities.f1, lower_is_better=False)

    def served_checks(
        self,
        system: SequenceNet,
        predictor: Predictor,
        processed: Path,
        tolerance: contract.Tolerance,
    ) -> dict[str, float]:
        """The raw test requests (sentences through `vocab.json`, or long-format rows through
        the scaler) through ONNX and the torch-free decoder must get the evaluated network's
        tags on every step, or the served model is not the evaluated one."""
        from seqops.data.sequences import SequenceSet
        from seqops.tasks.sequence_labeling.evaluate import predict_tags

        bundle: Bundle[TextOrSeriesMeta] = predictor.bundle
        names = bundle.data.label_names
        test = SequenceSet.load(processed / split_file("test"))
        evaluated = np.concatenate([[names[i] for i in t] for t in predict_tags(system, test)])
        if _series(bundle):
            from seqops.tasks.sequence_labeling.series_codec import LABEL

            what, column, key = "test series' rows", LABEL, "raw_series_label_mismatches"
            served = predictor.predict_frame(_series_requests(processed, bundle), what)
        else:
            what, column, key = "test sentences", "tag", "raw_sentence_tag_mismatches"
            served = predictor.predict_frame(_test_requests(processed, bundle), what)
        differ = int(np.sum(served[column].to_numpy() != evaluated))
        if differ:
            raise ExportError(
                f"the raw {what} served through the bundle, ONNX and the decoder get {differ} "
                f"of {len(evaluated)} step tags other than the evaluated network's"
            )
        return {key: float(differ)}

    def request_example(
        self, processed: Path, bundle: Bundle[TextOrSeriesMeta], n: int
    ) -> pd.DataFrame:
        if _series(bundle):
            return _series_requests(processed, bundle, n)
        return _test_requests(processed, bundle, n)

    def bundle_files(self, meta: TextOrSeriesMeta) -> list[str]:
        return [] if meta.input == "x" else [meta.vocab]

    def codec(
        self, bundle: Bundle[TextOrSeriesMeta], files: dict[str, Path]
    ) -> Codec[TextOrSeriesMeta]:
        if _series(bundle):
            from seqops.tasks.sequence_labeling.series_codec import StepCodec

            return StepCodec(bundle)
        if _text(bundle):
            from seqops.tasks.sequence_labeling.codec import TaggerCodec

            return TaggerCodec(bundle, files[bundle.data.vocab])
        raise DataError(f"input {bundle.data.input!r}: sequence_labeling reads tokens or x")
