"""The numpy Viterbi of `seqops.decoding` against brute-force enumeration and the torch CRF."""

from __future__ import annotations

import itertools
import subprocess
import sys

import numpy as np
import pytest
import torch

from seqops.decoding import decode_batch, viterbi
from seqops.model.crf import LinearChainCRF


def _crf_scores(rng: np.random.Generator, n_tags: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Transitions `(C, C)`, start and end `(C,)`."""
    return (
        rng.standard_normal((n_tags, n_tags)),
        rng.standard_normal(n_tags),
        rng.standard_normal(n_tags),
    )


def _brute_force(emissions: np.ndarray, trans: np.ndarray, start: np.ndarray, end: np.ndarray):
    steps, n_tags = emissions.shape
    best, best_path = -np.inf, None
    for path in itertools.product(range(n_tags), repeat=steps):
        score = start[path[0]] + end[path[-1]] + sum(emissions[t, p] for t, p in enumerate(path))
        score += sum(trans[path[t - 1], path[t]] for t in range(1, steps))
        if score > best:
            best, best_path = score, path
    return list(best_path or ())


@pytest.mark.parametrize("seed", range(40))
def test_viterbi_finds_the_best_path_of_tiny_cases(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n_tags, steps = int(rng.integers(1, 4)), int(rng.integers(1, 6))
    emissions = rng.standard_normal((steps, n_tags))
    trans, start, end = _crf_scores(rng, n_tags)
    got = viterbi(emissions, trans, start, end)
    assert got.dtype == np.int64 and got.shape == (steps,)
    assert got.tolist() == _brute_force(emissions, trans, start, end)


@pytest.mark.parametrize("seed", range(30))
def test_numpy_viterbi_equals_the_torch_crfs_decode(seed: int) -> None:
    rng = np.random.default_rng(seed)
    batch, time, n_tags = int(rng.integers(1, 6)), int(rng.integers(1, 14)), int(rng.integers(2, 7))
    lengths = rng.integers(1, time + 1, size=batch)
    lengths[0] = time  # one sequence fills the batch, the others are padded
    emissions = rng.standard_normal((batch, time, n_tags))
    emissions[np.arange(time)[None, :] >= lengths[:, None]] = 50.0  # loud padding
    trans, start, end = _crf_scores(rng, n_tags)
    crf = LinearChainCRF(n_tags).double()
    with torch.no_grad():
        crf.transitions.copy_(torch.from_numpy(trans))
        crf.start_transitions.copy_(torch.from_numpy(start))
        crf.end_transitions.copy_(torch.from_numpy(end))
        expected = crf.decode(torch.from_numpy(emissions), torch.from_numpy(lengths)).numpy()
    got = decode_batch(emissions, lengths, trans, start, end)
    np.testing.assert_array_equal(got, expected)
    assert (got[np.arange(time)[None, :] >= lengths[:, None]] == -1).all()


def test_transitions_decide_between_equal_emissions() -> None:
    emissions = np.zeros((3, 2))
    trans = np.array([[0.0, -5.0], [-5.0, 0.0]])  # changing tag is costly
    start, end = np.array([0.0, 1.0]), np.zeros(2)
    assert viterbi(emissions, trans, start, end).tolist() == [1, 1, 1]
    with pytest.raises(ValueError, match="at least one step"):
        viterbi(np.zeros((0, 2)), trans, start, end)


def test_decoding_does_not_import_torch() -> None:
    code = "import sys, seqops.decoding; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
