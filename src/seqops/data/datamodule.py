"""The Lightning datamodule over `data/processed/` (batches: `seqops.data.batches`).

Splits stored with per-step labels (`SequenceSet.per_step`, a tagger's) are batched with one
tag per step, padded with `IGNORE_INDEX`; the format on disk says which, so the trainer needs
no task argument."""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
import numpy as np
from torch.utils.data import DataLoader

from seqops.data.batches import Augment, loader
from seqops.data.sequences import SequenceSet
from seqops.layout import split_file
from seqops.tasks.base import TaskLoaders


class SequenceDataModule(pl.LightningDataModule):
    """Train / val / test loaders over the splits written by the prepare stage."""

    def __init__(
        self,
        processed_dir: str | Path,
        batch_size: int,
        seed: int,
        *,
        train_on: tuple[str, ...] = ("train",),
        epoch_examples: int = 0,
        augment: Augment | None = None,
        own: TaskLoaders | None = None,
    ) -> None:
        """`train_on`: the splits the training loader draws from (`("train", "val")` to refit
        on both once validation has chosen the epoch count); `augment` changes each training
        example as it is drawn; `own`: the task's own training and validation loaders
        (`TrainTask.loaders`: a language model's stateful windows) in place of padded batches."""
        super().__init__()
        self.processed_dir = Path(processed_dir)
        self.batch_size = batch_size
        self.seed = seed
        self.train_on = train_on
        self.epoch_examples = epoch_examples
        self.augment = augment or Augment()
        self.splits = {
            name: SequenceSet.load(self.processed_dir / split_file(name))
            for name in ("train", "val", "test")
        }
        self.per_step = self.splits["train"].per_step
        self.own = own

    def train_dataloader(self) -> DataLoader:
        if self.own is not None:
            return self.own.train()
        data = SequenceSet.concat([self.splits[name] for name in self.train_on])
        copies = -(-self.epoch_examples // len(data)) if self.epoch_examples > len(data) else 1
        if copies > 1:  # a tiny split: an epoch is `copies` shuffled passes over it
            data = SequenceSet(data.sequences * copies, np.concatenate([data.labels] * copies))
        rank = self.trainer.global_rank if self.trainer is not None else 0
        return loader(data, self.batch_size, shuffle=True, seed=self.seed, augment=self.augment,
                      augment_stream=rank, per_step=self.per_step)  # fmt: skip

    def val_dataloader(self) -> DataLoader:
        if self.own is not None:
            return self.own.val()
        return loader(self.splits["val"], self.batch_size, shuffle=False, per_step=self.per_step)

    def test_dataloader(self) -> DataLoader:
        return loader(self.splits["test"], self.batch_size, shuffle=False, per_step=self.per_step)
