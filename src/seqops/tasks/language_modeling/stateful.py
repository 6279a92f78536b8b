"""Stateful truncated-BPTT training and evaluation over `StreamBatches` (torch).

    model = NetworkStream(net)                     # (tokens, state) → (logits, state)
    stats = train_epoch(model, batches, optimizer, clip_norm=0.25)
    nll, n = evaluate_nll(model, StreamBatches(test_ids, 2, 1000, cut=False))

A `StreamModel` maps a window's tokens `(B, T)` and the recurrent state (a tuple of tensors
with the batch on dim 1, as `torch.nn.LSTM` keeps it; None for zeros) to logits `(B, T, V)`
and the state after the window. Between windows the state is carried to the next window of
the same row, detached from the graph (backpropagation is truncated at the window edge), and
zeroed for each row whose window starts a new stream (`Window.reset`: a document's start, see
`batching`). The loss is the mean next-token cross-entropy over the window's real targets.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from seqops.model.network import RecurrentState, SequenceNet
from seqops.tasks.language_modeling.batching import IGNORE, StreamBatches, Window

#: `(tokens (B, T) int64, state or None) → (logits (B, T, V), state after the window)`.
StreamModel = Callable[[torch.Tensor, RecurrentState | None], tuple[torch.Tensor, RecurrentState]]


@dataclass(frozen=True)
class EpochStats:
    nll: float
    """Summed next-token negative log-likelihood (nats) over the real targets."""
    n_targets: int
    windows: int

    @property
    def loss(self) -> float:
        """Mean NLL per target (nats)."""
        return self.nll / max(self.n_targets, 1)


class NetworkStream(nn.Module):
    """A unidirectional per-step `SequenceNet` over token ids as a `StreamModel`. Every row is
    read as the window's full length: padding only ends a document, and that row's state is
    reset before its next window, so what the padding does to the state is never used."""

    def __init__(self, net: SequenceNet) -> None:
        super().__init__()
        self.net = net

    def forward(
        self, tokens: torch.Tensor, state: RecurrentState | None
    ) -> tuple[torch.Tensor, RecurrentState]:
        lengths = torch.full((tokens.shape[0],), tokens.shape[1], dtype=torch.int64)
        return self.net.forward_with_state(tokens, lengths, state)


def reset_rows(state: RecurrentState | None, reset: torch.Tensor) -> RecurrentState | None:
    """`state` with the rows where `reset` `(B,)` is True zeroed (None stays None: zeros)."""
    if not state:  # None, or () from a transformer (no state)
        return state
    keep = (~reset).to(state[0].dtype).view(1, -1, 1)  # (1, B, 1): batch on dim 1
    return tuple(s * keep for s in state)


def detach(state: RecurrentState) -> RecurrentState:
    """The same values, cut from the graph: gradients stop at the window's edge."""
    return tuple(s.detach() for s in state)


def _tensors(window: Window) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return (
        torch.from_numpy(window.inputs),
        torch.from_numpy(window.targets),
        torch.from_numpy(window.reset),
    )


def _window_nll(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Summed cross-entropy (nats) over the real targets of `(B, T, V)` logits."""
    return nn.functional.cross_entropy(
        logits.reshape(-1, logits.shape[-1]),
        targets.reshape(-1),
        ignore_index=IGNORE,
        reduction="sum",
    )


def train_epoch(
    model: StreamModel,
    batches: StreamBatches,
    optimizer: torch.optim.Optimizer,
    *,
    clip_norm: float | None = None,
    parameters: list[nn.Parameter] | None = None,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
    stop: Callable[[], bool] | None = None,
) -> EpochStats:
    """One pass of truncated BPTT over `batches`; one optimizer step per window with real
    targets, and a `scheduler` step after each. `clip_norm` clips the gradient norm of
    `parameters` (default: the optimizer's); `stop()` is asked before each window (a time
    budget) and ends the epoch early."""
    if isinstance(model, nn.Module):
        model.train()
    params = parameters or [p for g in optimizer.param_groups for p in g["params"]]
    state: RecurrentState | None = None
    total, count, windows = 0.0, 0, 0
    for window in batches:
        if stop is not None and stop():
            break
        inputs, targets, reset = _tensors(window)
        real = int((targets != IGNORE).sum())
        logits, state = model(inputs, reset_rows(state, reset))
        state = detach(state)
        if real == 0:
            continue
        nll = _window_nll(logits, targets)
        optimizer.zero_grad(set_to_none=True)
        (nll / real).backward()
        if clip_norm is not None:
            nn.utils.clip_grad_norm_(params, clip_norm)
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        total, count, windows = total + float(nll.detach()), count + real, windows + 1
    return EpochStats(total, count, windows)


@torch.no_grad()
def evaluate_nll(model: StreamModel, batches: StreamBatches) -> tuple[float, int]:
    """Summed NLL (nats) and the number of scored targets, the state carried as in training
    (use `cut=False` batches so each document is read from its start)."""
    if isinstance(model, nn.Module):
        model.eval()
    state: RecurrentState | None = None
    total, count = 0.0, 0
    for window in batches:
        inputs, targets, reset = _tensors(window)
        logits, state = model(inputs, reset_rows(state, reset))
        total += float(_window_nll(logits, targets))
        count += int((targets != IGNORE).sum())
    return total, count
