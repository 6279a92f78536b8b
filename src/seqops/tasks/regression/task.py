"""`sequence_regression`'s seam: name, metadata, report (see the package's docstring)."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import model_validator

from seqops.contracts import (
    Contract,
    DataReport,
    Finite,
    MetricsReport,
    Scale,
)
from seqops.tasks.base import Task
from seqops.tasks.long_format import ScaledMeta

if TYPE_CHECKING:
    from seqops.config import DataConfig

PREDICTION = "prediction"
"""The ONNX output, float32 `(batch, 1)`: the standardised target; and the answer column,
in the target's units."""

#: RidgeCV's candidate penalties. Wide on purpose: NIR spectra want almost none (Tecator picks
#: 1e-5) and noisy count series a lot (Covid3Month picks 1e3); an edge choice is a clipped one.
RIDGE_ALPHAS = tuple(10.0**k for k in range(-6, 7))

#: What the bundled sets' labels measure (the model card's "targets").
BUNDLED_TARGETS = {
    "Tecator": "fat content (% of the meat sample)",
    "Covid3Month": "COVID-19 death rate (deaths / confirmed cases)",
}


class TargetScaler(Contract):
    """The training split's target mean and std: the network reads and writes
    `(y - mean) / std`."""

    mean: Finite
    std: Scale


class RegressionMeta(ScaledMeta):
    task: Literal["sequence_regression"] = "sequence_regression"
    input: Literal["x"] = "x"
    target: TargetScaler

    @model_validator(mode="after")
    def _one_output_per_scaled_feature(self) -> RegressionMeta:
        self.scaler.check_features(len(self.feature_names))
        if self.n_outputs != 1:
            raise ValueError(f"n_outputs = {self.n_outputs}: a regressor predicts 1 number")
        return self


class RegressionReport(DataReport):
    task: Literal["sequence_regression"] = "sequence_regression"
    target: dict[str, dict[str, float]]
    """The target's mean / std / min / max per split, in its units."""


# -- the task ---------------------------------------------------------------------------------


class SequenceRegression(Task[RegressionMeta, RegressionReport, MetricsReport]):
    """The seam."""

    name = "sequence_regression"
    meta_type = RegressionMeta
    data_report_type = RegressionReport
    metrics: ClassVar[frozenset[str]] = frozenset({"rmse", "mae", "r2"})
    val_metrics: ClassVar[frozenset[str]] = frozenset({"rmse", "mae", "r2"})
    output = PREDICTION
    reads = ("model.kernel_features", "model.recurrent")
    ignored = ("train.label_smoothing",)

    def check_data(self, data: DataConfig) -> None:
        super().check_data(data)
        if data.id_column == PREDICTION:
            raise ValueError(
                f"data.id_column = {PREDICTION!r} would collide with the answer's "
                f"{PREDICTION!r} column; rename it"
            )
