"""Default params on JapaneseVowels clear the accuracy floor of issue 2 (published FCN: 0.993)."""

import json
from pathlib import Path

import pytest

from seqops.config import load_config
from seqops.layout import Layout
from seqops.stages.evaluate import evaluate
from seqops.stages.prepare import prepare, write
from seqops.stages.train import fit

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]


def test_default_params_reach_097_test_accuracy(tmp_path: Path) -> None:
    cfg = load_config(REPO / "params.yaml")
    layout = Layout(tmp_path)
    write(prepare(cfg.data, cfg.seed), layout)
    result = fit(cfg, layout.processed, tmp_path / "ckpt", progress_bar=False)
    metrics, probs, _ = evaluate(result.best_checkpoint, layout.processed)
    assert metrics["test"]["n"] == 370
    assert metrics["test"]["accuracy"] >= 0.97, json.dumps(metrics["test"])
    assert probs.shape == (370, 9)
