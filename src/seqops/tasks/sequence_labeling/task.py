"""`sequence_labeling`: one label per step, of text (one tag per token of CoNLL sentences,
named entities) or of numeric series (one label per time step: segmentation, event detection).

Which one the `data` section says, by one rule (`check_data`): numeric series when
`data.dataset` names a bundled labelled set (`basic_motions_segments`) or `data.path` is a
long-format table (`.csv`, `.tsv`, `.parquet`: `id, time, features..., label`, the label free
to change from step to step; `data.val_path` and `data.test_path` must then be null, the
splits are carved by whole series); CoNLL text otherwise. prepare records which in the
metadata (`LabelingMeta.input`: `x` or `tokens`) and in both reports (`input` of the
`reports.py` types), and every later stage reads it from there.

Series (the `series_*` modules): the scaler from the training steps, a per-step `SequenceNet`
over the float features (a CRF with `model.crf`; no character features), scored per step and
per segment beside the sliding-window baseline; served as long-format rows in, one row per
step out; the release compares segment F1 per series counts by approximate randomisation.

Text: three CoNLL files, `data.path` (train), `data.val_path` and `data.test_path`, read and
encoded by `conll_prepare` (word and character vocabularies from the training split,
`data.labeling`).
The network is a per-step `SequenceNet` over packed token rows (word id and character ids,
`model.char_features`) with a CRF layer (`model.crf`), trained on the per-token tags (masked
cross-entropy, or the CRF's likelihood); `val/token_accuracy` is logged each epoch.
Evaluate scores entities as conlleval does beside the CRF baseline (`evaluate`); the ONNX
graph outputs per-token scores `[batch, time, tags]` (and the CRF's transitions), which the
torch-free predictor decodes (`codec`); the release compares entity F1 per sentence counts by
approximate randomisation (`release`); the card's sections are in `card`.

This module is the `Task` seam (name, types, config checks, and which input the `data` section
names: `series_source`); each stage's part is a class in the module named after it
(`prepare`, `train`, `evaluate`, `serve`, `release`, `card`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from seqops.contracts import parse_as
from seqops.tasks.base import Task
from seqops.tasks.sequence_labeling.meta import (
    LABELING_META,
    LabelingMeta,
    TextOrSeriesMeta,
)
from seqops.tasks.sequence_labeling.reports import (
    SeriesLabelingMetrics,
    SeriesLabelingReport,
    TextLabelingMetrics,
    TextLabelingReport,
    TextOrSeriesMetrics,
    TextOrSeriesReport,
)

if TYPE_CHECKING:
    from seqops.config import DataConfig

#: The bundled per-step labelled series `data.dataset` may name.
SERIES_DATASETS = ("basic_motions_segments",)
#: Suffixes of `data.path` read as a long-format table (anything else is CoNLL text).
TABLE_SUFFIXES = (".csv", ".tsv", ".parquet")


def series_source(data: DataConfig) -> bool:
    """Whether `data` describes numeric series (a bundled set, or a table in `data.path`)
    rather than CoNLL text (see `SequenceLabeling.check_data` for the rule)."""
    return data.dataset is not None or (
        data.path is not None and data.path.suffix.lower() in TABLE_SUFFIXES
    )


#: prepare's report and evaluate's report for either input, told apart by their `input`.
LabelingReport = TextLabelingReport | SeriesLabelingReport
LabelingMetrics = TextLabelingMetrics | SeriesLabelingMetrics


class SequenceLabeling(Task[TextOrSeriesMeta, LabelingReport, LabelingMetrics]):
    name = "sequence_labeling"
    meta_type = LabelingMeta
    data_report_type = TextOrSeriesReport
    metrics_type = TextOrSeriesMetrics
    metrics: ClassVar[frozenset[str]] = frozenset(
        {"entity_f1", "entity_precision", "entity_recall", "token_accuracy"}  # text
        | {"segment_f1", "segment_precision", "segment_recall", "segment_f1_strict"}  # series
        | {"step_accuracy"}
    )
    #: `entity_f1` for text only (series labels are not BIO tags): `objective` refuses it there.
    val_metrics: ClassVar[frozenset[str]] = frozenset({"token_accuracy", "entity_f1"})
    reads = (
        "data.labeling.",
        "data.val_path",
        "data.test_path",
        "model.embedding_dim",
        "model.crf",
        "model.char_features",
        "model.char_filters",
        "model.word_shape",
        "model.word_dropout",
    )
    ignored = ("model.pooling", "model.conv_from_length", "train.label_smoothing")
    #: Params only text reads, and those only series read (`applicable` leaves out the other's).
    TEXT_ONLY = (
        "data.labeling.",
        "data.val_path",
        "data.test_path",
        "model.embedding_dim",
        "model.char_features",
        "model.char_filters",
        "model.word_shape",
        "model.word_dropout",
        "train.noise_std",
    )
    SERIES_ONLY = (
        "data.dataset",
        "data.label_column",
        "data.time_column",
        "data.feature_columns",
        "data.time_format",
        "data.val_fraction",
        "data.test_fraction",
        "model.encoder",
    )

    def parse_meta(self, raw: Any, source: Path) -> TextOrSeriesMeta:
        """Text or series metadata, as its `input` says."""
        return parse_as(LABELING_META, raw, source, LabelingMeta.__name__, strict=True)

    def applicable(self, params: dict[str, Any]) -> dict[str, Any]:
        """The task's params, less those of the input it does not read (text or series, by
        the `check_data` rule on the flattened `data.dataset` and `data.path`)."""
        path = params.get("data.path")
        series = params.get("data.dataset") is not None or (
            isinstance(path, str) and Path(path).suffix.lower() in TABLE_SUFFIXES
        )
        skip = self.TEXT_ONLY if series else self.SERIES_ONLY
        return {k: v for k, v in super().applicable(params).items() if not k.startswith(skip)}

    # -- config -----------------------------------------------------------------------------

    def check_data(self, data: DataConfig) -> None:
        """Series (a bundled labelled set, or a table in `data.path`) or three CoNLL files."""
        if data.dataset is not None and data.dataset not in SERIES_DATASETS:
            raise ValueError(
                f"data.dataset = {data.dataset!r}: sequence_labeling's bundled series are "
                f"{list(SERIES_DATASETS)}; for your own data set dataset: null and data.path"
            )
        if series_source(data):
            given = [key for key in ("val_path", "test_path") if getattr(data, key) is not None]
            if given:
                source = (
                    f"data.dataset {data.dataset}" if data.dataset else f"data.path {data.path}"
                )
                raise ValueError(
                    f"data.{given[0]} is for CoNLL text, but {source} is numeric series, whose "
                    "validation and test series are carved by data.val_fraction and "
                    "data.test_fraction: set it to null (or give CoNLL files for text)"
                )
            return
        missing = [key for key in ("path", "val_path", "test_path") if getattr(data, key) is None]
        if missing:
            raise ValueError(
                f"data.task=sequence_labeling reads three CoNLL files: set data.{missing[0]} "
                "(and dataset: null), or a long-format table (.csv, .tsv, .parquet) in "
                "data.path for numeric series"
            )
