"""A classical baseline that scores better than the model on test is said in words, significant
or not: by evaluate (with `beats_baseline` in its headline numbers), in the gate's baseline
check and in the model card. A model that beats its baselines gets no such sentence."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from seqops.config import ReleaseConfig
from seqops.contracts import ReleaseReport
from seqops.gate import against_baseline, baseline_sentences, model_beats_baselines
from seqops.layout import Layout
from seqops.registry import Standing, Verdict
from seqops.stats import PairedScores
from seqops.tasks.classifier.evaluate import ClassificationEvaluation
from seqops.tasks.parts.release import get_release
from tests.unit.test_baselines import _evaluation

REPO = Path(__file__).resolve().parents[2]
SAID = "The classical baseline (minirocket) is better than the model on test"


def _scores(evaluation: ClassificationEvaluation) -> PairedScores:
    predictions = pd.read_csv(io.StringIO(evaluation.predictions_csv()))
    return get_release("sequence_classification").paired_scores(evaluation.metrics, predictions)


@pytest.mark.parametrize(
    ("baseline_right", "words"),
    [(90, "0.9000 vs 0.7000 accuracy (significant at α=0.05, p="),
     (74, "0.7400 vs 0.7000 accuracy (not significant at α=0.05, p=")],
)  # fmt: skip
def test_a_better_baseline_is_said_significant_or_not(baseline_right: int, words: str) -> None:
    scores = _scores(_evaluation(baseline_right))
    (sentence,) = baseline_sentences(scores, alpha=0.05)
    assert sentence.startswith(f"{SAID}: {words}") and sentence.endswith(").")
    assert not model_beats_baselines(scores)


def test_a_model_that_beats_its_baseline_gets_no_sentence() -> None:
    scores = _scores(_evaluation(baseline_right=60))
    assert baseline_sentences(scores, alpha=0.05) == []
    assert model_beats_baselines(scores)


def test_a_tie_is_no_win_and_no_sentence() -> None:
    scores = _scores(_evaluation(baseline_right=70))
    assert baseline_sentences(scores) == [] and not model_beats_baselines(scores)


def test_errors_compare_rmse_lower_is_better() -> None:
    actual = np.linspace(0, 1, 50)
    scores = PairedScores("error", actual * 0 + 0.2, {"ridge": actual * 0 + 0.1})
    (sentence,) = baseline_sentences(scores)
    assert sentence.startswith("The classical baseline (ridge) is better than the model on test:")
    assert "0.1000 vs 0.2000 rmse (p=" in sentence


@pytest.mark.parametrize(("baseline_right", "said"), [(74, True), (60, False)])
def test_the_gate_check_says_it(tmp_path: Path, baseline_right: int, said: bool) -> None:
    layout = Layout(tmp_path)
    evaluation = _evaluation(baseline_right)
    layout.predictions.parent.mkdir(parents=True)
    layout.predictions.write_text(evaluation.predictions_csv())
    check = against_baseline(ReleaseConfig(baseline_alpha=0.05), evaluation.metrics, layout)
    assert check is not None and check.passed
    assert (SAID in check.detail) is said


@pytest.mark.parametrize(("baseline_right", "beats"), [(74, 0), (60, 1)])
def test_evaluate_headline_numbers_carry_beats_baseline(
    tmp_path: Path, baseline_right: int, beats: int
) -> None:
    from seqops.stages.evaluate import _headline

    evaluation = _evaluation(baseline_right)
    predictions, numbers = tmp_path / "predictions.csv", tmp_path / "evaluate.json"
    predictions.write_text(evaluation.predictions_csv())
    said = _headline(evaluation.metrics, predictions, numbers)
    found = json.loads(numbers.read_text())
    assert found["beats_baseline"] == beats
    assert found["test"] == pytest.approx(evaluation.metrics.numbers()["test"])
    assert bool(said) is (beats == 0) and all(s.startswith(SAID) for s in said)


def test_no_baseline_no_beats_baseline(tmp_path: Path) -> None:
    from seqops.stages.evaluate import _headline

    target = torch.tensor([0, 1, 0, 1])
    probs = torch.nn.functional.one_hot(target, 2).float()
    evaluation = ClassificationEvaluation(probs, target, ["a", "b"], "sequence_classification", {})
    numbers = tmp_path / "evaluate.json"
    assert _headline(evaluation.metrics, tmp_path / "none.csv", numbers) == []
    assert "beats_baseline" not in json.loads(numbers.read_text())


def _committed_reports(root: Path) -> Layout:
    """The repository's committed reports of the default project, copied under `root`."""
    layout = Layout(root)
    shutil.copytree(REPO / "reports", layout.reports)
    layout.models.mkdir()
    shutil.copy(REPO / "models" / "run.json", layout.run_file)
    return layout


def _card(layout: Layout) -> str:
    from seqops.model_card import render_model_card

    verdict = Verdict(ReleaseReport.read(layout.release_report), "digest", None, "release")
    return render_model_card(layout, verdict, {"model.cell": "lstm"}, Standing(("candidate",)))


@pytest.mark.parametrize("baseline_better", [True, False])
def test_the_model_card_says_it(tmp_path: Path, baseline_better: bool) -> None:
    layout = _committed_reports(tmp_path)
    predictions = pd.read_csv(layout.predictions, dtype=str)
    right = predictions["actual"] == predictions["minirocket"]
    if baseline_better:  # the baseline right everywhere
        predictions["minirocket"] = predictions["actual"]
    else:  # the baseline wrong wherever it was right
        other = predictions["actual"].map(lambda label: "2" if label == "1" else "1")
        predictions["minirocket"] = predictions["minirocket"].where(~right, other)
    predictions.to_csv(layout.predictions, index=False)
    card = _card(layout)
    section = card.split("## Against the classical baseline")[1].split("\n## ")[0]
    assert (SAID in section) is baseline_better
