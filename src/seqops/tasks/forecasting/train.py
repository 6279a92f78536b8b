"""`forecasting`'s train part: the horizon, and the objective that scores level errors."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from seqops.tasks.forecasting.task import Forecasting, ForecastMeta, ForecastMetrics, ForecastReport
from seqops.tasks.parts.train import TrainTask

if TYPE_CHECKING:
    from seqops.config import ModelConfig, TrainConfig


class ForecastingTrain(TrainTask[ForecastMeta, ForecastReport, ForecastMetrics], Forecasting):
    def network_args(
        self, meta: ForecastMeta, processed: Path, model: ModelConfig
    ) -> dict[str, Any]:
        return {"horizon": meta.spec.horizon}

    def objective(
        self, meta: ForecastMeta, train: TrainConfig, model: ModelConfig
    ) -> dict[str, Any]:
        """The horizon, and the lag and target scale that turn the scaled (differenced)
        outputs into level errors."""
        spec = meta.spec
        return {
            "kind": "forecast",
            "horizon": spec.horizon,
            "lag": spec.lag,
            "target_std": spec.std[spec.target_index].tolist(),
        }
