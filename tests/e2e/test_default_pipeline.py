"""Default params on JapaneseVowels clear the accuracy floor of issue 2 (published FCN: 0.993)."""

import json
from pathlib import Path

import pytest

from seqops.config import load_config
from seqops.layout import Layout
from seqops.model.runtime import evaluate_checkpoint
from seqops.model.training import fit
from seqops.stages.prepare import write
from seqops.tasks import get_task

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]


def test_default_params_reach_097_test_accuracy(tmp_path: Path) -> None:
    cfg = load_config(REPO / "params.yaml")
    layout = Layout(tmp_path)
    write(get_task(cfg.data.task).prepare(cfg.data, cfg.seed), layout)
    result = fit(cfg, layout.processed, tmp_path / "ckpt", progress_bar=False)
    evaluation = evaluate_checkpoint(result.best_checkpoint, layout.processed)
    test = evaluation.metrics.test
    assert test["n"] == 370
    assert test["accuracy"] >= 0.97, json.dumps(test)
    assert len(evaluation.predictions_csv().splitlines()) == 1 + 370
