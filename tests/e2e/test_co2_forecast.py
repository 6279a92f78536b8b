"""The CO2 preset's base params (no tuning) meet the forecasting target on the last 12 months:
RMSE <= 0.50 ppm and at least 3x better than seasonal naive (1.52 ppm)."""

from pathlib import Path

import pytest

from seqops.config import parse_config
from seqops.layout import Layout
from seqops.model.training import fit
from seqops.stages.prepare import write
from seqops.tasks.parts.evaluate import evaluate_checkpoint
from seqops.tasks.parts.prepare import get_prepare
from tests.conftest import preset_params

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]


def test_co2_base_params_beat_seasonal_naive_three_times(tmp_path: Path) -> None:
    cfg = parse_config(preset_params("co2"))
    layout = Layout(tmp_path)
    write(get_prepare(cfg.data.task).prepare(cfg.data, cfg.seed), layout)
    result = fit(cfg, layout.processed, tmp_path / "ckpt", progress_bar=False)
    metrics = evaluate_checkpoint(result.best_checkpoint, layout.processed).metrics
    assert metrics.baseline is not None
    rmse, naive = metrics.test["rmse"], metrics.baseline["seasonal_naive"]["rmse"]
    assert metrics.test["n"] == 12 and naive == pytest.approx(1.5203, abs=1e-4)
    assert rmse <= 0.50 and 3 * rmse <= naive, metrics.model_dump_json()
