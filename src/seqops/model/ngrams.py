"""A linear bag-of-n-grams path beside a text network's recurrent one (`model.ngram_buckets`).

    path = NgramPath(vocab_size=20_000, buckets=1 << 18, n_outputs=2)
    scores = path(ids, lengths)                              # (B, C), padding ignored
    c = fit_ngram_path(path, train_ids, train_y, val_ids, val_y)   # logistic regression

What a TF-IDF + logistic-regression classifier sees, inside the network: each sentence's
unigram counts (one feature per token id) and bigram counts (each pair of adjacent token ids
hashed into `buckets` features, `(a * BIGRAM_PRIME + b) % buckets`), divided by the sentence's
length, times a weight per feature and class. The weights are fitted before
training by logistic regression on the training split (`fit_ngram_path`, the penalty chosen
by validation log-loss) and then frozen. The path is silent while the recurrent network
trains (its weight `ngram_scale` is 0, and building it draws no random numbers, so the
recurrent network is the one trained without it). After training, the weights of the two paths
(`recurrent_scale`, from 1, and `ngram_scale`) are set to those that minimise the validation
log-loss of the sum (`mixing_weights`): a stacked ensemble of the two models in one graph.
Trained jointly instead, the recurrent path learned little: the logistic regression already
fits the training sentences it was fitted on, so they left it little loss to learn from
(docs/decisions.md). On small sentiment sets a recurrent network alone trails such a
classifier; the stack of both beats either.

Exported as plain operators (integer `Mul`, `Add`, `Mod`, `Gather`, a masked `ReduceSum`), so
the ONNX graph and the torch-free predictor compute the same scores. `ngram_features` is the
same features as a sparse matrix, what the fit reads.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

#: The multiplier of the bigram hash: a prime above any vocabulary size, so pairs `(a, b)` and
#: `(a', b')` collide only through the final modulo.
BIGRAM_PRIME = 1_000_003
#: Inverse penalties `C` of the logistic regression, chosen by validation log-loss.
C_GRID = (1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0)
#: The largest weight `mixing_weights` gives either path.
MAX_WEIGHT = 4.0


def bigram_ids(ids: torch.Tensor, buckets: int) -> torch.Tensor:
    """`(B, T - 1)` hashed ids of the adjacent token pairs of `ids` `(B, T)`."""
    return (ids[:, :-1] * BIGRAM_PRIME + ids[:, 1:]) % buckets


class NgramPath(nn.Module):
    """Frozen unigram and hashed-bigram weights per class, averaged over a sentence's tokens."""

    def __init__(self, vocab_size: int, buckets: int, n_outputs: int) -> None:
        super().__init__()
        if vocab_size < 1 or buckets < 1:
            raise ValueError(f"need vocab_size and buckets >= 1, got {vocab_size}, {buckets}")
        self.buckets = buckets
        # Zeros, not a random init: building the path draws no random numbers, so the rest
        # of the network trains exactly as it would without it.
        zeros = torch.zeros
        self.unigrams = nn.Embedding(vocab_size, n_outputs, _weight=zeros(vocab_size, n_outputs))
        self.bigrams = nn.Embedding(buckets, n_outputs, _weight=zeros(buckets, n_outputs))
        self.bias = nn.Parameter(zeros(n_outputs), requires_grad=False)
        self.requires_grad_(False)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """`(B, C)` scores of token ids `(B, T)`; steps at or after `lengths` are ignored."""
        steps = torch.arange(ids.shape[1], device=ids.device).unsqueeze(0)  # (1, T)
        real = (steps < lengths.unsqueeze(1)).unsqueeze(-1)  # (B, T, 1)
        uni = torch.where(real, self.unigrams(ids), 0.0).sum(dim=1)
        # The pair ending at step t is real when t is.
        pairs = self.bigrams(bigram_ids(ids, self.buckets))  # (B, T - 1, C)
        bi = torch.where(real[:, 1:], pairs, 0.0).sum(dim=1)
        return (uni + bi) / lengths.unsqueeze(1).to(uni.dtype) + self.bias


