"""The classical baseline: an interpolated Kneser-Ney n-gram model over token ids (numpy).

    lm = KneserNey.fit(train_ids, order=5, vocab_size=len(vocab))   # list of int64 arrays
    nll, n = lm.nll(test_ids)          # summed nats over every document's tokens 1..n-1
    best = select_order(train_ids, val_ids, vocab_size=len(vocab), orders=range(2, 8))
    best.order, best.val                # the order with the lowest validation NLL per token

Interpolated Kneser-Ney as in Chen & Goodman (1999), one absolute discount per order:

    p_N(w | c) = max(c(c w) - D, 0) / c(c •) + D N1+(c •) / c(c •) · p_{N-1}(w | c')

where c' is c without its first token; the highest order N uses raw counts c(·), the lower
orders continuation counts N1+(• c w) (distinct tokens seen before `c w`) in their place, and
`N1+(c •)` counts the distinct w with a non-zero count at that order. A context never seen
at an order passes its lower order through (weight 1). The lowest order is the continuation
unigram N1+(• w) / N1+(• •), which with `uniform=True` gets one extra count for every id
(Laplace), so a token never seen in training (`[UNK]`) still has a probability. Each order's
D is Ney's estimate n1 / (n1 + 2 n2) from its own count-of-counts (0.75 when n1 or n2 is 0)
unless `discount` fixes it. Every conditional distribution sums to 1 over the vocabulary.

n-grams never cross documents, and a document's first token is never scored, the positions
the recurrent model is scored on (`batching`): token t of a document is predicted from up
to N - 1 tokens before it in the same document.

Why not nltk.lm: its `KneserNeyInterpolated` stores every n-gram as Python tuples and
recomputes continuation counts by scanning all higher-order n-grams on each query. Measured
here at order 5 (one core) on training slices of 0.1 / 0.5 / 2 M characters: fit 1.6 / 8.5 /
73 s (0.6 GB and 1.8 GB at the larger two), scoring 1.5 / 4.3 / 11.9 ms per character (the
scan grows with the training text). On the 4.6 M training characters that is about 20 ms a
character: over an hour per order for the 226 K test characters, about 8 hours for choosing
the order (2..7) on the 231 K validation characters. KenLM's Python package only queries
models (building one needs its C++ `lmplz`). This counter sorts integer n-gram keys with
numpy and scores by binary search: orders 2..8 fitted and each scored on validation in 7 s
(25 s on a busy machine), the test text in 0.3 s.
It agrees with nltk's probabilities (tests, `discount=0.1, uniform=False`) where nltk's
formulas are the textbook ones; nltk differs on n-grams seen only at a document's start (it
takes a lower order's `N1+(c •)` from raw counts, so its distributions need not sum to 1,
and divides by zero for a context seen only there) and gives an unseen token probability 0.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from seqops.errors import DataError


@dataclass(frozen=True)
class _Order:
    """One order's sorted n-gram keys and counts, and its contexts' totals."""

    keys: np.ndarray
    counts: np.ndarray
    context_keys: np.ndarray
    context_totals: np.ndarray
    context_types: np.ndarray
    discount: float


def _ney_discount(counts: np.ndarray) -> float:
    n1, n2 = int((counts == 1).sum()), int((counts == 2).sum())
    return n1 / (n1 + 2 * n2) if n1 and n2 else 0.75


def _rolling_keys(doc: np.ndarray, length: int, base: int) -> np.ndarray:
    """Keys of every `length`-gram of `doc`: `sum(w_i * base**(length - 1 - i))`."""
    if len(doc) < length:
        return np.zeros(0, dtype=np.int64)
    keys = doc[: len(doc) - length + 1].copy()
    for i in range(1, length):
        keys = keys * base + doc[i : len(doc) - length + 1 + i]
    return keys


class KneserNey:
    """See the module docstring; build with `fit`."""

    def __init__(
        self, order: int, vocab_size: int, orders: list[_Order], unigram: np.ndarray
    ) -> None:
        self.order, self.vocab_size = order, vocab_size
        self._orders = orders  # index k - 2 holds order k (2..N)
        self.unigram = unigram
        """`(V,)` the lowest order's probabilities."""

    @classmethod
    def fit(
        cls,
        documents: Sequence[np.ndarray],
        order: int,
        vocab_size: int,
        *,
        discount: float | None = None,
        uniform: bool = True,
    ) -> KneserNey:
        """Counts of the training `documents` (int64 id arrays, ids < `vocab_size`)."""
        if order < 2:
            raise DataError(f"n-gram order must be >= 2, got {order}")
        if vocab_size**order >= 2**63:
            raise DataError(f"order {order} over {vocab_size} ids overflows an int64 n-gram key")
        if discount is not None and not 0.0 < discount < 1.0:
            raise DataError(f"discount must be in (0, 1), got {discount}")
        docs = [np.asarray(d, dtype=np.int64) for d in documents]
        # Distinct n-grams of each length 1..N; raw counts for the highest order.
        distinct: dict[int, np.ndarray] = {}
        for length in range(2, order + 1):
            keys = np.concatenate([_rolling_keys(d, length, vocab_size) for d in docs])
            if length == order:
                distinct[length], raw = np.unique(keys, return_counts=True)
            else:
                distinct[length] = np.unique(keys)
        orders = []
        for length in range(2, order + 1):
            if length == order:
                keys, counts = distinct[length], raw
            else:  # continuation counts: distinct tokens seen before each length-gram
                keys, counts = np.unique(
                    distinct[length + 1] % vocab_size**length, return_counts=True
                )
            context, first, types = np.unique(
                keys // vocab_size, return_index=True, return_counts=True
            )
            orders.append(
                _Order(
                    keys,
                    counts,
                    context,
                    np.add.reduceat(counts, first) if len(counts) else counts,
                    types,
                    _ney_discount(counts) if discount is None else discount,
                )
            )
        before = np.bincount(distinct[2] % vocab_size, minlength=vocab_size).astype(np.float64)
        if uniform:
            before += 1.0
        if before.sum() == 0:
            raise DataError("no training document has two tokens: nothing to count")
        return cls(order, vocab_size, orders, before / before.sum())

    @property
    def discounts(self) -> dict[int, float]:
        """Each order's discount D (orders 2..N)."""
        return {k + 2: o.discount for k, o in enumerate(self._orders)}

    def log_probs(self, doc: np.ndarray) -> np.ndarray:
        """Natural-log probabilities of tokens 1..n-1 of `doc` given the tokens before them."""
        doc = np.asarray(doc, dtype=np.int64)
        if len(doc) < 2:
            return np.zeros(0)
        if doc.min() < 0 or doc.max() >= self.vocab_size:
            raise DataError(
                f"token ids must be in [0, {self.vocab_size}), got {doc.min()}..{doc.max()}"
            )
        targets = doc[1:]
        p = self.unigram[targets]
        for length, level in enumerate(self._orders, start=2):
            # Targets t >= length - 1 (index into `targets`: t - 1) have a full context.
            grams = _rolling_keys(doc, length, self.vocab_size)  # grams[i] = doc[i : i + length]
            if not len(grams):
                break
            if not len(level.keys):
                continue  # no n-gram of this order in training: every context passes through
            context = grams // self.vocab_size
            at = np.searchsorted(level.context_keys, context).clip(max=len(level.context_keys) - 1)
            seen = level.context_keys[at] == context
            g = np.searchsorted(level.keys, grams).clip(max=len(level.keys) - 1)
            count = np.where(level.keys[g] == grams, level.counts[g], 0)
            total = level.context_totals[at].astype(np.float64)
            types = level.context_types[at].astype(np.float64)
            d = level.discount
            with np.errstate(divide="ignore", invalid="ignore"):
                interpolated = (np.maximum(count - d, 0.0) + d * types * p[length - 2 :]) / total
            p[length - 2 :] = np.where(seen, interpolated, p[length - 2 :])
        with np.errstate(divide="ignore"):  # p = 0 (uniform=False, an unseen token): -inf
            return np.log(p)

    def nll(self, documents: Iterable[np.ndarray]) -> tuple[float, int]:
        """Summed negative log-likelihood (nats) and the number of scored tokens."""
        total, n = 0.0, 0
        for doc in documents:
            lp = self.log_probs(doc)
            total -= float(lp.sum())
            n += len(lp)
        return total, n


@dataclass(frozen=True)
class OrderChoice:
    order: int
    val: dict[int, float]
    """Validation NLL per token (nats) of each order tried."""
    model: KneserNey
    """The chosen order's model."""


def select_order(
    train: Sequence[np.ndarray],
    val: Sequence[np.ndarray],
    vocab_size: int,
    orders: Iterable[int] = range(2, 8),
    **kwargs: float | bool | None,
) -> OrderChoice:
    """Fit each order on `train`; keep the one with the lowest NLL per token on `val`."""
    scores: dict[int, float] = {}
    best: KneserNey | None = None
    for order in orders:
        lm = KneserNey.fit(train, order, vocab_size, **kwargs)  # type: ignore[arg-type]
        nll, n = lm.nll(val)
        if n == 0:
            raise DataError("no validation document has two tokens: nothing to choose the order on")
        scores[order] = nll / n
        if best is None or scores[order] < scores[best.order]:
            best = lm
    if best is None:
        raise DataError("no n-gram order to try")
    return OrderChoice(best.order, scores, best)
