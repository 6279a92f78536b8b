"""What prepare tells every later stage about a text tagger's data (`preprocessing.json`).

The `tokens` input is packed: one row per token, its word id then `max_word_length` character
ids, so `feature_names` names those columns (`word`, `char_1` ...) and the graph's input is
`(batch, time, 1 + max_word_length)`. Tags are the label names, one output per tag.
"""

from __future__ import annotations

from typing import ClassVar, Literal, Self

from pydantic import Field, model_validator

from seqops.contracts import DataMeta, FileName

#: The word and character vocabularies (`vocab.Vocabulary`), carried by the bundle.
VOCAB_FILE = "vocab.json"


class LabelingMeta(DataMeta):
    classifier: ClassVar[bool] = True  # two or more tags, one output each

    task: Literal["sequence_labeling"] = "sequence_labeling"
    input: Literal["tokens"] = "tokens"
    vocab: FileName = VOCAB_FILE
    vocab_size: int = Field(ge=3)
    """Word ids, `[PAD]` (0) and `[UNK]` (1) included."""
    char_vocab_size: int = Field(ge=3)
    """Character ids, `[PAD]` (0) and `[UNK]` (1) included."""
    max_word_length: int = Field(ge=1)
    """Characters of a word the packed input holds (longer words are cut)."""

    @model_validator(mode="after")
    def _one_column_per_character(self) -> Self:
        if len(self.feature_names) != 1 + self.max_word_length:
            raise ValueError(
                f"{len(self.feature_names)} feature_names for a word id and "
                f"{self.max_word_length} character ids (max_word_length)"
            )
        return self
