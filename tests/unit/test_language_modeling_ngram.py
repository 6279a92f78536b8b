"""The Kneser-Ney baseline: its probabilities equal nltk.lm's KneserNeyInterpolated on a tiny
corpus, every conditional distribution sums to 1 (an unseen token included), n-grams stop at
document edges, and the order is the one with the lowest validation NLL."""

from __future__ import annotations

import math

import numpy as np
import pytest
from nltk.lm import KneserNeyInterpolated
from nltk.util import everygrams

from seqops.errors import DataError
from seqops.tasks.language_modeling.ngram import KneserNey, select_order

DOCS = ["abracadabra", "cadabra abra", "barbara cab"]
CHARS = sorted(set("".join(DOCS)))
IDS = {c: i + 2 for i, c in enumerate(CHARS)}  # 0 and 1: padding and unknown, as a vocabulary
V = len(CHARS) + 2


def _encode(text: str) -> np.ndarray:
    return np.array([IDS[c] for c in text], dtype=np.int64)


@pytest.mark.parametrize("order", [2, 3, 4])
def test_equals_nltk_kneser_ney(order: int) -> None:
    reference = KneserNeyInterpolated(order, discount=0.1)
    reference.fit([list(everygrams(list(d), max_len=order)) for d in DOCS], list("".join(DOCS)))
    ours = KneserNey.fit([_encode(d) for d in DOCS], order, V, discount=0.1, uniform=False)
    for text in [*DOCS, "abrabarcad", "rrr c", "dcba"]:
        expected = [
            reference.score(text[t], tuple(text[max(0, t - order + 1) : t]))
            for t in range(1, len(text))
        ]
        np.testing.assert_allclose(np.exp(ours.log_probs(_encode(text))), expected, rtol=1e-12)


def _distribution(lm: KneserNey, context: list[int]) -> np.ndarray:
    """p(w | context) for every id w, through `log_probs` of `context + [w]`."""
    return np.array([np.exp(lm.log_probs(np.array([*context, w]))[-1]) for w in range(V)])


@pytest.mark.parametrize("order", [2, 3, 5])
def test_distributions_sum_to_one(order: int) -> None:
    lm = KneserNey.fit([_encode(d) for d in DOCS], order, V)
    for context in ["a", "ab", "cab", "zz", "rrr", " ab", "dcba"]:
        ids = [IDS.get(c, 1) for c in context]  # 'z' is unknown
        p = _distribution(lm, ids)
        assert p.sum() == pytest.approx(1.0, abs=1e-12)
        assert (p > 0).all()  # Laplace on the lowest order: unknown and padding ids too


def test_ngrams_stop_at_document_edges() -> None:
    # "ab" never occurs inside a document: joined, "a" + "b" would form it.
    apart = KneserNey.fit([_encode("ca"), _encode("bc")], 2, V, uniform=False)
    joined = KneserNey.fit([_encode("cabc")], 2, V, uniform=False)
    ab = _encode("ab")
    assert apart.log_probs(ab)[0] < joined.log_probs(ab)[0]
    assert len(apart.log_probs(_encode("abcab"))) == 4  # the first token is context only
    assert apart.nll([_encode("abc"), _encode("a")])[1] == 2


def _markov(n: int, seed: int) -> np.ndarray:
    """Tokens 2..5 where the next token is (previous two) mod 4, 10 % of the time random."""
    rng = np.random.default_rng(seed)
    out = [2, 3]
    for _ in range(n - 2):
        nxt = (out[-1] + out[-2]) % 4 + 2 if rng.random() > 0.1 else int(rng.integers(2, 6))
        out.append(nxt)
    return np.array(out, dtype=np.int64)


def test_order_chosen_on_validation() -> None:
    train = [_markov(3000, seed) for seed in range(3)]
    val = [_markov(2000, 10)]
    choice = select_order(train, val, vocab_size=6, orders=range(2, 7))
    assert set(choice.val) == {2, 3, 4, 5, 6}
    assert choice.order == min(choice.val, key=choice.val.__getitem__)
    assert choice.order >= 3  # the source depends on two tokens back: a bigram model is worse
    assert choice.val[2] > choice.val[3] + 0.2
    nll, n = choice.model.nll(val)
    assert nll / n == pytest.approx(choice.val[choice.order])
    # Close to the source's entropy: 0.925 certain plus 0.075 spread over the other 3.
    entropy = -(0.925 * math.log(0.925) + 3 * 0.025 * math.log(0.025))
    assert choice.val[choice.order] == pytest.approx(entropy, rel=0.1)


def test_bad_arguments() -> None:
    docs = [_encode(d) for d in DOCS]
    with pytest.raises(DataError, match="order must be >= 2"):
        KneserNey.fit(docs, 1, V)
    with pytest.raises(DataError, match="overflows"):
        KneserNey.fit(docs, 20, 10_000)
    with pytest.raises(DataError, match="discount must be in"):
        KneserNey.fit(docs, 3, V, discount=1.5)
    with pytest.raises(DataError, match="token ids must be in"):
        KneserNey.fit(docs, 3, V).log_probs(np.array([1, V]))
