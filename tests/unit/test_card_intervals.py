"""The model card's bootstrap statistics are the libraries' own: each resample's macro-F1 is
sklearn's `f1_score` and its ECE torchmetrics' `multiclass_calibration_error`, computed for all
resamples at once (`resampled_f1_and_ece`)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import f1_score
from torchmetrics.functional.classification import multiclass_calibration_error

from seqops.stats import resampled_f1_and_ece


@pytest.mark.parametrize("n_classes", [2, 4])
def test_every_resample_matches_sklearn_f1_and_torchmetrics_ece(n_classes: int) -> None:
    rng = np.random.default_rng(n_classes)
    n = 60
    logits = rng.normal(size=(n, n_classes)) * 2
    probs = (np.exp(logits) / np.exp(logits).sum(1, keepdims=True)).astype(np.float32)
    actual = rng.integers(0, n_classes, n)
    draws = [np.arange(n), *(rng.integers(0, n, n) for _ in range(5))]
    # A resample where one class is neither true nor predicted: F1 counts it as 0.
    absent = np.flatnonzero((actual != 0) & (probs.argmax(1) != 0))
    draws.append(rng.choice(absent, n))
    counts = np.stack([np.bincount(d, minlength=n) for d in draws]).astype(np.float64)

    f1s, eces = resampled_f1_and_ece(counts, actual, probs)

    labels = list(range(n_classes))
    for i, d in enumerate(draws):
        expected_f1 = f1_score(actual[d], probs[d].argmax(1), average="macro", labels=labels,
                               zero_division=0)  # fmt: skip
        expected_ece = multiclass_calibration_error(
            torch.from_numpy(probs[d]), torch.from_numpy(actual[d]), n_classes, n_bins=15
        )
        assert f1s[i] == pytest.approx(expected_f1, abs=1e-12), i
        assert eces[i] == pytest.approx(float(expected_ece), abs=1e-6), i
