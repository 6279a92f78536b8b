"""Padded batches for training and evaluation (no Lightning: evaluate and export use them too).

A batch is `(x, lengths, y)`: `x` float32 `(B, T, F)` zero-padded to the longest sequence in
the batch (or int64 token ids `(B, T)` padded with id 0 for text, `(B, T, 1 + W)` for a
tagger's tokens packed with their characters), `lengths` int64 `(B,)`,
`y` int64 classes `(B,)` or float32 forecast targets `(B, horizon, n_targets)`, or with
`per_step` one int64 tag per step `(B, T)`, padded with `IGNORE_INDEX`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from seqops.data.sequences import IGNORE_INDEX, SequenceSet

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


def pad_batch(sequences: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """Zero-pad `(T_i, F)` arrays into `(B, max T, F)` (token ids `(T_i,)` into `(B, max T)`,
    a tagger's packed tokens `(T_i, 1 + W)` int64 into `(B, max T, 1 + W)`) plus their
    lengths."""
    lengths = torch.tensor([len(s) for s in sequences], dtype=torch.int64)
    if sequences[0].ndim == 1 or np.issubdtype(sequences[0].dtype, np.integer):
        # token ids (and their character ids); 0 is the padding id
        shape = (len(sequences), int(lengths.max()), *sequences[0].shape[1:])
        tokens = torch.zeros(shape, dtype=torch.int64)
        for i, s in enumerate(sequences):
            tokens[i, : len(s)] = torch.from_numpy(np.asarray(s, dtype=np.int64))
        return tokens, lengths
    x = torch.zeros(len(sequences), int(lengths.max()), sequences[0].shape[1])
    for i, s in enumerate(sequences):
        x[i, : len(s)] = torch.from_numpy(np.asarray(s, dtype=np.float32))
    return x, lengths


@dataclass(frozen=True)
class Augment:
    """Random changes to a training example each time it is drawn (`train.augment_*`):
    a window of at least `1 - crop` of its steps, each feature scaled by a factor from
    N(1, `scale`), then Gaussian noise of std `noise` on every value, for float features
    `(T, F)` (the config allows it for sequence classification only). The identity when all
    three are 0."""

    noise: float = 0.0
    scale: float = 0.0
    crop: float = 0.0

    def __bool__(self) -> bool:
        return bool(self.noise or self.scale or self.crop)

    def __call__(self, sequence: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if self.crop:
            steps = len(sequence)
            keep = max(1, int(np.ceil(steps * rng.uniform(1.0 - self.crop, 1.0))))
            start = int(rng.integers(0, steps - keep + 1))
            sequence = sequence[start : start + keep]
        out = np.asarray(sequence, dtype=np.float32)
        if self.scale:
            out = out * rng.normal(1.0, self.scale, size=(1, out.shape[1])).astype(np.float32)
        if self.noise:
            out = out + rng.normal(0.0, self.noise, size=out.shape).astype(np.float32)
        return out


class _SequenceDataset(Dataset[tuple[np.ndarray, np.ndarray]]):
    def __init__(self, data: SequenceSet, augment: Augment, seed: int, stream: int) -> None:
        self.data = data
        self.augment = augment
        # One stream per process, drawn in loading order; DDP rank r > 0 draws its own.
        self.rng = np.random.default_rng(seed if stream == 0 else [seed, stream])

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        sequence = self.data.sequences[i]
        if self.augment:
            sequence = self.augment(sequence, self.rng)
        return sequence, self.data.labels[i]


def collate(items: list[tuple[np.ndarray, np.ndarray]]) -> Batch:
    """Classes stay int64 `(B,)`; forecast targets stack to float32 `(B, H, K)`."""
    x, lengths = pad_batch([s for s, _ in items])
    return x, lengths, torch.from_numpy(np.stack([np.asarray(y) for _, y in items]))


def collate_per_step(items: list[tuple[np.ndarray, np.ndarray]]) -> Batch:
    """Per-step labels: each example's `(T_i,)` tags padded with `IGNORE_INDEX` to int64
    `(B, max T)`, aligned with the padded inputs."""
    x, lengths = pad_batch([s for s, _ in items])
    y = torch.full((len(items), x.shape[1]), IGNORE_INDEX, dtype=torch.int64)
    for i, (sequence, tags) in enumerate(items):
        if len(tags) != len(sequence):
            raise ValueError(f"example {i}: {len(tags)} tags for {len(sequence)} steps")
        y[i, : len(tags)] = torch.from_numpy(np.asarray(tags, dtype=np.int64))
    return x, lengths, y


def loader(
    data: SequenceSet,
    batch_size: int,
    *,
    shuffle: bool,
    seed: int = 0,
    augment: Augment = Augment(),
    augment_stream: int = 0,
    per_step: bool = False,
) -> DataLoader:
    """Batches of `data`; `augment` (training only) changes each example as it is drawn,
    from a random stream of `seed` and `augment_stream` (the DDP rank: ranks differ).
    `per_step`: labels are one tag per step (`collate_per_step`), not one per sequence."""
    if per_step and augment.crop:
        raise ValueError("augment crop drops steps, which per-step labels cannot follow")
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(
        _SequenceDataset(data, augment, seed, augment_stream),
        batch_size=batch_size,
        shuffle=shuffle,
        collate_fn=collate_per_step if per_step else collate,
        generator=generator,
    )
