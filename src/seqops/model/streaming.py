"""A trained unidirectional `SequenceNet` as a stream: one chunk of steps plus the carried
state in, the chunk's per-step outputs plus the new state out (the state carried by the caller).

    step = StepNet(net)                       # raises NotStreamable(reason) when it cannot
    state = step.initial_state(batch=2)       # [h, c] (layers, B, H) each; c only for an LSTM
    out, *state = step(x[:, :7], *state)      # (B, 7, C): the outputs of steps 0..6
    out, *state = step(x[:, 7:], *state)      # steps 7.., exactly as if run in one call

The step module reuses the network's own submodules (input encoder, cells, attention, head), so
it is the trained model and nothing else. It outputs one row per step: for a per-step network
(a tagger) its per-step outputs; for a pooled network the head applied to the sequence pooled
up to each step, i.e. at step t the answer the full network gives for the sequence's first
t + 1 steps. A chunk holds no padding: every sequence of a batch has all of the chunk's steps
(a caller with ragged chunks runs one call per length).

The state (`state_shapes`, in the graph's input order, each `(rows, B, width)`): `h` and for an
LSTM `c`, `(layers, B, H)`, then what the pooling needs to go on (`onnx_contract.POOL_STATES`):
- `last`: nothing more, the top layer's state is the pooled vector;
- `mean`: the running sum of the top layer's states and the step count;
- `attention`: an online softmax (as in FlashAttention): the sums of `exp(score - m)` and of
  `exp(score - m) * state` over the steps so far, scaled to a reference score `m` that is
  raised to the highest score seen (and the sums rescaled by `exp(m_old - m_new)`); their ratio
  is the attention-pooled vector, exactly, whatever `m` is.

What cannot stream, and why (`streaming_reason`):
- a transformer: step t attends to every earlier step, so its state is the keys and values of
  all the steps so far (growing with the stream), not a fixed-size state a step graph carries;
- a bidirectional cell: the backward direction starts at the sequence's last step;
- a convolutional input encoder: each encoder step reads the next `kernel - 1` input steps
  (and a stride > 1 shortens time), so a step's input is not known when it arrives;
- pooling `max`: a running max per step within a chunk needs a cumulative max, which ONNX has
  no operator for (the last step's max alone would not give the per-step outputs);
- a forecaster (a `horizon`): it is trained on windows of the last `lookback` steps, each read
  from a zero state; a state carried over the whole history answers a different question, so
  new observations cannot be folded into a recurrent state exactly. It streams by its window
  instead: the state a client carries is the last `lookback` (+ lag) observations
  (`seqops.stream_serving.WindowLayout`), so a request sends only the new ones;
- a CRF tagger: its Viterbi path depends on later steps (a tag can change when the next step
  arrives), so per-chunk decisions would not be the full sequence's;
- a random-kernel or n-gram path (`model.kernel_features`, `model.ngram_buckets`): its
  features are counted over the whole sequence; carrying those counts is not built;
- an ensemble: its members' states would have to be carried side by side (not built).
"""

from __future__ import annotations

import torch
from torch import nn

from seqops import onnx_contract as contract
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
    if net.transformer is not None:
        return (
            "transformer: each step attends to every earlier step, so the state would be the "
            "keys and values of the whole stream so far (growing), not a fixed-size state"
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
            "a recurrent state carried over the whole history is not what it learned. It "
            "streams by its window instead: the stream state carries the last lookback (+ lag) "
            "observations, so a request sends only the new ones (no step graph needed)"
        )
    if net.crf is not None:
        return "crf: the Viterbi path depends on later steps, so a chunk's tags are not final"
    if net.kernels is not None or net.ngrams is not None:
        return (
            "kernel or n-gram path: its features are counted over the whole sequence, and "
            "the step graph does not carry those counts (not built)"
        )
    if not net.per_step and net.pooling == "max":
        return (
            "pooling max: each step's answer needs a running max over the chunk's steps, which "
            "ONNX has no cumulative-max operator for"
        )
    return None


