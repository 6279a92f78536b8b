"""The release gate's baseline check through the real `dvc` pipeline and MLflow registry.

Its own file (not test_release.py) so that the test runner can run it beside the promotion
tests.
"""

import json
from pathlib import Path

import pytest

from tests.conftest import run
from tests.integration.test_release import DVC, SEQOPS, _client, _release, _set


@pytest.mark.slow
def test_an_undertrained_model_is_refused_because_the_baseline_won(project: Path) -> None:
    """One epoch of a tiny LSTM against MiniRocket on the same JapaneseVowels split: the
    baseline is in every report, and the gate refuses the model saying the baseline won."""
    _set(
        project,
        train={"max_epochs": 1},
        tune={"enabled": False},
        release={"baseline_alpha": 0.05},
    )
    run([DVC, "repro"], project)
    metrics = json.loads((project / "reports" / "metrics.json").read_text())
    baseline = metrics["baseline"]["minirocket"]
    assert baseline["accuracy"] > 0.9 > metrics["test"]["accuracy"]
    assert metrics["skill"]["accuracy_minus_minirocket"] < 0
    predictions = (project / "reports" / "predictions.csv").read_text().splitlines()
    assert predictions[0].endswith(",minirocket") and len(predictions) == 371

    release = _release(project)
    check = release["checks"]["not_worse_than_baseline"]
    assert not release["passed"] and not check["passed"] and check["value"] < 0.05
    assert "the baseline won: minirocket" in check["detail"]
    card = (project / "models" / "MODEL_CARD.md").read_text()
    assert "## Against the classical baseline" in card and "| minirocket |" in card
    assert "the baseline won" in card
    run_id = json.loads((project / "models" / "run.json").read_text())["run_id"]
    logged = _client(project).get_run(run_id).data.metrics
    assert logged["baseline/minirocket/accuracy"] == pytest.approx(baseline["accuracy"])

    # dvc exp show reads the evaluate stage's numbers, baseline included.
    shown = json.loads(run([DVC, "exp", "show", "--json"], project).stdout)
    workspace = shown[0]["data"]["metrics"]["reports/metrics/evaluate.json"]["data"]
    assert workspace["baseline"]["minirocket"]["accuracy"] == pytest.approx(baseline["accuracy"])

    refused = run([SEQOPS, "promote"], project, check=False)
    assert refused.returncode == 3 and "not_worse_than_baseline" in refused.stderr