def ngram_features(sequences: list[np.ndarray], vocab_size: int, buckets: int) -> object:
    """`(N, vocab_size + buckets)` sparse CSR matrix: each sequence's unigram counts, then its
    hashed bigram counts, divided by its length (what `NgramPath` weighs)."""
    import scipy.sparse as sp

    rows, cols, values = [], [], []
    for row, sequence in enumerate(sequences):
        ids = np.asarray(sequence, dtype=np.int64).reshape(-1)
        pairs = (ids[:-1] * BIGRAM_PRIME + ids[1:]) % buckets + vocab_size
        found = np.concatenate([ids, pairs])
        rows.append(np.full(len(found), row))
        cols.append(found)
        values.append(np.full(len(found), 1.0 / max(len(ids), 1)))
    shape = (len(sequences), vocab_size + buckets)
    matrix = sp.csr_matrix(
        (np.concatenate(values), (np.concatenate(rows), np.concatenate(cols))), shape=shape
    )
    matrix.sum_duplicates()
    return matrix


def mixing_weights(
    recurrent: np.ndarray, ngram: np.ndarray, labels: np.ndarray
) -> tuple[float, float]:
    """The weights `(a, w)`, each in `[0, MAX_WEIGHT]`, of `softmax(a * recurrent + w *
    ngram)` with the lowest log-loss on held-out examples (the validation split), from the
    recurrent and n-gram scores `(N, C)`: a stacked ensemble of the two (logistic regression
    on their scores, as stacking fits it). Both are scales, never a sign flip; `(1, 0)`, the
    recurrent network alone, unless another pair does better."""
    from scipy.optimize import minimize
    from scipy.special import log_softmax

    rows = np.arange(len(labels))

    def loss(weights: np.ndarray) -> float:
        a, w = weights
        return float(-log_softmax(a * recurrent + w * ngram, axis=1)[rows, labels].mean())

    start = np.array([1.0, 0.0])
    found = minimize(loss, start, method="L-BFGS-B", bounds=[(0.0, MAX_WEIGHT)] * 2, tol=1e-12)
    if loss(found.x) >= loss(start):
        return 1.0, 0.0
    return float(found.x[0]), float(found.x[1])


def fit_ngram_path(
    path: NgramPath,
    train: list[np.ndarray],
    train_labels: np.ndarray,
    val: list[np.ndarray],
    val_labels: np.ndarray,
) -> float:
    """Set `path`'s weights to a logistic regression on the training split's n-gram features,
    its penalty `C` (from `C_GRID`) the one with the lowest validation log-loss; returns it.
    Two classes give one weight vector, written as the second class's scores (the first's
    stay zero: the same softmax)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import log_loss

    vocab, buckets = path.unigrams.num_embeddings, path.buckets
    x_train = ngram_features(train, vocab, buckets)
    x_val = ngram_features(val, vocab, buckets)
    classes = np.arange(path.bias.shape[0])
    best: tuple[float, float, LogisticRegression] | None = None
    for c in C_GRID:
        model = LogisticRegression(C=c, max_iter=2000).fit(x_train, train_labels)
        loss = log_loss(val_labels, model.predict_proba(x_val), labels=classes)
        if best is None or loss < best[0]:
            best = (loss, c, model)
    assert best is not None
    _, c, model = best
    coef, intercept = np.atleast_2d(model.coef_), np.atleast_1d(model.intercept_)
    weights = np.zeros((len(classes), vocab + buckets))
    bias = np.zeros(len(classes))
    present = model.classes_.astype(np.int64)
    if len(present) == 2:
        weights[present[1]], bias[present[1]] = coef[0], intercept[0]
    else:
        weights[present], bias[present] = coef, intercept
    with torch.no_grad():
        table = torch.tensor(weights.T, dtype=path.unigrams.weight.dtype)
        path.unigrams.weight.copy_(table[:vocab])
        path.bigrams.weight.copy_(table[vocab:])
        path.bias.copy_(torch.tensor(bias, dtype=path.bias.dtype))
    return c
