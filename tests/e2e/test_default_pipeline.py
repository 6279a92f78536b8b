"""Default params on JapaneseVowels, untuned, clear an accuracy floor (published FCN: 0.993).

The tuned default pipeline must clear issue 2's 0.97 (`.ci/check_reports.py`, on `make
repro`). This untuned fit cleared 0.97 before `train.epoch_examples: 1024`, got 0.9622 after
it, and gets 0.9703 with the training-time augmentation sequence classification now defaults
to (`train.augment_noise` / `augment_scale` 0.1). On 370 test sequences a few sequences are
inside the ±0.02 Wilson interval, and on validation splits both settings are about neutral for
JapaneseVowels (README, "Against classical baselines"), so the floor here sits 0.01 below the
pipeline's."""

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


def test_untuned_default_params_reach_096_test_accuracy(tmp_path: Path) -> None:
    cfg = load_config(REPO / "params.yaml")
    layout = Layout(tmp_path)
    write(get_task(cfg.data.task).prepare(cfg.data, cfg.seed), layout)
    result = fit(cfg, layout.processed, tmp_path / "ckpt", progress_bar=False)
    evaluation = evaluate_checkpoint(result.best_checkpoint, layout.processed)
    test = evaluation.metrics.test
    assert test["n"] == 370
    assert test["accuracy"] >= 0.96, json.dumps(test)
    assert len(evaluation.predictions_csv().splitlines()) == 1 + 370
