"""The streaming step module (`seqops.model.streaming.StepNet`): fed chunk by chunk with the
state carried, it answers what the full network answers, for every cell, one or two layers,
per-step outputs and last, mean and attention pooling; the networks that cannot stream are
refused with their reason."""

from __future__ import annotations

import itertools

import pytest
import torch

from seqops.model.network import SequenceNet
from seqops.model.streaming import NotStreamable, StepNet, streaming_reason

F, C, T = 3, 4, 13


def network(
    cell: str, layers: int, *, per_step: bool, tokens: bool = False, pooling: str = "last"
) -> SequenceNet:
    torch.manual_seed(0)
    return SequenceNet(
        0 if tokens else F, C, cell=cell, hidden_size=6, num_layers=layers, bidirectional=False,
        pooling=pooling, encoder="linear", per_step=per_step,
        vocab_size=25 if tokens else None, embedding_dim=5,
    ).eval()  # fmt: skip


def chunked(step: StepNet, x: torch.Tensor, chunk: int) -> torch.Tensor:
    """`x` fed `chunk` steps at a time from a zero state: every step's output `(B, T, C)`."""
    state = step.initial_state(len(x))
    outs = []
    for start in range(0, x.shape[1], chunk):
        out, *state = step(x[:, start : start + chunk], *state)
        outs.append(out)
    return torch.cat(outs, dim=1)


def inputs(tokens: bool) -> torch.Tensor:
    torch.manual_seed(1)
    return torch.randint(1, 25, (3, T)) if tokens else torch.randn(3, T, F)


@pytest.mark.parametrize(
    ("cell", "layers", "per_step", "tokens", "pooling"),
    [*itertools.product(("lstm", "gru", "rnn"), (1, 2), (True, False), (False,), ("last",)),
     ("lstm", 2, True, True, "last"), ("gru", 1, False, True, "last"),
     *itertools.product(("lstm", "gru"), (1, 2), (False,), (False,), ("mean", "attention")),
     ("rnn", 1, False, True, "mean"), ("rnn", 2, False, True, "attention")],
)  # fmt: skip
@torch.no_grad()
def test_step_module_fed_in_chunks_equals_the_full_network(
    cell: str, layers: int, per_step: bool, tokens: bool, pooling: str
) -> None:
    net = network(cell, layers, per_step=per_step, tokens=tokens, pooling=pooling)
    step = StepNet(net).eval()
    x = inputs(tokens)
    full_lengths = torch.full((3,), T, dtype=torch.int64)
    for chunk in (1, 7, T):
        got = chunked(step, x, chunk)  # (B, T, C)
        if per_step:
            torch.testing.assert_close(got, net(x, full_lengths), atol=1e-6, rtol=1e-5)
        else:
            # At step t: the pooled answer for the sequence's first t + 1 steps.
            for t in (0, 4, 7, T - 1):
                prefix = net(x[:, : t + 1], torch.full((3,), t + 1, dtype=torch.int64))
                torch.testing.assert_close(got[:, t], prefix, atol=1e-6, rtol=1e-5)


@torch.no_grad()
def test_the_state_after_a_chunk_is_the_cells_final_state() -> None:
    net = network("lstm", 2, per_step=True)
    step = StepNet(net)
    x = inputs(False)
    _, h_next, c_next = step(x, *step.initial_state(3))
    # Layer 0's final state, straight from its cell.
    _, (h0, c0) = net.forward_cells[0](net.embed(x, torch.full((3,), T)))
    torch.testing.assert_close(h_next[0:1], h0)
    torch.testing.assert_close(c_next[0:1], c0)
    assert h_next.shape == (2, 3, 6) and c_next.shape == (2, 3, 6)


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"bidirectional": True}, "bidirectional: the backward pass needs the whole sequence"),
        ({"encoder": "conv", "encoder_kernel": 3, "encoder_stride": 2}, "encoder conv: each "),
        ({"pooling": "max"}, "pooling max: each step's answer needs a running max"),
        ({"horizon": 4}, "forecaster: trained on windows of the last lookback steps"),
        ({"per_step": True, "crf": True}, "crf: the Viterbi path depends on later steps"),
    ],
)
def test_what_cannot_stream_is_refused_with_its_reason(kwargs: dict, reason: str) -> None:
    args = {"cell": "gru", "hidden_size": 6, "bidirectional": False, "pooling": "last",
            "encoder": "linear"}  # fmt: skip
    net = SequenceNet(F, C, **{**args, **kwargs}).eval()
    found = streaming_reason(net)
    assert found is not None and found.startswith(reason)
    with pytest.raises(NotStreamable, match="^" + reason.split(":")[0]):
        StepNet(net)


@pytest.mark.parametrize(
    ("pooling", "names"),
    [("last", ["h", "c"]), ("mean", ["h", "c", "pool_sum", "pool_count"]),
     ("attention", ["h", "c", "pool_score", "pool_weight", "pool_weighted"])],
)  # fmt: skip
def test_the_state_is_the_recurrent_one_then_the_poolings(pooling: str, names: list[str]) -> None:
    step = StepNet(network("lstm", 2, per_step=False, pooling=pooling))
    shapes = step.state_shapes()
    assert list(shapes) == names and shapes["h"] == shapes["c"] == (2, 6)
    start = dict(zip(names, step.initial_state(4), strict=True))
    assert all(s.shape[1] == 4 for s in start.values())
    if pooling == "attention":  # no score yet: the lowest finite float, so weights start at 0
        assert start["pool_score"].min() == torch.finfo(torch.float32).min
