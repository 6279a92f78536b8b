"""A linear-chain CRF over per-step emission scores: its log-likelihood and Viterbi decoding.

A tag sequence `y` of a sequence of `n` real steps scores

    start[y_0] + sum_t emissions[t, y_t] + sum_{t>=1} transitions[y_{t-1}, y_t] + end[y_{n-1}]

and the CRF's probability of `y` is `exp(score(y)) / Z`, `Z` summed over every tag sequence
by the forward algorithm (Lafferty et al. 2001; the tagger layer of Lample et al. 2016).
Padded steps (from each sequence's `length` on) take no part: every method takes `lengths`.

    crf = LinearChainCRF(n_tags=5)
    nll = crf.negative_log_likelihood(emissions, tags, lengths)  # (B,): emissions (B, T, 5)
    best = crf.decode(emissions, lengths)                         # (B, T) int64, -1 at padding

Written here rather than taken from a library: pytorch-crf, the usual choice, was last
released in 2019 and is unmaintained, and the forward algorithm and Viterbi are a few dozen
lines of torch that the tests check against brute-force enumeration. `seqops.decoding` is the
same Viterbi in numpy, for the torch-free predictor that reads the exported transitions.
"""

from __future__ import annotations

import torch
from torch import nn


def _real_steps(lengths: torch.Tensor, time: int) -> torch.Tensor:
    """`(B, T)` boolean mask, True on real steps (as `network.step_mask`, which imports this
    module and so cannot be imported here)."""
    return torch.arange(time, device=lengths.device).unsqueeze(0) < lengths.unsqueeze(1)


class LinearChainCRF(nn.Module):
    """Transition scores between `n_tags` tags (`transitions[i, j]`: from tag i to tag j),
    into the first tag (`start_transitions`) and out of the last (`end_transitions`).

    All start at zero (no random numbers drawn), so the CRF begins as independent per-step
    choices and learns which tag follows which. Every sequence needs `length >= 1`."""

    def __init__(self, n_tags: int) -> None:
        super().__init__()
        if n_tags < 1:
            raise ValueError(f"a CRF needs at least one tag, got n_tags={n_tags}")
        self.n_tags = n_tags
        self.transitions = nn.Parameter(torch.zeros(n_tags, n_tags))
        self.start_transitions = nn.Parameter(torch.zeros(n_tags))
        self.end_transitions = nn.Parameter(torch.zeros(n_tags))

    def path_score(
        self, emissions: torch.Tensor, tags: torch.Tensor, lengths: torch.Tensor
    ) -> torch.Tensor:
        """`(B,)` unnormalised scores of the tag sequences `tags` `(B, T)` over `emissions`
        `(B, T, C)`; tags at padded steps may hold anything (an ignore index)."""
        real = _real_steps(lengths, emissions.shape[1])  # (B, T)
        tags = torch.where(real, tags, torch.zeros_like(tags))  # any valid index; masked below
        emitted = emissions.gather(2, tags.unsqueeze(2)).squeeze(2)  # (B, T)
        moved = self.transitions[tags[:, :-1], tags[:, 1:]]  # (B, T - 1)
        last = tags.gather(1, (lengths - 1).unsqueeze(1)).squeeze(1)  # (B,)
        # `where`, not a product with the mask: padded scores may be inf without harm.
        zero = torch.zeros_like(emitted)
        return (
            self.start_transitions[tags[:, 0]]
            + torch.where(real, emitted, zero).sum(dim=1)
            + torch.where(real[:, 1:], moved, zero[:, 1:]).sum(dim=1)
            + self.end_transitions[last]
        )

    def log_partition(self, emissions: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """`(B,)` log Z: the log-sum-exp of the scores of every tag sequence (forward
        algorithm). A sequence's forward scores stop changing after its last real step."""
        real = _real_steps(lengths, emissions.shape[1])
        alpha = self.start_transitions + emissions[:, 0]  # (B, C)
        for t in range(1, emissions.shape[1]):
            # (B, C_from, 1) + (C_from, C_to) + (B, 1, C_to), summed out over C_from.
            scores = alpha.unsqueeze(2) + self.transitions + emissions[:, t].unsqueeze(1)
            alpha = torch.where(real[:, t : t + 1], torch.logsumexp(scores, dim=1), alpha)
        return torch.logsumexp(alpha + self.end_transitions, dim=1)

    def negative_log_likelihood(
        self, emissions: torch.Tensor, tags: torch.Tensor, lengths: torch.Tensor
    ) -> torch.Tensor:
        """`(B,)` -log p(tags | emissions): log Z minus the tags' path score."""
        return self.log_partition(emissions, lengths) - self.path_score(emissions, tags, lengths)

    def decode(self, emissions: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """`(B, T)` int64: each sequence's highest-scoring tag sequence (Viterbi), -1 at
        padded steps. Ties go to the lowest tag index, as in `seqops.decoding`."""
        batch, time, n_tags = emissions.shape
        real = _real_steps(lengths, time)
        stay = torch.arange(n_tags, device=emissions.device).expand(batch, n_tags)
        score = self.start_transitions + emissions[:, 0]  # (B, C)
        came_from = []  # per step t >= 1: (B, C) best previous tag of each tag
        for t in range(1, time):
            best, best_from = (score.unsqueeze(2) + self.transitions).max(dim=1)  # (B, C)
            step_real = real[:, t : t + 1]
            score = torch.where(step_real, best + emissions[:, t], score)
            # Past a sequence's end every tag "comes from" itself, so backtracking from the
            # last step walks through the padding unchanged to the last real step.
            came_from.append(torch.where(step_real, best_from, stay))
        tag = (score + self.end_transitions).argmax(dim=1)  # (B,)
        path = [tag]
        for back in reversed(came_from):
            tag = back.gather(1, tag.unsqueeze(1)).squeeze(1)
            path.append(tag)
        tags = torch.stack(path[::-1], dim=1)  # (B, T)
        return torch.where(real, tags, torch.full_like(tags, -1))
