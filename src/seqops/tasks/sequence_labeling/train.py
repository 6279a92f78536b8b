"""`sequence_labeling`'s train part: a per-step network (over series steps, or over packed
word and character ids), trained on the per-step tags or by its CRF layer's likelihood."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from seqops.errors import DataError
from seqops.tasks.parts.train import TrainTask
from seqops.tasks.sequence_labeling.meta import TextLabelingMeta, TextOrSeriesMeta
from seqops.tasks.sequence_labeling.task import LabelingMetrics, LabelingReport, SequenceLabeling

if TYPE_CHECKING:
    from seqops.config import ModelConfig, TrainConfig


class SequenceLabelingTrain(
    TrainTask[TextOrSeriesMeta, LabelingReport, LabelingMetrics], SequenceLabeling
):
    def network_args(
        self, meta: TextOrSeriesMeta, processed: Path, model: ModelConfig
    ) -> dict[str, Any]:
        if model.embeddings_path is not None:
            raise DataError("model.embeddings_path: pretrained vectors are for text_classification")
        if meta.input == "x":
            # One output per input step: a strided convolution would shorten the series.
            encoder = "linear" if model.encoder == "auto" else model.encoder
            if encoder == "conv" and model.encoder_stride != 1:
                raise DataError(
                    f"model.encoder_stride = {model.encoder_stride}: per-step labels need one "
                    "encoder step per input step; set it to 1 or use model.encoder linear"
                )
            return {"encoder": encoder, "per_step": True, "crf": model.crf}
        return {
            "vocab_size": meta.vocab_size,
            "embedding_dim": model.embedding_dim,
            "per_step": True,
            "crf": model.crf,
            "char_vocab_size": meta.char_vocab_size if model.char_features else None,
            "char_filters": model.char_filters,
            "shape_chars": self.shape_chars(meta, processed) if model.word_shape else None,
            "word_dropout": model.word_dropout,
        }

    @staticmethod
    def shape_chars(meta: TextLabelingMeta, processed: Path) -> list[str]:
        """The character vocabulary (`WordShape` classifies each of its characters)."""
        from seqops.tasks.sequence_labeling.vocab import Vocabulary

        return list(Vocabulary.load(processed / meta.vocab).chars)

    def objective(
        self, meta: TextOrSeriesMeta, train: TrainConfig, model: ModelConfig
    ) -> dict[str, Any]:
        # A network built with a CRF layer (`network_args`) is trained by that CRF's likelihood.
        # Text's tags are BIO or BIOES, so its objectives also log `val/entity_f1`.
        extra: dict[str, Any] = {}
        if meta.input == "tokens":
            extra["tag_names"] = list(meta.label_names)
        elif train.monitor.endswith("/entity_f1"):
            raise DataError(
                f"train.monitor = {train.monitor}: numeric series have no entities (their "
                "labels are not BIO tags); watch val/token_accuracy or val/loss"
            )
        if model.crf:
            return {"kind": "crf_tagging", **extra}
        return {"kind": "tagging", "n_tags": meta.n_outputs, **extra}
