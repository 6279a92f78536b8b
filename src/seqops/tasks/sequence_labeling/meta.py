"""What prepare tells every later stage about a tagger's data (`preprocessing.json`).

One type for both inputs the task reads, told apart by `input`:

- `tokens` (text): the input is packed, one row per token, its word id then
  `max_word_length` character ids, so `feature_names` names those columns (`word`, `char_1`
  ...) and the graph's input is `(batch, time, 1 + max_word_length)`; the vocabularies are in
  `vocab` (`vocab.json`).
- `x` (numeric series): one row per time step, the features standardised with `scaler` (the
  training steps' mean and std); `label_column` is the gold column of the data, which a
  request must not carry.

Either way the label names are the tags, one output each. Each input's fields are required
with it and refused with the other, so a file never holds half of each.
"""

from __future__ import annotations

from typing import ClassVar, Literal, Self

from pydantic import Field, model_validator

from seqops.contracts import DataMeta, FileName, Scaler

#: The word and character vocabularies (`vocab.Vocabulary`), carried by the bundle.
VOCAB_FILE = "vocab.json"

#: The fields only text (`tokens`) input has, and those only series (`x`) input has.
TEXT_FIELDS = ("vocab", "vocab_size", "char_vocab_size", "max_word_length")
SERIES_FIELDS = ("scaler", "label_column")


class LabelingMeta(DataMeta):
    classifier: ClassVar[bool] = True  # two or more tags, one output each

    task: Literal["sequence_labeling"] = "sequence_labeling"
    input: Literal["tokens", "x"] = "tokens"
    """`tokens`: CoNLL text; `x`: numeric series in long format."""
    vocab: FileName | None = None
    """Text: the vocabularies' file (`VOCAB_FILE`)."""
    vocab_size: int | None = Field(None, ge=3)
    """Text: word ids, `[PAD]` (0) and `[UNK]` (1) included."""
    char_vocab_size: int | None = Field(None, ge=3)
    """Text: character ids, `[PAD]` (0) and `[UNK]` (1) included."""
    max_word_length: int | None = Field(None, ge=1)
    """Text: characters of a word the packed input holds (longer words are cut)."""
    scaler: Scaler | None = None
    """Series: per-feature mean and std of the training steps."""
    label_column: str | None = Field(None, min_length=1)
    """Series: the data's label column (refused in a request: gold labels are not input)."""

    @property
    def series(self) -> bool:
        """Numeric series (`x`) rather than text (`tokens`)."""
        return self.input == "x"

    @model_validator(mode="after")
    def _fields_of_the_input(self) -> Self:
        needed, refused = (
            (SERIES_FIELDS, TEXT_FIELDS) if self.series else (TEXT_FIELDS, SERIES_FIELDS)
        )
        missing = [name for name in needed if getattr(self, name) is None]
        if missing:
            raise ValueError(f"input {self.input!r} needs {missing}")
        extra = [name for name in refused if getattr(self, name) is not None]
        if extra:
            raise ValueError(f"input {self.input!r} has no {extra} (fields of the other input)")
        if self.scaler is not None:
            self.scaler.check_features(len(self.feature_names))
        if self.max_word_length is not None and len(self.feature_names) != 1 + self.max_word_length:
            raise ValueError(
                f"{len(self.feature_names)} feature_names for a word id and "
                f"{self.max_word_length} character ids (max_word_length)"
            )
        return self
