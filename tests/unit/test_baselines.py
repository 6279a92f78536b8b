"""The classical baselines beside every model and the release check against them.

MiniRocket (sequences) and TF-IDF + logistic regression (text) are fitted on the training split
only and are deterministic; their per-example test predictions land in `predictions.csv`, their
scores in `metrics.json` (and so in `dvc exp show`) and MLflow; `not_worse_than_baseline`
refuses a model the baseline beats significantly (McNemar for classifiers, Diebold-Mariano for
errors) and says the baseline won.
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
import torch

from seqops.config import ReleaseConfig
from seqops.contracts import MetricsReport
from seqops.data.sequences import SequenceSet
from seqops.gate import against_baseline
from seqops.stats import PairedScores
from seqops.tasks.classification.evaluate import minirocket_baseline, padded_panel
from seqops.tasks.classifier.evaluate import ClassificationEvaluation
from seqops.tasks.parts.card import baseline_card_lines
from seqops.tasks.parts.release import baseline_check, get_release
from seqops.tasks.text.evaluate import tfidf_baseline


def _waves(n: int, seed: int) -> SequenceSet:
    """Two classes of variable-length noisy sequences: slow vs fast sine waves, 2 channels."""
    rng = np.random.default_rng(seed)
    sequences, labels = [], []
    for i in range(n):
        label = i % 2
        length = int(rng.integers(12, 30))
        t = np.arange(length)
        wave = np.sin(t * (0.3 if label else 1.2) + rng.uniform(0, 6))
        x = np.stack([wave, rng.normal(size=length)], axis=1) + rng.normal(0, 0.3, (length, 2))
        sequences.append(x.astype(np.float32))
        labels.append(label)
    return SequenceSet(sequences, np.array(labels, dtype=np.int64))


def test_padded_panel_pads_with_zeros_and_cuts_long_sequences() -> None:
    short, long = np.ones((2, 2)), np.arange(12, dtype=float).reshape(6, 2)
    panel = padded_panel([short, long], 4)
    assert panel.shape == (2, 2, 4)  # (N, F, T)
    np.testing.assert_array_equal(panel[0, :, :2], 1.0)
    np.testing.assert_array_equal(panel[0, :, 2:], 0.0)
    np.testing.assert_array_equal(panel[1, 0], [0, 2, 4, 6])  # cut to 4 steps, channel 0


def test_minirocket_learns_and_is_deterministic() -> None:
    train, test = _waves(40, seed=0), _waves(30, seed=1)
    first = minirocket_baseline(train, test)
    assert first.dtype == np.int64 and first.shape == (30,)
    assert np.mean(first == test.labels) >= 0.9
    np.testing.assert_array_equal(first, minirocket_baseline(train, test))


def _reviews(n: int, seed: int) -> tuple[list[str], np.ndarray]:
    rng = np.random.default_rng(seed)
    good, bad = ["fine", "witty", "moving"], ["dull", "flat", "clumsy"]
    filler = ["a", "film", "the"]
    texts, labels = [], []
    for i in range(n):
        words = [*rng.choice(filler, 4), str(rng.choice(good if i % 2 else bad))]
        texts.append(" ".join(rng.permutation(words)))
        labels.append(i % 2)
    return texts, np.array(labels)


def test_tfidf_baseline_learns_from_train_and_is_deterministic() -> None:
    train, val, test = _reviews(60, 0), _reviews(20, 1), _reviews(40, 2)
    first = tfidf_baseline(train, val, test[0])
    assert np.mean(first == test[1]) == 1.0
    np.testing.assert_array_equal(first, tfidf_baseline(train, val, test[0]))


def _evaluation(baseline_right: int, n: int = 100) -> ClassificationEvaluation:
    """A model right on the first 70 of `n` examples; the baseline on the first
    `baseline_right`."""
    target = torch.tensor([i % 2 for i in range(n)])
    predicted = torch.where(torch.arange(n) < 70, target, 1 - target)
    probs = torch.nn.functional.one_hot(predicted, 2).float() * 0.8 + 0.1
    baseline = np.where(np.arange(n) < baseline_right, target.numpy(), 1 - target.numpy())
    return ClassificationEvaluation(
        probs, target, ["neg", "pos"], "sequence_classification", {"minirocket": baseline}
    )


def test_classifier_reports_its_baseline_everywhere() -> None:
    evaluation = _evaluation(baseline_right=90)
    m = evaluation.metrics
    assert m.test["accuracy"] == pytest.approx(0.7)
    assert m.baseline == {"minirocket": pytest.approx({"accuracy": 0.9, "f1_macro": 0.9})}
    assert m.skill == {"accuracy_minus_minirocket": pytest.approx(-0.2)}
    numbers = m.numbers()  # reports/metrics/evaluate.json: what dvc exp show reads
    assert numbers["baseline"]["minirocket"]["accuracy"] == pytest.approx(0.9)
    assert evaluation.logged_metrics()["baseline/minirocket/accuracy"] == pytest.approx(0.9)
    assert "minirocket accuracy 0.9000" in evaluation.summary()

    predictions = pd.read_csv(io.StringIO(evaluation.predictions_csv()))
    assert list(predictions.columns[-1:]) == ["minirocket"]
    task = get_release("sequence_classification")
    scores = task.paired_scores(m, predictions)
    assert scores.value(scores.model) == pytest.approx(0.7)
    assert scores.value(scores.baselines["minirocket"]) == pytest.approx(0.9)
    card = "\n".join(baseline_card_lines(scores))
    low, high = scores.interval("minirocket")
    assert low < -0.2 < high < 0
    assert "| minirocket | 0.9 | -0.2 |" in card


def test_a_model_without_baselines_reports_none() -> None:
    target = torch.tensor([0, 1, 0, 1])
    probs = torch.nn.functional.one_hot(target, 2).float()
    evaluation = ClassificationEvaluation(probs, target, ["a", "b"], "sequence_classification", {})
    assert evaluation.metrics.baseline is None and evaluation.metrics.skill is None
    assert "baseline" not in evaluation.metrics.numbers()


@pytest.mark.parametrize(
    ("baseline_right", "passed", "words"),
    [
        (90, False, "the baseline won: minirocket is significantly better"),
        (74, True, "minirocket did better, not significantly"),
        (60, True, "no baseline did better"),
    ],
)
def test_the_baseline_check_refuses_only_a_significant_loss(
    baseline_right: int, passed: bool, words: str
) -> None:
    evaluation = _evaluation(baseline_right)
    predictions = pd.read_csv(io.StringIO(evaluation.predictions_csv()))
    scores = get_release("sequence_classification").paired_scores(evaluation.metrics, predictions)
    check = baseline_check(scores, alpha=0.05)
    assert check.name == "not_worse_than_baseline"
    assert check.passed is passed and words in check.detail


def test_the_baseline_check_on_errors_uses_diebold_mariano() -> None:
    rng = np.random.default_rng(0)
    actual = rng.normal(size=200)
    predictions = pd.DataFrame(
        {
            "actual": actual,
            "model": actual + rng.normal(0, 1.0, 200),
            "ridge": actual + rng.normal(0, 0.3, 200),
        }
    )
    metrics = MetricsReport(task="sequence_regression", test={"rmse": 1.0}, baseline={"ridge": {}})
    scores = get_release("sequence_regression").paired_scores(metrics, predictions)
    assert scores.kind == "error" and scores.metric == "rmse"
    refused = baseline_check(scores, alpha=0.05)
    assert not refused.passed and "Diebold-Mariano" in refused.detail
    assert "the baseline won: ridge" in refused.detail
    swapped = predictions.rename(columns={"model": "ridge", "ridge": "model"})
    kept = baseline_check(get_release("sequence_regression").paired_scores(metrics, swapped), 0.05)
    assert kept.passed and "no baseline did better" in kept.detail


def test_the_release_reads_the_check_from_predictions(tmp_path) -> None:
    from seqops.layout import Layout

    layout = Layout(tmp_path)
    evaluation = _evaluation(baseline_right=90)
    layout.predictions.parent.mkdir(parents=True)
    layout.predictions.write_text(evaluation.predictions_csv())
    check = against_baseline(ReleaseConfig(), evaluation.metrics, layout)
    assert check is not None and not check.passed and check.value is not None
    assert check.value < 0.05
    assert against_baseline(ReleaseConfig(baseline_alpha=None), evaluation.metrics, layout) is None


def test_paired_scores_interval_resamples_pairs() -> None:
    same = np.array([True, False] * 20)
    scores = PairedScores("correct", same, {"b": same.copy()})
    assert scores.difference("b") == 0.0 and scores.interval("b") == (0.0, 0.0)
