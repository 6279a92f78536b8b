"""LitSequenceModel: loss, metrics, optimiser and schedule around a SequenceNet.

Metric names follow design.md §7 (`train/loss`, `val/loss`, `val/accuracy`, `val/f1_macro`;
forecasting: `val/rmse`, `val/mae` in the series' units), so Lightning's logs, early stopping,
the Optuna pruner and MLflow share one vocabulary.
"""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
import torch
from torch import nn
from torchmetrics import MetricCollection
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score
from torchmetrics.regression import MeanAbsoluteError, MeanSquaredError

from seqops.data.windows import integration_matrix
from seqops.model.network import SequenceNet, step_mask


class LitSequenceModel(pl.LightningModule):
    def __init__(
        self,
        *,
        n_features: int,
        n_classes: int,
        network: dict[str, Any],
        lr: float,
        weight_decay: float,
        scheduler: str,
        max_epochs: int,
        monitor: str = "val/loss",
        monitor_mode: str = "min",
        noise_std: float = 0.0,
        label_smoothing: float = 0.0,
        forecast: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.forecasting = forecast is not None
        if forecast is not None:
            # n_classes is the number of target series; the head writes `horizon` steps of each.
            self.net = SequenceNet(n_features, n_classes, horizon=forecast["horizon"], **network)
            integrate = integration_matrix(forecast["horizon"], forecast["lag"])
            self.register_buffer("integrate", torch.tensor(integrate, dtype=torch.float32))
            self.register_buffer(
                "target_std", torch.tensor(forecast["target_std"], dtype=torch.float32)
            )
            self.val_errors = MetricCollection(
                {"rmse": MeanSquaredError(squared=False), "mae": MeanAbsoluteError()}
            ).clone(prefix="val/")
            return
        self.net = SequenceNet(n_features, n_classes, **network)
        self.loss = nn.CrossEntropyLoss(label_smoothing=label_smoothing)
        metrics = MetricCollection(
            {
                "accuracy": MulticlassAccuracy(n_classes, average="micro"),
                "f1_macro": MulticlassF1Score(n_classes, average="macro"),
            }
        )
        self.val_metrics = metrics.clone(prefix="val/")

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.net(x, lengths)

    def level_error(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Forecasting: `(B, H, K)` errors of the integrated, standardised levels.

        The model writes scaled (differenced) steps; a difference error at step j carries
        into every later level it is integrated into, so the loss is taken on levels."""
        return torch.einsum("hj,bjk->bhk", self.integrate, output - target)

    def _step_loss(self, output: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.forecasting:
            return self.level_error(output, y).pow(2).mean()
        return self.loss(output, y)

    def training_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> torch.Tensor:
        x, lengths, y = batch
        noise_std: float = self.hparams["noise_std"]
        if noise_std > 0 and x.is_floating_point():  # token ids are never jittered
            # Jitter only real steps; padding stays as collate left it.
            mask = step_mask(lengths, x.shape[1]).unsqueeze(-1)  # (B, T, 1)
            x = x + noise_std * torch.randn_like(x) * mask
        loss = self._step_loss(self(x, lengths), y)
        self.log("train/loss", loss, on_step=False, on_epoch=True, batch_size=len(y))
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> None:
        x, lengths, y = batch
        output = self(x, lengths)
        self.log("val/loss", self._step_loss(output, y), on_epoch=True, batch_size=len(y))
        if self.forecasting:
            # Errors in the series' own units: integrated levels times the target scale.
            target_std: torch.Tensor = self.target_std  # type: ignore[assignment]
            error = (self.level_error(output, y) * target_std).flatten()
            self.val_errors.update(error, torch.zeros_like(error))
        else:
            self.val_metrics.update(output, y)

    def on_validation_epoch_end(self) -> None:
        metrics = self.val_errors if self.forecasting else self.val_metrics
        self.log_dict(metrics.compute())
        metrics.reset()

    def configure_optimizers(self) -> Any:
        hp: Any = self.hparams
        optimizer = torch.optim.AdamW(self.parameters(), lr=hp.lr, weight_decay=hp.weight_decay)
        if hp.scheduler == "cosine":
            schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=hp.max_epochs)
            return {"optimizer": optimizer, "lr_scheduler": schedule}
        if hp.scheduler == "plateau":
            plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(
                optimizer, mode=hp.monitor_mode, factor=0.5, patience=3
            )
            return {
                "optimizer": optimizer,
                "lr_scheduler": {"scheduler": plateau, "monitor": hp.monitor},
            }
        return optimizer
