"""What prepare tells every later stage about a tagger's data (`preprocessing.json`).

One type per input the task reads, told apart by `input` (`LabelingMeta`, their base, is
what `SequenceLabeling.meta_type` names; `parse_meta` picks the subclass from `input`):

- `TextLabelingMeta` (`tokens`, CoNLL text): the input is packed, one row per token, its word
  id then `max_word_length` character ids, so `feature_names` names those columns (`word`,
  `char_1` ...) and the graph's input is `(batch, time, 1 + max_word_length)`; the
  vocabularies are in `vocab` (`vocab.json`).
- `SeriesLabelingMeta` (`x`, numeric series): one row per time step, the features
  standardised with `scaler` (the training steps' mean and std); `label_column` is the gold
  column of the data, which a request must not carry.

Either way the label names are the tags, one output each. Each input's fields are required
with it and refused with the other (extra keys are), so a file never holds half of each.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal, Self

from pydantic import Field, TypeAdapter, model_validator

from seqops.contracts import DataMeta, FileName, Scaler

#: The word and character vocabularies (`vocab.Vocabulary`), carried by the bundle.
VOCAB_FILE = "vocab.json"


class LabelingMeta(DataMeta):
    """What both inputs share: the task, the input and the tags (two or more)."""

    classifier: ClassVar[bool] = True  # two or more tags, one output each

    task: Literal["sequence_labeling"] = "sequence_labeling"
    input: Literal["tokens", "x"]
    """`tokens`: CoNLL text; `x`: numeric series in long format."""

    @property
    def series(self) -> bool:
        """Numeric series (`x`) rather than text (`tokens`)."""
        return self.input == "x"


class TextLabelingMeta(LabelingMeta):
    input: Literal["tokens"] = "tokens"
    vocab: FileName
    """The vocabularies' file."""
    vocab_size: int = Field(ge=3)
    """Word ids, `[PAD]` (0) and `[UNK]` (1) included."""
    char_vocab_size: int = Field(ge=3)
    """Character ids, `[PAD]` (0) and `[UNK]` (1) included."""
    max_word_length: int = Field(ge=1)
    """Characters of a word the packed input holds (longer words are cut)."""

    @model_validator(mode="after")
    def _word_then_characters(self) -> Self:
        if len(self.feature_names) != 1 + self.max_word_length:
            raise ValueError(
                f"{len(self.feature_names)} feature_names for a word id and "
                f"{self.max_word_length} character ids (max_word_length)"
            )
        return self


class SeriesLabelingMeta(LabelingMeta):
    input: Literal["x"] = "x"
    scaler: Scaler
    """Per-feature mean and std of the training steps."""
    label_column: str = Field(min_length=1)
    """The data's label column (refused in a request: gold labels are not input)."""

    @model_validator(mode="after")
    def _scaler_per_feature(self) -> Self:
        self.scaler.check_features(len(self.feature_names))
        return self


#: prepare's metadata for either input, picked by `input`.
TextOrSeriesMeta = Annotated[TextLabelingMeta | SeriesLabelingMeta, Field(discriminator="input")]
LABELING_META: TypeAdapter[TextLabelingMeta | SeriesLabelingMeta] = TypeAdapter(TextOrSeriesMeta)
