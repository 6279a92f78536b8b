"""Paired tests, bootstraps and intervals: the statistics every task's evaluation, model card
and release gate use, in one place (numpy; scipy and statsmodels imported where a test needs
them).

    p, only_ref, only_cand = mcnemar(candidate_correct, reference_correct)   # classifiers
    test = diebold_mariano(candidate_errors, champion_errors)                # numeric errors
    scores = PairedScores("correct", model, {"minirocket": baseline})        # vs baselines
    low, high = bootstrap_rmse(errors)                                       # 95 % interval
    half = conformal_quantile(abs_residuals, level=0.9)                      # split conformal
    score = interval_score(actual, lower, upper, level=0.9)                  # Winkler score

Every bootstrap is a percentile bootstrap of `BOOTSTRAP` resamples from a seeded generator, so
an interval is the same on every run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

#: Resamples of every percentile bootstrap (model-card intervals).
BOOTSTRAP = 1000


def mcnemar(candidate_correct: np.ndarray, reference_correct: np.ndarray) -> tuple[float, int, int]:
    """McNemar's exact test on paired correctness: p-value, examples only the reference got
    right, examples only the candidate got right."""
    from statsmodels.stats.contingency_tables import mcnemar as exact

    cand, ref = candidate_correct.astype(bool), reference_correct.astype(bool)
    only_reference, only_candidate = int(np.sum(ref & ~cand)), int(np.sum(cand & ~ref))
    table = [
        [int(np.sum(cand & ref)), only_candidate],
        [only_reference, int(np.sum(~cand & ~ref))],
    ]
    return float(exact(table, exact=True).pvalue), only_reference, only_candidate


def sign_test(candidate_loss: np.ndarray, reference_loss: np.ndarray) -> tuple[float, int, int]:
    """One-sided exact sign test on paired losses (lower is better): is the candidate's loss
    the higher one more often than chance allows? p-value, pairs where the candidate is worse,
    pairs where it is better (ties dropped)."""
    from scipy.stats import binomtest

    cand, ref = candidate_loss.astype(np.float64).ravel(), reference_loss.astype(np.float64).ravel()
    worse, better = int(np.sum(cand > ref)), int(np.sum(cand < ref))
    if worse + better == 0:
        return 1.0, 0, 0
    return float(binomtest(worse, worse + better, 0.5, alternative="greater").pvalue), worse, better


@dataclass(frozen=True)
class PairedTest:
    statistic: float
    p_value: float
    mean_loss_difference: float
    n: int


def diebold_mariano(candidate: np.ndarray, champion: np.ndarray) -> PairedTest:
    """One-sided Diebold-Mariano test on squared errors: is the candidate worse?

    d = e_candidate² - e_champion² per forecast point; the statistic is mean(d) over its
    standard error with the Harvey-Leybourne-Newbold small-sample correction, compared with
    Student's t (n - 1). A small p-value means the candidate's errors are significantly larger.
    """
    from scipy.stats import t as student_t

    d = (candidate.astype(np.float64) ** 2 - champion.astype(np.float64) ** 2).ravel()
    n = len(d)
    if n < 2:
        raise ValueError("the paired forecast test needs at least 2 forecast points")
    mean = float(d.mean())
    variance = float(d.var(ddof=0)) / n
    if variance <= 0:  # identical forecasts, or a constant difference
        p = 0.0 if mean > 0 else 1.0
        return PairedTest(math.inf if mean > 0 else 0.0, p, mean, n)
    statistic = mean / math.sqrt(variance) * math.sqrt((n - 1) / n)  # HLN, one step ahead
    return PairedTest(statistic, float(student_t.sf(statistic, df=n - 1)), mean, n)


@dataclass(frozen=True)
class PairedScores:
    """Per-example scores of the model and of each classical baseline on the same test
    examples (from `reports/predictions.csv`): correctness (`kind="correct"`, McNemar) or
    signed errors (`kind="error"`, Diebold-Mariano on squared errors)."""

    kind: Literal["correct", "error"]
    model: np.ndarray
    baselines: dict[str, np.ndarray]

    @property
    def metric(self) -> str:
        return "accuracy" if self.kind == "correct" else "rmse"

    def value(self, scores: np.ndarray) -> float:
        """Accuracy of correctness flags, RMSE of errors."""
        if self.kind == "correct":
            return float(np.mean(scores))
        return float(np.sqrt(np.mean(np.square(scores))))

    def difference(self, name: str) -> float:
        """Model minus baseline: accuracy (higher is better) or RMSE (lower is better)."""
        return self.value(self.model) - self.value(self.baselines[name])

    def interval(self, name: str, seed: int = 0, resamples: int = 1000) -> tuple[float, float]:
        """Percentile bootstrap 95 % interval of `difference`, resampling examples in pairs."""
        model, baseline = self.model.ravel(), self.baselines[name].ravel()
        rng = np.random.default_rng(seed)
        diffs = []
        for _ in range(resamples):
            idx = rng.integers(0, len(model), len(model))
            diffs.append(self.value(model[idx]) - self.value(baseline[idx]))
        return float(np.percentile(diffs, 2.5)), float(np.percentile(diffs, 97.5))

    def worse_than(self, name: str) -> tuple[float, bool, str]:
        """Is the model significantly worse than baseline `name`? One-sided p-value (McNemar's
        two-sided exact p when the baseline got more right), the direction, and the numbers."""
        baseline = self.baselines[name]
        if self.kind == "correct":
            p_value, only_baseline, only_model = mcnemar(self.model, baseline)
            return (
                p_value,
                only_baseline > only_model,
                f"accuracy {self.value(self.model):.4f} vs {name} {self.value(baseline):.4f}, "
                f"only {name} right on {only_baseline}, only the model on {only_model} "
                f"(McNemar exact p={p_value:.3g})",
            )
        model_rmse, baseline_rmse = self.value(self.model), self.value(baseline)
        if self.model.size < 2:
            return 1.0, model_rmse > baseline_rmse, f"{self.model.size} error: too few to test"
        test = diebold_mariano(self.model.ravel(), baseline.ravel())
        return (
            test.p_value,
            model_rmse > baseline_rmse,
            f"RMSE {model_rmse:.4g} vs {name} {baseline_rmse:.4g} on {test.n} points "
            f"(Diebold-Mariano one-sided p={test.p_value:.3g})",
        )


def conformal_quantile(
    scores: np.ndarray, level: float, weights: np.ndarray | None = None
) -> np.ndarray:
    """Split-conformal threshold of nonconformity `scores` `(n, ...)` along axis 0: their
    ⌈(n + 1)·level⌉-th smallest, the (1 + 1/n)·level empirical quantile. An interval of this
    half-width around a new point forecast covers with probability at least `level` when the
    new score and the n calibration scores are exchangeable (Vovk et al. 2005; Lei et al.
    2018). With fewer than level / (1 - level) scores that order statistic does not exist (the
    exact interval is unbounded); the largest score is used, and the guarantee is lost.

    `weights` `(n,)` (non-negative) makes it non-exchangeable conformal (Barber et al. 2023):
    the `level` quantile of the scores weighted `weights[i] / (sum + 1)`, the new score's
    weight 1 at +inf. Weights that favour recent scores trade effective sample size for
    robustness to drift: the coverage loss is bounded by the weighted distance between each
    calibration score's distribution and the new one's. Equal weights give the rank above."""
    n = scores.shape[0]
    if n == 0:
        raise ValueError("no calibration scores")
    if weights is None:
        rank = min(math.ceil((n + 1) * level), n)
        return np.sort(scores, axis=0)[rank - 1]
    if weights.shape != (n,) or (weights < 0).any():
        raise ValueError(f"expected {n} non-negative weights, got shape {weights.shape}")
    # The new score's weight 1 sits at +inf: the level quantile of all n + 1 is the weighted
    # quantile of the n at level · (total + 1) / total, or above them all (the largest used).
    total = float(weights.sum())
    if not conformal_is_exact(total, level):
        return scores.max(axis=0)
    q = min(level * (total + 1.0) / total * (1 - 1e-12), 1.0)
    stacked = np.broadcast_to(weights.reshape((n,) + (1,) * (scores.ndim - 1)), scores.shape)
    return np.quantile(scores, q, axis=0, weights=stacked, method="inverted_cdf")


def conformal_is_exact(n: float, level: float) -> bool:
    """Whether n calibration scores (or weights summing to n) suffice for a finite
    split-conformal interval at `level`: n / (n + 1) >= level."""
    return n >= level * (n + 1) * (1 - 1e-12)


def interval_score(
    actual: np.ndarray, lower: np.ndarray, upper: np.ndarray, level: float
) -> np.ndarray:
    """Gneiting and Raftery's (2007) interval score (Winkler's) of central `level` intervals,
    elementwise: the width, plus 2/alpha times how far the actual value falls outside
    (alpha = 1 - level). Lower is better; a proper score, so it rewards neither too narrow nor
    too wide bounds."""
    alpha = 1.0 - level
    below = np.maximum(lower - actual, 0.0)
    above = np.maximum(actual - upper, 0.0)
    return (upper - lower) + (2.0 / alpha) * (below + above)


def bootstrap_rmse(errors: np.ndarray, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap 95 % interval of the RMSE of `errors` (any shape, resampled as
    one flat sample)."""
    flat = errors.ravel()
    rng = np.random.default_rng(seed)
    n = len(flat)
    rmses = [float(np.sqrt((flat[rng.integers(0, n, n)] ** 2).mean())) for _ in range(BOOTSTRAP)]
    return float(np.percentile(rmses, 2.5)), float(np.percentile(rmses, 97.5))


