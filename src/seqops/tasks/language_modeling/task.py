"""`language_modeling`: a stream of characters or words → the next token, trained by stateful
truncated BPTT, scored in bits per char (or perplexity) beside a Kneser-Ney baseline.

Data: a folder of UTF-8 `.txt` documents (`data.path`), split by whole document
(`data.val_documents` / `data.test_documents` by name, else seeded fractions); the vocabulary
of `data.units` from the training documents (`prepare`). Training deals the training
documents to `train.batch_size` continuous rows cut into windows of `train.bptt` tokens; the
system carries each row's recurrent state from window to window, detached, zeroed where a
document starts (`loaders`, objective `next_token`); `val/loss` is the validation documents'
NLL per token, read whole, never shuffled. Evaluate reads the test documents whole beside
interpolated Kneser-Ney on the same tokens (`evaluate`); the release compares blocks of
`data.block_tokens` tokens by a sign test (`release`). The network is a unidirectional
per-step `SequenceNet` over token ids: exported as the full graph and the streaming step
graph, served as text in, likelihood out (`codec`), and `seqops generate` writes text from
the step graph (`generate`).

This module is the `Task` seam (name, types, config checks); each stage's part lives in the
module named after it (`prepare`, `train`, `evaluate`, `serve`, `release`, `card`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from seqops.tasks.base import Task
from seqops.tasks.language_modeling.meta import (
    LanguageModelMeta,
    LanguageModelMetrics,
    LanguageModelReport,
)

if TYPE_CHECKING:
    from seqops.config import DataConfig


class LanguageModeling(Task[LanguageModelMeta, LanguageModelReport, LanguageModelMetrics]):
    name = "language_modeling"
    meta_type = LanguageModelMeta
    data_report_type = LanguageModelReport
    metrics_type = LanguageModelMetrics
    metrics: ClassVar[frozenset[str]] = frozenset({"bits_per_char", "perplexity"})
    val_metrics: ClassVar[frozenset[str]] = frozenset()
    step_decisions = False
    reads = (
        "data.val_documents",
        "data.test_documents",
        "data.units",
        "data.vocab_size",
        "data.block_tokens",
        "train.bptt",
        "model.embedding_dim",
    )
    ignored = (
        "data.dataset",
        "data.label_column",
        "data.time_column",
        "data.time_format",
        "data.feature_columns",
        "model.pooling",
        "model.bidirectional",
        "model.encoder",
        "model.conv_from_length",
        "model.crf",
        "model.char_features",
        "model.word_dropout",
        "train.label_smoothing",
        "train.noise_std",
        "train.epoch_examples",
    )

    # -- config -----------------------------------------------------------------------------

    def check_data(self, data: DataConfig) -> None:
        super().check_data(data)
        if data.path is None:
            raise ValueError(
                "data.task=language_modeling reads a folder of .txt documents: set data.path "
                "(and dataset: null)"
            )
        if data.vocab_size is not None and data.units == "char":
            raise ValueError(
                f"data.vocab_size = {data.vocab_size} is for data.units: word (a character "
                "model keeps every training character): set it to null"
            )
        named = [d for d in (data.val_documents or []) if d in (data.test_documents or [])]
        if named:
            raise ValueError(f"data.val_documents and data.test_documents both name {named[0]!r}")
