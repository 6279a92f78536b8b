"""A trained unidirectional `SequenceNet` as a stream: one chunk of steps plus the recurrent
state in, the chunk's per-step outputs plus the new state out (the state carried by the caller).

    step = StepNet(net)                       # raises NotStreamable(reason) when it cannot
    h, c = step.initial_state(batch=2)        # zeros: (layers, B, H) each; c only for an LSTM
    out, h, c = step(x[:, :7], h, c)          # (B, 7, C): the outputs of steps 0..6
    out, h, c = step(x[:, 7:], h, c)          # steps 7.., exactly as if run in one call

The step module reuses the network's own submodules (input encoder, cells, head), so it is the
trained model and nothing else. It outputs one row per step: for a per-step network (a tagger)
its per-step outputs; for a pooled network with `pooling: last`, the head applied to the state
at each step, i.e. at step t the answer the full network gives for the sequence's first t + 1
steps. A chunk holds no padding: every sequence of a batch has all of the chunk's steps (a
caller with ragged chunks runs one call per length).

What cannot stream, and why (`streaming_reason`):
- a bidirectional cell: the backward direction starts at the sequence's last step;
- a convolutional input encoder: each encoder step reads the next `kernel - 1` input steps
  (and a stride > 1 shortens time), so a step's input is not known when it arrives;
- pooling `mean`, `max` or `attention`: the pooled vector is over every step's state, which the
  recurrent state alone does not hold. A running sum and count (mean), a running max (max) or an
  online softmax (attention) would make them exact, but the step graph carries the recurrent
  state only;
- a forecaster (a `horizon`): it is trained on windows of the last `lookback` steps, each read
  from a zero state; a state carried over the whole history answers a different question, so
  new observations cannot be folded in exactly without re-reading the window;
- a CRF tagger: its Viterbi path depends on later steps (a tag can change when the next step
  arrives), so per-chunk decisions would not be the full sequence's;
- an ensemble: its members' states would have to be carried side by side (not built).
"""

from __future__ import annotations

import torch
from torch import nn

from seqops.model.network import SequenceNet


class NotStreamable(ValueError):
    """The network cannot run as an exact stream; the message says why."""


def streaming_reason(net: nn.Module) -> str | None:
    """Why `net` cannot run as a stream, or None when `StepNet(net)` is exact."""
    if not isinstance(net, SequenceNet):
        return (
            f"{type(net).__name__}: only a single SequenceNet streams (an ensemble would carry "
            "each member's state side by side, not built)"
        )
    if net.bidirectional:
        return "bidirectional: the backward pass needs the whole sequence"
    if isinstance(net.encoder, nn.Conv1d):
        return (
            "encoder conv: each encoder step reads the next kernel - 1 input steps (and a "
            "stride above 1 shortens time), so a step cannot be answered when it arrives"
        )
    if net.horizon is not None:
        return (
            "forecaster: trained on windows of the last lookback steps read from a zero state; "
            "a state carried over the whole history is not what it learned, so new "
            "observations cannot be added exactly without re-reading the window"
        )
    if net.crf is not None:
        return "crf: the Viterbi path depends on later steps, so a chunk's tags are not final"
    if not net.per_step and net.pooling != "last":
        return (
            f"pooling {net.pooling}: the pooled vector reads every step's state, which the "
            "recurrent state does not hold (a running "
            + {"mean": "sum and count", "max": "max", "attention": "softmax"}[net.pooling]
            + " would make it exact; not carried by the step graph)"
        )
    return None


class StepNet(nn.Module):
    """See the module docstring: `(chunk, h[, c]) → (outputs, h_next[, c_next])`."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        reason = streaming_reason(net)
        if reason is not None:
            raise NotStreamable(reason)
        assert isinstance(net, SequenceNet)
        self.net = net
        self.lstm = isinstance(net.forward_cells[0], nn.LSTM)

    @property
    def layers(self) -> int:
        return len(self.net.forward_cells)

    @property
    def hidden_size(self) -> int:
        return self.net.hidden_size

    def initial_state(self, batch: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The state before a stream's first step: zeros, as the full network starts."""
        h = torch.zeros(self.layers, batch, self.hidden_size)
        return h, (torch.zeros_like(h) if self.lstm else None)

    def forward(
        self, x: torch.Tensor, h: torch.Tensor, c: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, ...]:
        """`x` (B, T, F) floats, (B, T) token ids or (B, T, 1 + W) packed ids; `h` and for an
        LSTM `c` (layers, B, H) → outputs (B, T, C), then `h_next` (and `c_next`)."""
        net = self.net
        chars = None
        if net.embedding is not None and x.dim() == 3:  # packed: word id, then its characters
            x, chars = x[..., 0], (x[..., 1:] if net.characters is not None else None)
        # `lengths` is read by the conv encoder only, which cannot stream.
        steps = net.embed(x, torch.zeros(0, dtype=torch.int64), chars)  # (B, T, D)
        next_h, next_c = [], []
        for i, cell in enumerate(net.forward_cells):
            if self.lstm:
                assert c is not None
                steps, (h_i, c_i) = cell(steps, (h[i : i + 1], c[i : i + 1]))  # (B, T, H)
                next_c.append(c_i)
            else:
                steps, h_i = cell(steps, h[i : i + 1])
            next_h.append(h_i)  # (1, B, H)
        out = net.head(steps)  # (B, T, C)
        if self.lstm:
            return out, torch.cat(next_h), torch.cat(next_c)
        return out, torch.cat(next_h)
