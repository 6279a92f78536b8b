"""ROC and precision-recall curves written by evaluate (the classifier task's plots) agree with
scikit-learn's."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import average_precision_score, roc_auc_score

from seqops.tasks.classifier.evaluate import curves_csv


def _curves(probs: torch.Tensor, target: torch.Tensor) -> tuple[pd.DataFrame, pd.DataFrame]:
    roc, pr = curves_csv(probs, target)
    return pd.read_csv(io.StringIO(roc)), pd.read_csv(io.StringIO(pr))


def test_binary_curves_are_of_the_second_class() -> None:
    torch.manual_seed(0)
    target = torch.randint(0, 2, (200,))
    score = torch.sigmoid(torch.randn(200) + 1.5 * target)
    probs = torch.stack([1 - score, score], dim=1)
    roc, pr = _curves(probs, target)
    assert list(roc.columns) == ["fpr", "tpr", "threshold"]
    assert (roc.iloc[0].fpr, roc.iloc[0].tpr, roc.iloc[-1].fpr, roc.iloc[-1].tpr) == (0, 0, 1, 1)
    auc = np.trapezoid(roc.tpr, roc.fpr)
    assert abs(auc - roc_auc_score(target.numpy(), score.numpy())) < 1e-4
    # Average precision is the step-wise area under the PR curve.
    ap = -np.sum(np.diff(pr.recall) * pr.precision[:-1])
    assert abs(ap - average_precision_score(target.numpy(), score.numpy())) < 1e-4


def test_multiclass_curves_are_micro_averaged_one_vs_rest() -> None:
    torch.manual_seed(1)
    target = torch.randint(0, 3, (90,))
    probs = torch.softmax(torch.randn(90, 3) + 2 * torch.nn.functional.one_hot(target, 3), dim=1)
    roc, _ = _curves(probs, target)
    one_hot = torch.nn.functional.one_hot(target, 3).numpy().ravel()
    auc = np.trapezoid(roc.tpr, roc.fpr)
    assert abs(auc - roc_auc_score(one_hot, probs.numpy().ravel())) < 1e-4