class StepNet(nn.Module):
    """See the module docstring: `(chunk, *state) → (outputs, *next state)`."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        reason = streaming_reason(net)
        if reason is not None:
            raise NotStreamable(reason)
        assert isinstance(net, SequenceNet)
        self.net = net
        self.lstm = isinstance(net.forward_cells[0], nn.LSTM)
        self.pooling = "last" if net.per_step else net.pooling

    @property
    def layers(self) -> int:
        return len(self.net.forward_cells)

    def state_shapes(self) -> dict[str, tuple[int, int]]:
        """Each state's name and `(rows, width)` (it is `(rows, B, width)`), in input order."""
        hidden = self.net.hidden_size
        shapes = {contract.STATE_H: (self.layers, hidden)}
        if self.lstm:
            shapes[contract.STATE_C] = (self.layers, hidden)
        widths = {contract.POOL_SUM: hidden, contract.POOL_WEIGHTED: hidden}
        for name in contract.POOL_STATES[self.pooling]:
            shapes[name] = (1, widths.get(name, 1))
        return shapes

    def initial_state(self, batch: int) -> list[torch.Tensor]:
        """The state before a stream's first step, as the full network starts."""
        return [
            torch.full((rows, batch, width), contract.initial_state(name))
            for name, (rows, width) in self.state_shapes().items()
        ]

    def forward(self, x: torch.Tensor, *state: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """`x` (B, T, F) floats, (B, T) token ids or (B, T, 1 + W) packed ids, and the state
        (`state_shapes`) → outputs (B, T, C), then the state after the chunk's last step."""
        net = self.net
        chars = None
        if net.embedding is not None and x.dim() == 3:  # packed: word id, then its characters
            x, chars = x[..., 0], (x[..., 1:] if net.characters is not None else None)
        # `lengths` is read by the conv encoder only, which cannot stream.
        steps = net.embed(x, torch.zeros(0, dtype=torch.int64), chars)  # (B, T, D)
        h, c = state[0], (state[1] if self.lstm else None)
        next_h, next_c = [], []
        for i, cell in enumerate(net.forward_cells):
            if c is not None:
                steps, (h_i, c_i) = cell(steps, (h[i : i + 1], c[i : i + 1]))  # (B, T, H)
                next_c.append(c_i)
            else:
                steps, h_i = cell(steps, h[i : i + 1])
            next_h.append(h_i)  # (1, B, H)
        recurrent = [torch.cat(next_h), *([torch.cat(next_c)] if c is not None else [])]
        pooled, pool_state = self.pool(steps, state[len(recurrent) :])
        return (net.head(pooled), *recurrent, *pool_state)  # (B, T, C), then the state

    def pool(
        self, steps: torch.Tensor, state: tuple[torch.Tensor, ...]
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The pooled vector at every step `(B, T, D)` from the top layer's states `steps`
        and the running pooling state (see the module docstring), and that state after the
        chunk."""
        if self.pooling == "last":
            return steps, []
        if self.pooling == "mean":
            total, count = state  # (1, B, D), (1, B, 1)
            sums = total.transpose(0, 1) + torch.cumsum(steps, dim=1)  # (B, T, D)
            counts = count.transpose(0, 1) + torch.cumsum(torch.ones_like(steps[..., :1]), 1)
            # `[:, -1].unsqueeze(0)`, not `[:, -1:]`: the exporter knows the 1 is fixed.
            return sums / counts, [sums[:, -1].unsqueeze(0), counts[:, -1].unsqueeze(0)]
        assert self.net.attention is not None
        reference, weight, weighted = (s.transpose(0, 1) for s in state)  # (B, 1, ·)
        scores = self.net.attention(steps)  # (B, T, 1)
        top = torch.maximum(reference, scores.amax(dim=1, keepdim=True))  # (B, 1, 1)
        rescale = torch.exp(reference - top)  # 0 before a stream's first step
        e = torch.exp(scores - top)  # (B, T, 1), at most 1
        weights = weight * rescale + torch.cumsum(e, dim=1)  # (B, T, 1)
        sums = weighted * rescale + torch.cumsum(e * steps, dim=1)  # (B, T, D)
        after = [top.transpose(0, 1), weights[:, -1].unsqueeze(0), sums[:, -1].unsqueeze(0)]
        return sums / weights, after
