"""`sequence_regression`'s train part: the standardised target's objective, and the
random-kernel path's network arguments (`model.kernel_features`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from seqops.contracts import MetricsReport
from seqops.tasks.base import kernel_network_args
from seqops.tasks.parts.train import TrainTask
from seqops.tasks.regression.task import RegressionMeta, RegressionReport, SequenceRegression

if TYPE_CHECKING:
    from seqops.config import ModelConfig, TrainConfig


class SequenceRegressionTrain(
    TrainTask[RegressionMeta, RegressionReport, MetricsReport], SequenceRegression
):
    def network_args(
        self, meta: RegressionMeta, processed: Path, model: ModelConfig
    ) -> dict[str, Any]:
        return kernel_network_args(meta.max_train_length, model)

    def objective(
        self, meta: RegressionMeta, train: TrainConfig, model: ModelConfig
    ) -> dict[str, Any]:
        return {"kind": "regression", "mean": meta.target.mean, "std": meta.target.std}
