"""Variable-length labelled sequences and their on-disk form in `data/processed/`.

A split is stored as one `.npz` holding a ragged array without pickles: all steps
concatenated (`values`, shape `(sum T_i, F)`), per-sequence `lengths`, and `labels`: integer
classes, or for forecasting float32 targets `(N, horizon, n_targets)`.
Token-id sequences (text) are int64 `(T_i,)` arrays and keep their dtype on disk (a tagger's
packed tokens, `(T_i, 1 + W)` int64, likewise).

Per-step labels (tagging: one int64 tag per step) are ragged too: on disk `step_labels`, the
tags of every sequence concatenated `(sum T_i,)`, split by the same `lengths` (the key names
the format, so a reader never guesses it from shapes); in memory `labels` is then a 1-D
object array holding each sequence's `(T_i,)` int64 tags (`SequenceSet.with_step_labels`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

IGNORE_INDEX = -100
"""The label of a step with no target (a padded step in a per-step batch, a language model's
last token of a document): what `nn.CrossEntropyLoss` leaves out by default, and never a real
tag (tags are 0 .. C - 1)."""


@dataclass(frozen=True)
class SequenceSet:
    """A list of `(T_i, F)` float32 sequences (or `(T_i,)` int64 token ids), one label each
    (a class, or a `(horizon, n_targets)` float32 forecast target)."""

    sequences: list[np.ndarray]
    labels: np.ndarray

    def __post_init__(self) -> None:
        if len(self.sequences) != len(self.labels):
            raise ValueError("one label per sequence expected")

    def __len__(self) -> int:
        return len(self.sequences)

    @property
    def lengths(self) -> np.ndarray:
        return np.array([len(s) for s in self.sequences], dtype=np.int64)

    @classmethod
    def with_step_labels(cls, sequences: list[np.ndarray], tags: list[np.ndarray]) -> SequenceSet:
        """Sequences with one int64 tag per step; raises ValueError on a length mismatch."""
        labels = np.empty(len(tags), dtype=object)  # filled one by one: never a 2-D array
        for i, (sequence, steps) in enumerate(zip(sequences, tags, strict=True)):
            if len(steps) != len(sequence):
                raise ValueError(f"sequence {i}: {len(steps)} tags for {len(sequence)} steps")
            labels[i] = np.asarray(steps, dtype=np.int64)
        return cls(sequences, labels)

    @property
    def per_step(self) -> bool:
        """Whether the labels are one tag per step (tagging) rather than one per sequence."""
        return self.labels.dtype == object

    @property
    def n_features(self) -> int:
        return int(self.sequences[0].shape[1])

    @classmethod
    def concat(cls, parts: list[SequenceSet]) -> SequenceSet:
        """The parts' sequences and labels one after another (train + val, pooled)."""
        return cls(
            [s for part in parts for s in part.sequences],
            np.concatenate([part.labels for part in parts]),
        )

    @classmethod
    def load_splits(cls, processed: Path, names: tuple[str, ...]) -> SequenceSet:
        """The prepared splits `names` of the `processed` directory, one after another."""
        from seqops.layout import split_file

        return cls.concat([cls.load(processed / split_file(name)) for name in names])

    def subset(self, index: np.ndarray) -> SequenceSet:
        return SequenceSet([self.sequences[i] for i in index], self.labels[index])

    def save(self, path: str | Path) -> None:
        values = np.concatenate(self.sequences)
        values = values.astype(np.int64 if np.issubdtype(values.dtype, np.integer) else np.float32)
        if self.per_step:
            steps = np.concatenate(list(self.labels)).astype(np.int64)
            with open(path, "wb") as fh:
                np.savez(fh, values=values, lengths=self.lengths, step_labels=steps)
            return
        with open(path, "wb") as fh:
            np.savez(fh, values=values, lengths=self.lengths, labels=_label_dtype(self.labels))

    @classmethod
    def load(cls, path: str | Path) -> SequenceSet:
        with np.load(path, allow_pickle=False) as npz:
            values, lengths = npz["values"], npz["lengths"]
            per_step = "step_labels" in npz.files
            labels = npz["step_labels"] if per_step else npz["labels"]
        bounds = np.cumsum(lengths)[:-1]
        sequences = list(np.split(values, bounds))
        if per_step:
            return cls.with_step_labels(sequences, list(np.split(labels, bounds)))
        return cls(sequences, labels)


def _label_dtype(labels: np.ndarray) -> np.ndarray:
    """Classes as int64, forecast targets as float32."""
    return labels.astype(np.float32 if np.issubdtype(labels.dtype, np.floating) else np.int64)
