"""Viterbi decoding of a linear-chain CRF in numpy, for the torch-free predictor.

A CRF tagger's ONNX graph outputs per-step emission scores and the CRF's transition scores
(`onnx_contract.CRF_OUTPUTS`); the best tag sequence is decoded here, outside the graph, the
same way `seqops.model.crf.LinearChainCRF.decode` does in torch (ties to the lowest tag).

    tags = viterbi(emissions, transitions, start, end)                 # (T, C) → (T,) int64
    tags = decode_batch(logits, lengths, transitions, start, end)     # (B, T, C) → (B, T), -1 pad

Imports numpy only, so `seqops predict` stays free of torch.
"""

from __future__ import annotations

import numpy as np


def viterbi(
    emissions: np.ndarray, transitions: np.ndarray, start: np.ndarray, end: np.ndarray
) -> np.ndarray:
    """The highest-scoring tag sequence `(T,)` int64 of one sequence's `(T, C)` emission
    scores (`T >= 1`, real steps only), with `transitions[i, j]` the score of tag j after tag
    i and `start` / `end` `(C,)` the scores of the first and last tag."""
    steps = emissions.shape[0]
    if steps < 1:
        raise ValueError("viterbi needs at least one step")
    score = start + emissions[0]  # (C,)
    came_from = np.empty((steps - 1, emissions.shape[1]), dtype=np.int64)
    for t in range(1, steps):
        candidates = score[:, None] + transitions  # (C_from, C_to)
        came_from[t - 1] = candidates.argmax(axis=0)
        score = candidates.max(axis=0) + emissions[t]
    tags = np.empty(steps, dtype=np.int64)
    tags[-1] = int(np.argmax(score + end))
    for t in range(steps - 1, 0, -1):
        tags[t - 1] = came_from[t - 1, tags[t]]
    return tags


def decode_batch(
    emissions: np.ndarray,
    lengths: np.ndarray,
    transitions: np.ndarray,
    start: np.ndarray,
    end: np.ndarray,
) -> np.ndarray:
    """`(B, T)` int64 best tags of a padded batch of `(B, T, C)` emission scores, each
    sequence decoded over its first `lengths[i]` steps; -1 at padded steps."""
    tags = np.full(emissions.shape[:2], -1, dtype=np.int64)
    for i, length in enumerate(lengths):
        tags[i, :length] = viterbi(emissions[i, :length], transitions, start, end)
    return tags