def resampled_f1_and_ece(
    counts: np.ndarray, actual: np.ndarray, probs: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Macro-F1 and ECE of each resample, `counts` `(B, n)` being how often each of the n
    examples (true class `actual`, class probabilities `probs` `(n, C)`) is drawn.

    Both are sums of per-example quantities, so all resamples are one matrix product, not a
    loop. Macro-F1 is sklearn's (`2 tp / (predicted + actual)` per class, 0 for a class absent
    from both); ECE is torchmetrics' (15 equal-width confidence bins, L1): a bin's share times
    |accuracy - confidence| is |Σ correct - Σ confidence| / n over its examples."""
    predicted = probs.argmax(axis=1)
    confidence = probs.max(axis=1).astype(np.float64)
    hit = (predicted == actual).astype(np.float64)
    bins = np.clip(np.searchsorted(np.linspace(0, 1, 16), confidence, side="right") - 1, 0, 14)

    classes = np.arange(probs.shape[1])
    is_actual = (actual[:, None] == classes).astype(np.float64)  # (n, C)
    is_predicted = (predicted[:, None] == classes).astype(np.float64)
    tp = counts @ (is_actual * is_predicted)  # (B, C)
    support = counts @ is_actual + counts @ is_predicted
    f1s = np.divide(2 * tp, support, out=np.zeros_like(tp), where=support > 0).mean(axis=1)

    in_bin = (bins[:, None] == np.arange(15)).astype(np.float64)  # (n, 15)
    gap = counts @ (in_bin * (hit - confidence)[:, None])  # (B, 15)
    return f1s, np.abs(gap).sum(axis=1) / counts.sum(axis=1)


def confidence_intervals(
    predictions: pd.DataFrame, seed: int = 0
) -> dict[str, tuple[float, float]]:
    """95 % intervals: Wilson for accuracy, percentile bootstrap (`BOOTSTRAP` resamples of the
    test examples, `resampled_f1_and_ece`) for macro-F1 and ECE."""
    from statsmodels.stats.proportion import proportion_confint

    correct = predictions["correct"].to_numpy()
    n = len(predictions)
    low, high = proportion_confint(int(correct.sum()), n, alpha=0.05, method="wilson")
    prob_cols = [c for c in predictions.columns if c.startswith("p_")]
    names = [c[2:] for c in prob_cols]
    actual = np.array([names.index(str(a)) for a in predictions["actual"]])
    probs = predictions[prob_cols].to_numpy(dtype=np.float32)
    idx = np.random.default_rng(seed).integers(0, n, (BOOTSTRAP, n))
    counts = np.zeros((BOOTSTRAP, n))
    np.add.at(counts, (np.arange(BOOTSTRAP)[:, None], idx), 1.0)
    f1s, eces = resampled_f1_and_ece(counts, actual, probs)
    return {
        "accuracy": (float(low), float(high)),
        "f1_macro": (float(np.percentile(f1s, 2.5)), float(np.percentile(f1s, 97.5))),
        "ece": (float(np.percentile(eces, 2.5)), float(np.percentile(eces, 97.5))),
    }
