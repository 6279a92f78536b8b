"""What a model is trained to do: the loss and the validation metrics around a head's output.

    objective = build_objective({"kind": "classification", "n_classes": 9})
    loss = objective.loss(output, y)          # training and validation loss
    objective.update(output, y)               # accumulate val/* metrics over an epoch
    objective.metrics.compute()               # {"val/accuracy": ..., "val/f1_macro": ...}

A task (`seqops.tasks`) names its objective and arguments; `LitSequenceModel` builds it, so
the system holds no task branches. Metric names follow the vocabulary in
`docs/architecture.md` (`val/accuracy`, `val/rmse`, ...).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torchmetrics import MetricCollection
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score
from torchmetrics.regression import MeanAbsoluteError, MeanSquaredError, R2Score

from seqops.data.windows import integration_matrix


class Objective(nn.Module):
    """Loss and validation metrics (`metrics`, a MetricCollection prefixed `val/`)."""

    metrics: MetricCollection

    def loss(self, output: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def update(self, output: torch.Tensor, y: torch.Tensor) -> None:
        raise NotImplementedError


class Classification(Objective):
    """Cross-entropy over `(B, C)` logits; accuracy and macro-F1."""

    def __init__(self, n_classes: int, label_smoothing: float = 0.0) -> None:
        super().__init__()
        self.cross_entropy = nn.CrossEntropyLoss(label_smoothing=label_smoothing)
        self.metrics = MetricCollection(
            {
                "accuracy": MulticlassAccuracy(n_classes, average="micro"),
                "f1_macro": MulticlassF1Score(n_classes, average="macro"),
            }
        ).clone(prefix="val/")

    def loss(self, output: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.cross_entropy(output, y)

    def update(self, output: torch.Tensor, y: torch.Tensor) -> None:
        self.metrics.update(output, y)


class Forecast(Objective):
    """Squared error of the integrated, standardised levels of a `(B, H, K)` forecast; RMSE and
    MAE in the series' units.

    The model writes scaled (differenced) steps; a difference error at step j carries into
    every later level it is integrated into, so the loss is taken on levels."""

    def __init__(self, horizon: int, lag: int, target_std: list[float]) -> None:
        super().__init__()
        integrate = integration_matrix(horizon, lag)
        self.register_buffer("integrate", torch.tensor(integrate, dtype=torch.float32))
        self.register_buffer("target_std", torch.tensor(target_std, dtype=torch.float32))
        self.metrics = MetricCollection(
            {"rmse": MeanSquaredError(squared=False), "mae": MeanAbsoluteError()}
        ).clone(prefix="val/")

    def level_error(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """`(B, H, K)` errors of the integrated, standardised levels."""
        integrate: torch.Tensor = self.integrate  # type: ignore[assignment]
        return torch.einsum("hj,bjk->bhk", integrate, output - target)

    def loss(self, output: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.level_error(output, y).pow(2).mean()

    def update(self, output: torch.Tensor, y: torch.Tensor) -> None:
        target_std: torch.Tensor = self.target_std  # type: ignore[assignment]
        error = (self.level_error(output, y) * target_std).flatten()
        self.metrics.update(error, torch.zeros_like(error))


class Regression(Objective):
    """Mean squared error of a standardised `(B, 1)` target; RMSE, MAE and R² in its units
    (`mean` / `std`: the training split's target scaler)."""

    def __init__(self, mean: float, std: float) -> None:
        super().__init__()
        self.mean, self.std = mean, std
        self.metrics = MetricCollection(
            {"rmse": MeanSquaredError(squared=False), "mae": MeanAbsoluteError(), "r2": R2Score()}
        ).clone(prefix="val/")

    def loss(self, output: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return (output.squeeze(-1) - y).pow(2).mean()

    def update(self, output: torch.Tensor, y: torch.Tensor) -> None:
        self.metrics.update(output.squeeze(-1) * self.std + self.mean, y * self.std + self.mean)


OBJECTIVES: dict[str, type[Objective]] = {
    "classification": Classification,
    "forecast": Forecast,
    "regression": Regression,
}


def build_objective(spec: dict[str, Any]) -> Objective:
    """`{"kind": <one of OBJECTIVES>, **its arguments}` → the objective."""
    kind, kwargs = spec["kind"], {k: v for k, v in spec.items() if k != "kind"}
    return OBJECTIVES[kind](**kwargs)
