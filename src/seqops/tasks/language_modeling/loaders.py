"""Stateful truncated-BPTT loaders for Lightning: `StreamBatches` windows as batches (torch).

    own = StreamLoaders(processed, batch_size=16, bptt=64, seed=42)
    own.train()    # DataLoader of (tokens (B, T), reset (B,), targets (B, T)); new order each epoch
    own.val()      # the validation documents read whole from their starts, never shuffled

Each batch is one window of B continuous rows (`batching`); the system carries each row's
recurrent state from one batch to the next, zeroing it where `reset` says a stream starts
(`LitSequenceModel`, objective `next_token`). Training deals the documents to the rows in a
new seeded order each epoch (`cut=True`), so the cuts between rows move; validation keeps each
document whole in one row (`cut=False`), so every token is scored with its document's whole
history, and the logged `val/loss` is the mean NLL per validation token.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset

from seqops.tasks.base import TaskLoaders
from seqops.tasks.language_modeling.batching import StreamBatches
from seqops.tasks.language_modeling.meta import streams_file
from seqops.tasks.language_modeling.streams import load_streams

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


class WindowStream(IterableDataset[Batch]):
    """The windows of `documents`; with `shuffle_seed`, epoch e deals them in the order of a
    permutation drawn from `(seed, e)`, so runs repeat and each epoch differs."""

    def __init__(
        self,
        documents: list[np.ndarray],
        batch_size: int,
        bptt: int,
        *,
        cut: bool,
        shuffle_seed: int | None = None,
    ) -> None:
        self.documents, self.batch_size, self.bptt = documents, batch_size, bptt
        self.cut, self.shuffle_seed = cut, shuffle_seed
        self.epoch = 0
        self.batches = StreamBatches(documents, batch_size, bptt, cut=cut)  # refuses bad input

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self) -> Iterator[Batch]:
        batches = self.batches
        if self.shuffle_seed is not None:
            order = np.random.default_rng([self.shuffle_seed, self.epoch]).permutation(
                len(self.documents)
            )
            batches = StreamBatches(
                [self.documents[i] for i in order], self.batch_size, self.bptt, cut=self.cut
            )
        self.epoch += 1
        for window in batches:
            yield (
                torch.from_numpy(window.inputs),
                torch.from_numpy(window.reset),
                torch.from_numpy(window.targets),
            )


class StreamLoaders(TaskLoaders):
    """The training and validation loaders of a language model's processed data."""

    def __init__(
        self,
        processed: Path,
        batch_size: int,
        bptt: int,
        seed: int,
        train_on: tuple[str, ...] = ("train",),
    ) -> None:
        self.documents = {
            split: load_streams(processed / streams_file(split))[1] for split in {*train_on, "val"}
        }
        self.train_docs = [d for split in train_on for d in self.documents[split]]
        self.batch_size, self.bptt, self.seed = batch_size, bptt, seed

    def train(self) -> DataLoader[Batch]:
        stream = WindowStream(
            self.train_docs, self.batch_size, self.bptt, cut=True, shuffle_seed=self.seed
        )
        return DataLoader(stream, batch_size=None)

    def val(self) -> DataLoader[Batch]:
        rows = min(self.batch_size, len(self.documents["val"]))
        stream = WindowStream(self.documents["val"], rows, self.bptt, cut=False)
        return DataLoader(stream, batch_size=None)
