"""LitSequenceModel: a SequenceNet plus its objective (loss, metrics), optimiser and schedule.

The task decides the head's width (`n_outputs`), extra network arguments (a vocabulary, a
forecast horizon) and the objective (`seqops.model.objectives`); the system itself is the
same for every task. The objective is built with the network, since a CRF tagger's
objective scores with the network's own CRF layer. Metric names follow
the vocabulary of `docs/architecture.md` (`train/loss`, `val/loss`, `val/accuracy`,
`val/rmse`, ...), so Lightning's logs, early stopping, the Optuna pruner and MLflow share
them.
"""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
import torch

from seqops.data.sequences import IGNORE_INDEX
from seqops.model.network import RecurrentState, SequenceNet, step_mask
from seqops.model.objectives import build_objective


class LitSequenceModel(pl.LightningModule):
    def __init__(
        self,
        *,
        n_features: int,
        n_outputs: int,
        network: dict[str, Any],
        objective: dict[str, Any],
        lr: float,
        weight_decay: float,
        scheduler: str,
        max_epochs: int,
        monitor: str = "val/loss",
        monitor_mode: str = "min",
        noise_std: float = 0.0,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = SequenceNet(n_features, n_outputs, **network)
        self.objective = build_objective(objective, self.net)
        #: A stateful objective's recurrent state, per split, as the last window left it.
        self._streams: dict[str, RecurrentState | None] = {"train": None, "val": None}

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.net(x, lengths)

    # -- stateful objectives (truncated BPTT): the state carried from batch to batch --------

    def on_train_epoch_start(self) -> None:
        self._streams = {"train": None, "val": None}

    def on_validation_epoch_start(self) -> None:
        self._streams["val"] = None

    def _stream_window(self, batch: tuple[torch.Tensor, ...], split: str) -> tuple[Any, int]:
        """One window `(tokens (B, T), reset (B,), targets (B, T))` of B continuous rows from
        the state the previous window of `split` left (zeroed for each row whose `reset` is
        set: a document starts there), the new state kept detached (backpropagation stops at
        the window's edge). Returns the mean loss over the real targets and their count."""
        tokens, reset, targets = batch
        state = self._streams[split]
        if state:  # None, or () from a transformer (no state)
            keep = (~reset).to(state[0].dtype).view(1, -1, 1)  # (1, B, 1): batch on dim 1
            state = tuple(s * keep for s in state)
        lengths = torch.full((tokens.shape[0],), tokens.shape[1], dtype=torch.int64)
        logits, after = self.net.forward_with_state(tokens, lengths, state)  # (B, T, V)
        self._streams[split] = tuple(s.detach() for s in after)
        real = int((targets != IGNORE_INDEX).sum())
        return (self.objective.loss(logits, targets) if real else None), real

    def _stream_training_step(self, batch: tuple[torch.Tensor, ...]) -> torch.Tensor | None:
        loss, real = self._stream_window(batch, "train")
        if loss is None:
            return None  # a window with no target: no optimiser step
        self.log("train/loss", loss, on_step=False, on_epoch=True, batch_size=real)
        return loss

    def _stream_validation_step(self, batch: tuple[torch.Tensor, ...]) -> None:
        loss, real = self._stream_window(batch, "val")
        if loss is not None:  # weighted by targets: the epoch's value is NLL per token
            self.log("val/loss", loss, on_epoch=True, batch_size=real, prog_bar=True)

    # -- every objective --------------------------------------------------------------------

    def training_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> torch.Tensor:
        if self.objective.stateful:
            return self._stream_training_step(batch)  # type: ignore[return-value]
        x, lengths, y = batch
        noise_std: float = self.hparams["noise_std"]
        if noise_std > 0 and x.is_floating_point():  # token ids are never jittered
            # Jitter only real steps; padding stays as collate left it.
            mask = step_mask(lengths, x.shape[1]).unsqueeze(-1)  # (B, T, 1)
            x = x + noise_std * torch.randn_like(x) * mask
        loss = self.objective.loss(self(x, lengths), y)
        # sync_dist: under DDP each rank sees part of the epoch; the logged value is the mean.
        self.log(
            "train/loss", loss, on_step=False, on_epoch=True, batch_size=len(y), sync_dist=True
        )
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> None:
        if self.objective.stateful:
            return self._stream_validation_step(batch)
        x, lengths, y = batch
        output = self(x, lengths)
        loss = self.objective.loss(output, y)
        self.log("val/loss", loss, on_epoch=True, batch_size=len(y), prog_bar=True, sync_dist=True)
        self.objective.update(output, y)

    def on_validation_epoch_end(self) -> None:
        self.log_dict(self.objective.metrics.compute(), prog_bar=True)
        self.objective.metrics.reset()

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
