"""Stateful TBPTT: every batch row is one continuous stream (window k + 1 continues where
window k stopped), every next-token pair is a target exactly once, and the recurrent state is
carried across windows, detached between them, and zeroed exactly where a document starts;
a SequenceNet fed its own state chunk by chunk gives the whole sequence's outputs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from seqops.errors import DataError
from seqops.model.network import SequenceNet
from seqops.tasks.language_modeling.batching import IGNORE, StreamBatches
from seqops.tasks.language_modeling.stateful import (
    NetworkStream,
    evaluate_nll,
    train_epoch,
)
from seqops.tasks.language_modeling.vocab import PAD_ID

LENGTHS = [1, 2, 7, 13, 30, 4, 9]
#: Token 100 * d + 1 + p is position p of document d: a window shows where it reads from.
DOCS = [100 * d + 1 + np.arange(n) for d, n in enumerate(LENGTHS)]


def _where(token: int) -> tuple[int, int]:
    return (token - 1) // 100, (token - 1) % 100


@pytest.mark.parametrize("cut", [True, False])
@pytest.mark.parametrize(("batch_size", "bptt"), [(3, 4), (1, 5), (4, 1), (8, 30)])
def test_rows_are_continuous_streams(cut: bool, batch_size: int, bptt: int) -> None:
    batches = StreamBatches(DOCS, batch_size, bptt, cut=cut)
    windows = list(batches)
    assert len(windows) == len(batches)
    seen: list[tuple[int, int]] = []
    for k, w in enumerate(windows):
        assert w.inputs.shape == w.targets.shape == (batch_size, bptt)
        assert ((w.inputs == PAD_ID) == (w.targets == IGNORE)).all()
        for r in range(batch_size):
            real = w.targets[r] != IGNORE
            if not real.any():
                assert w.reset[r]  # an empty filler window starts from zeros
                continue
            # Padding only at the end of a document's last window.
            n = int(real.sum())
            assert real[:n].all()
            doc, pos = _where(int(w.inputs[r, 0]))
            assert w.inputs[r, :n].tolist() == DOCS[doc][pos : pos + n].tolist()
            assert w.targets[r, :n].tolist() == DOCS[doc][pos + 1 : pos + n + 1].tolist()
            seen += [(doc, pos + t) for t in range(n)]
            assert pos % bptt == 0  # windows start at multiples of bptt within a document
            if pos == 0 or k == 0:
                assert w.reset[r]
            else:  # no reset: continues the previous window of the same row exactly
                assert not w.reset[r]
                before = windows[k - 1]
                assert before.targets[r, -1] == w.inputs[r, 0]
                assert _where(int(before.inputs[r, -1])) == (doc, pos - 1)
    expected = [(d, p) for d, n in enumerate(LENGTHS) for p in range(n - 1)]
    assert sorted(seen) == expected  # every pair a target exactly once
    assert batches.n_targets == len(expected)


def test_evaluation_layout_never_cuts_a_document() -> None:
    batches = StreamBatches(DOCS, 3, 4, cut=False)
    for w in batches:
        for r in range(3):
            if w.reset[r] and (w.targets[r] != IGNORE).any():
                assert _where(int(w.inputs[r, 0]))[1] == 0


def test_training_layout_balances_rows() -> None:
    batches = StreamBatches(DOCS, 3, 4, cut=True)
    total = sum(math.ceil((n - 1) / 4) for n in LENGTHS)
    sizes = [len(row) for row in batches.rows]
    assert sum(sizes) == total and max(sizes) - min(sizes) <= 1


def test_bad_batching() -> None:
    with pytest.raises(DataError, match="nothing to predict"):
        StreamBatches([np.array([3]), np.array([], dtype=np.int64)], 2, 4)
    with pytest.raises(DataError, match="must be >= 1"):
        StreamBatches(DOCS, 0, 4)


class StepCounter(nn.Module):
    """A stream model whose state counts the steps it has read since it was last zeroed; it
    records the state each window starts from, and whether that state is cut from the graph."""

    def __init__(self, vocab: int) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(vocab))
        self.starts: list[np.ndarray] = []
        self.detached: list[bool] = []

    def forward(
        self, tokens: torch.Tensor, state: tuple[torch.Tensor, ...] | None
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        batch, time = tokens.shape
        h = torch.zeros(1, batch, 1) if state is None else state[0]
        self.starts.append(h[0, :, 0].detach().numpy().copy())
        self.detached.append(not h.requires_grad)
        logits = self.bias.expand(batch, time, -1)
        # The new state depends on the parameters, so only an explicit detach cuts it.
        return logits, (h + time + 0.0 * self.bias.sum(),)


def _expected_starts(batches: StreamBatches) -> list[np.ndarray]:
    """Steps read since the stream began: the position in the document, minus where the row
    entered it (a cut row starts from zeros in the middle of a document)."""
    expected, entered = [], np.zeros(batches.batch_size)
    for k, w in enumerate(batches):
        starts = np.zeros(batches.batch_size)
        for r in range(batches.batch_size):
            if (w.targets[r] != IGNORE).any():
                pos = _where(int(w.inputs[r, 0]))[1]
                if w.reset[r]:
                    entered[r] = pos
                starts[r] = pos - entered[r]
        expected.append(starts)
        assert k < len(batches)
    return expected


@pytest.mark.parametrize("cut", [True, False])
def test_state_carried_detached_and_reset_at_document_starts(cut: bool) -> None:
    batches = StreamBatches(DOCS, 3, 4, cut=cut)
    model = StepCounter(vocab=100 * len(DOCS) + 1)
    stats = train_epoch(model, batches, torch.optim.SGD(model.parameters(), lr=0.1))
    assert stats.n_targets == batches.n_targets and stats.windows == len(batches)
    np.testing.assert_array_equal(np.stack(model.starts), np.stack(_expected_starts(batches)))
    assert all(model.detached)
    if not cut:  # whole documents: the state at a window is its position in the document
        for w, start in zip(batches, model.starts, strict=True):
            real = (w.targets != IGNORE).any(axis=1)
            positions = [_where(int(t))[1] for t in w.inputs[real, 0]]
            assert start[real].tolist() == positions


def test_one_optimizer_and_scheduler_step_per_window_until_stopped() -> None:
    batches = StreamBatches(DOCS, 2, 3)
    model = StepCounter(vocab=100 * len(DOCS) + 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 0.5**step)
    stats = train_epoch(model, batches, optimizer, scheduler=scheduler)
    assert stats.windows == len(batches)
    assert optimizer.param_groups[0]["lr"] == 0.5 ** len(batches)
    before = len(model.starts)
    stopped = train_epoch(model, batches, optimizer, stop=lambda: len(model.starts) >= before + 2)
    assert stopped.windows == 2 and stopped.n_targets < batches.n_targets


def test_evaluation_counts_every_target_once() -> None:
    vocab = 100 * len(DOCS) + 1
    model = StepCounter(vocab)
    nll, n = evaluate_nll(model, StreamBatches(DOCS, 2, 3, cut=False))
    assert n == sum(n - 1 for n in LENGTHS)
    assert nll == pytest.approx(n * math.log(vocab))  # uniform logits


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_network_state_carried_chunk_by_chunk_equals_one_pass(cell: str) -> None:
    torch.manual_seed(0)
    net = SequenceNet(
        0, 11, cell=cell, hidden_size=8, num_layers=2, vocab_size=11, per_step=True,
        bidirectional=False,
    )  # fmt: skip
    net.eval()
    tokens = torch.randint(1, 11, (2, 12))
    lengths = torch.full((2,), 12)
    whole, final = net.forward_with_state(tokens, lengths)
    assert len(final) == (2 if cell == "lstm" else 1) and final[0].shape == (2, 2, 8)
    torch.testing.assert_close(whole, net(tokens, lengths), rtol=0, atol=0)
    state = None
    parts = []
    for chunk in tokens.split(5, dim=1):
        out, state = net.forward_with_state(chunk, torch.full((2,), chunk.shape[1]), state)
        parts.append(out)
    torch.testing.assert_close(torch.cat(parts, dim=1), whole, rtol=1e-6, atol=1e-6)
    assert state is not None
    torch.testing.assert_close(torch.stack(state), torch.stack(final), rtol=1e-6, atol=1e-6)


def test_network_stream_scores_a_document_as_one_pass() -> None:
    torch.manual_seed(0)
    net = SequenceNet(0, 9, hidden_size=8, vocab_size=9, per_step=True, bidirectional=False)
    doc = np.array([2, 3, 4, 5, 3, 2, 8, 7, 6, 5, 4, 3, 2, 5])
    stream = NetworkStream(net)
    nll, n = evaluate_nll(stream, StreamBatches([doc], 1, 4, cut=False))
    logits = net(torch.from_numpy(doc[None, :-1]), torch.tensor([len(doc) - 1]))
    whole = nn.functional.cross_entropy(logits[0], torch.from_numpy(doc[1:]), reduction="sum")
    assert n == len(doc) - 1
    assert nll == pytest.approx(float(whole), rel=1e-6)


def test_stateful_call_refused_for_bidirectional() -> None:
    net = SequenceNet(0, 5, vocab_size=5, per_step=True, bidirectional=True, hidden_size=4)
    with pytest.raises(ValueError, match="unidirectional per-step"):
        net.forward_with_state(torch.ones(1, 3, dtype=torch.int64), torch.tensor([3]))
