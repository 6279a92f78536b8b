"""`language_modeling`'s train part: a unidirectional per-step network over token ids, the
next-token objective, and the stateful truncated-BPTT loaders (`loaders`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from seqops.errors import ConfigError
from seqops.tasks.base import TaskLoaders
from seqops.tasks.language_modeling.meta import (
    LanguageModelMeta,
    LanguageModelMetrics,
    LanguageModelReport,
)
from seqops.tasks.language_modeling.task import LanguageModeling
from seqops.tasks.parts.train import TrainTask

if TYPE_CHECKING:
    from seqops.config import ModelConfig, TrainConfig


class LanguageModelingTrain(
    TrainTask[LanguageModelMeta, LanguageModelReport, LanguageModelMetrics], LanguageModeling
):
    def network_args(
        self, meta: LanguageModelMeta, processed: Path, model: ModelConfig
    ) -> dict[str, Any]:
        if model.bidirectional:
            raise ConfigError(
                "model.bidirectional = true: a language model reads left to right and carries "
                "its state on; set it to false"
            )
        if model.embeddings_path is not None:
            raise ConfigError(
                "model.embeddings_path: pretrained vectors are for text_classification"
            )
        return {
            "vocab_size": meta.vocab_size,
            "embedding_dim": model.embedding_dim,
            "per_step": True,
            "encoder": "linear",
        }

    def objective(
        self, meta: LanguageModelMeta, train: TrainConfig, model: ModelConfig
    ) -> dict[str, Any]:
        return {"kind": "next_token"}

    def loaders(
        self,
        meta: LanguageModelMeta,
        processed: Path,
        batch_size: int,
        seed: int,
        train: TrainConfig,
        train_on: tuple[str, ...],
    ) -> TaskLoaders:
        from seqops.tasks.language_modeling.loaders import StreamLoaders

        if train.ensemble > 1:
            raise ConfigError(
                f"train.ensemble = {train.ensemble}: a language model streams one network's "
                "state; set it to 1"
            )
        if train.strategy.startswith("ddp"):
            raise ConfigError(
                f"train.strategy = {train.strategy!r}: a language model's stateful windows are "
                "read by one process; use 'auto' and one device"
            )
        return StreamLoaders(processed, batch_size, train.bptt, seed, train_on)
