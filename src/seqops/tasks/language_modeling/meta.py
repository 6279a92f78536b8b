"""What prepare and evaluate tell the later stages about a language model's data (typed).

    LanguageModelMeta       data/processed/preprocessing.json (and the bundle's `data`)
    LanguageModelReport     reports/data.json
    LanguageModelMetrics    reports/metrics.json

The model reads token ids (`input: tokens`, one id per step) and answers one score per
vocabulary entry per step (the next token's logits), so `label_names` are the vocabulary's
tokens, one per output. Torch-free: the predictor and `seqops generate` read these.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal, Self

from pydantic import Field, model_validator

from seqops.contracts import DataMeta, DataReport, FileName, MetricsReport

#: The vocabulary (`vocab.TokenVocabulary` as JSON), carried by the bundle.
VOCAB_FILE = "lm_vocab.json"
#: Each split's documents, encoded (`streams.save_streams`).
STREAMS_SUFFIX = ".streams.npz"
#: Each split's blocks as raw text, in the order of the split's sequences.
BLOCKS_SUFFIX = ".blocks.json"
TASK = "language_modeling"


def streams_file(split: str) -> str:
    return f"{split}{STREAMS_SUFFIX}"


def blocks_file(split: str) -> str:
    return f"{split}{BLOCKS_SUFFIX}"


class LanguageModelMeta(DataMeta):
    task: Literal["language_modeling"] = "language_modeling"
    input: Literal["tokens"] = "tokens"
    units: Literal["char", "word"]
    vocab: FileName = VOCAB_FILE
    vocab_size: int = Field(ge=3)
    """Token ids, `[PAD]` (0) and `[UNK]` (1) included: the head's width."""
    block_tokens: int = Field(ge=2)

    @model_validator(mode="after")
    def _one_output_per_token(self) -> Self:
        if self.n_outputs != self.vocab_size:
            raise ValueError(f"n_outputs {self.n_outputs} != vocab_size {self.vocab_size}")
        return self

    @property
    def metric(self) -> str:
        """The test metric of the unit: `bits_per_char` or `perplexity`."""
        return "bits_per_char" if self.units == "char" else "perplexity"


class LanguageModelReport(DataReport):
    """Documents and tokens per split, the vocabulary and the test text it does not know.

    `n_train` / `n_val` / `n_test` and `length` count blocks (`data.block_tokens` tokens)."""

    task: Literal["language_modeling"] = "language_modeling"
    units: Literal["char", "word"]
    vocab_size: int
    n_documents: dict[str, int]
    n_tokens: dict[str, int]
    documents: dict[str, list[str]]
    """Each split's document names."""
    test_unknown_rate: float
    """Share of the test tokens that are `[UNK]` (not in the training vocabulary)."""

    def task_numbers(self) -> dict[str, Any]:
        return {
            "vocab_size": self.vocab_size,
            "test_unknown_rate": self.test_unknown_rate,
            **{f"n_tokens_{split}": n for split, n in self.n_tokens.items()},
        }


class LanguageModelMetrics(MetricsReport):
    """`test`: the unit's metric (`bits_per_char` or `perplexity`), `nll_nats`, `n_tokens`,
    `n_blocks`; `baseline.kneser_ney` the same metric of the n-gram model on the same tokens
    (and its `order`)."""

    task: Literal["language_modeling"] = "language_modeling"
    units: Literal["char", "word"]

    lower_is_better: ClassVar[bool] = True
