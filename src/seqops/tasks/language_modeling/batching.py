"""Stateful truncated-BPTT batching: documents laid out as B continuous streams of windows.

    batches = StreamBatches([vocab.encode(d.text) for d in splits.train], batch_size=32, bptt=100)
    for window in batches:        # window.inputs, window.targets (B, T) int64; window.reset (B,)
        ...                       # zero row r's recurrent state first where window.reset[r]

A document of n tokens is n - 1 next-token pairs (inputs `doc[:-1]`, targets `doc[1:]`): its
first token is context only, never a target (the n-gram baseline scores the same positions).
The pairs are cut into windows of `bptt` steps, each starting at a multiple of `bptt` within
its document; a document's last window is filled with `PAD_ID` inputs and `IGNORE` targets.

Windows never span two documents, so the state needs resetting only *at a window's start*:
`reset[r]` is True exactly where row r's window begins a document (or begins the row, or is
an empty filler window), and the state is zeroed there, before the window runs. That is
exact, and it keeps the fused recurrent cell: no reset in the middle of a window. What it
costs is the padding of each document's last window (under `bptt` tokens per document).

Row r's window k + 1 continues exactly where its window k stopped (the next `bptt` pairs of
the same document) unless it begins a new stream (`reset`). Two layouts:

- `cut=True` (training): the windows of all documents, in the given order, are dealt to the
  B rows as B contiguous runs of (nearly) equal length, as in the usual `batchify` of
  language-model training; a run that starts inside a document starts from a zero state
  (a cut, at most B - 1 of them). Shuffle the document order between epochs to move them.
- `cut=False` (evaluation): whole documents go to rows (longest first, each to the row with
  the fewest windows so far), so every token is scored with its document's whole history.
  Rows that run out early get empty windows (all targets `IGNORE`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import pairwise

import numpy as np

from seqops.errors import DataError
from seqops.tasks.language_modeling.vocab import PAD_ID

#: The target of a step that predicts nothing (padding), as `torch.nn.functional.cross_entropy`
#: expects for `ignore_index`.
IGNORE = -100


@dataclass(frozen=True)
class Window:
    inputs: np.ndarray
    """`(B, T)` int64 token ids; `PAD_ID` past a document's end."""
    targets: np.ndarray
    """`(B, T)` int64 next-token ids; `IGNORE` where the input is padding."""
    reset: np.ndarray
    """`(B,)` bool: zero the row's state before this window (a new stream starts here)."""


@dataclass(frozen=True)
class _Slot:
    document: int
    start: int
    """The first pair's index within the document (a multiple of `bptt`)."""


class StreamBatches:
    """See the module docstring. Iterating yields `Window`s; iterating again repeats them."""

    def __init__(
        self, documents: Sequence[np.ndarray], batch_size: int, bptt: int, *, cut: bool = True
    ) -> None:
        if batch_size < 1 or bptt < 1:
            raise DataError(f"batch_size and bptt must be >= 1, got {batch_size} and {bptt}")
        self.documents = [np.asarray(d, dtype=np.int64) for d in documents]
        self.batch_size, self.bptt = batch_size, bptt
        slots = [
            [_Slot(i, start) for start in range(0, len(doc) - 1, bptt)]
            for i, doc in enumerate(self.documents)
        ]
        if not any(slots):
            raise DataError("no document has two tokens: nothing to predict")
        self.rows = _cut(slots, batch_size) if cut else _whole(slots, batch_size)
        self.n_windows = max(len(row) for row in self.rows)

    @property
    def n_targets(self) -> int:
        """Real targets over all windows: the scored tokens."""
        return sum(max(len(doc) - 1, 0) for doc in self.documents)

    def __len__(self) -> int:
        return self.n_windows

    def __iter__(self) -> Iterator[Window]:
        for k in range(self.n_windows):
            yield self.window(k)

    def window(self, k: int) -> Window:
        shape = (self.batch_size, self.bptt)
        inputs = np.full(shape, PAD_ID, dtype=np.int64)
        targets = np.full(shape, IGNORE, dtype=np.int64)
        reset = np.ones(self.batch_size, dtype=bool)
        for r, row in enumerate(self.rows):
            if k >= len(row):
                continue  # an empty filler window: all IGNORE, state zeroed
            slot = row[k]
            doc = self.documents[slot.document]
            stop = min(slot.start + self.bptt, len(doc) - 1)
            inputs[r, : stop - slot.start] = doc[slot.start : stop]
            targets[r, : stop - slot.start] = doc[slot.start + 1 : stop + 1]
            reset[r] = k == 0 or slot.start == 0
        return Window(inputs, targets, reset)


def _cut(slots: list[list[_Slot]], batch_size: int) -> list[list[_Slot]]:
    """All windows in document order, dealt as `batch_size` contiguous runs."""
    flat = [slot for doc in slots for slot in doc]
    bounds = np.linspace(0, len(flat), batch_size + 1).round().astype(int)
    return [flat[a:b] for a, b in pairwise(bounds)]


def _whole(slots: list[list[_Slot]], batch_size: int) -> list[list[_Slot]]:
    """Whole documents to rows, longest first, each to the shortest row (ties: lowest row)."""
    rows: list[list[_Slot]] = [[] for _ in range(batch_size)]
    for doc in sorted((d for d in slots if d), key=len, reverse=True):
        min(rows, key=len).extend(doc)
    return rows
