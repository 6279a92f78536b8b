"""What a model is trained to do: the loss and the validation metrics around a head's output.

    objective = build_objective({"kind": "classification", "n_classes": 9})
    loss = objective.loss(output, y)          # training and validation loss
    objective.update(output, y)               # accumulate val/* metrics over an epoch
    objective.metrics.compute()               # {"val/accuracy": ..., "val/f1_macro": ...}

A task (`seqops.tasks`) names its objective and arguments; `LitSequenceModel` builds it, so
the system holds no task branches. Metric names follow the vocabulary in
`docs/architecture.md` (`val/accuracy`, `val/rmse`, ...).

Per-step objectives (`tagging`, `crf_tagging`) read `(B, T, C)` outputs of a `per_step`
network and `(B, T)` labels padded with `IGNORE_INDEX` (`seqops.data.sequences`): padded
steps never reach the loss or the metrics. `crf_tagging` scores with the network's own CRF
layer, so it is built with the network: `build_objective(spec, network)`. Given the tag
names (`tag_names`, BIO or BIOES tags of text), both also log `val/entity_f1`, the exact-match
entity F1 of the epoch's predicted tags (`EntityF1`), which early stopping can watch.
"""

from __future__ import annotations

from typing import Any, Self

import numpy as np
import torch
from torch import nn
from torchmetrics import Metric, MetricCollection
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score
from torchmetrics.regression import MeanAbsoluteError, MeanSquaredError, R2Score

from seqops.data.sequences import IGNORE_INDEX
from seqops.data.windows import integration_matrix
from seqops.model.crf import LinearChainCRF


class Objective(nn.Module):
    """Loss and validation metrics (`metrics`, a MetricCollection prefixed `val/`)."""

    metrics: MetricCollection
    stateful: bool = False
    """Batches are consecutive windows of continuous streams, `(tokens, reset, targets)`: the
    system carries the recurrent state across them (`next_token`)."""

    @classmethod
    def build(cls, network: nn.Module | None, **kwargs: Any) -> Self:
        """The objective from its spec's arguments; `network` is for an objective that
        scores with layers of the network being trained (a CRF), unused by the others."""
        return cls(**kwargs)

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

    def levels(self, output: torch.Tensor) -> torch.Tensor:
        """`(B, H, K)` integrated levels of scaled (differenced) steps, in the series' units,
        as departures from the drift forecast (what outputs of 0 forecast)."""
        target_std: torch.Tensor = self.target_std  # type: ignore[assignment]
        return self.level_error(output, torch.zeros_like(output)) * target_std

    def loss(self, output: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.level_error(output, y).pow(2).mean()

    def update(self, output: torch.Tensor, y: torch.Tensor) -> None:
        target_std: torch.Tensor = self.target_std  # type: ignore[assignment]
        error = (self.level_error(output, y) * target_std).flatten()
        self.metrics.update(error, torch.zeros_like(error))


def shrink_weight(network: np.ndarray, actual: np.ndarray) -> float:
    """The weight w in [0, 1] minimising the squared error of `w * network` against `actual`
    (least squares, clipped): both are level departures from the drift forecast, in the
    series' units. 1 when the network's departures are all zero (nothing to weigh)."""
    denominator = float(np.sum(network * network))
    if denominator == 0.0:
        return 1.0
    return min(max(float(np.sum(network * actual)) / denominator, 0.0), 1.0)


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


def real_steps(y: torch.Tensor) -> torch.Tensor:
    """`(B, T)` boolean mask of the labelled steps of `(B, T)` per-step labels."""
    return y != IGNORE_INDEX


class EntityF1(Metric):
    """Micro entity F1 of per-step tag ids against gold ones: seqeval's `f1_score` over the
    epoch's sentences, in its default mode, the chunking evaluate's entity scores use (an
    entity counts when its first token, last token and type all match; 0 with no entity).
    `update` takes `(B, T)` predicted and gold ids, gold `IGNORE_INDEX` after each
    sentence's end; each sentence's real steps are kept until `compute`."""

    full_state_update = False
    predicted: list[torch.Tensor]
    gold: list[torch.Tensor]

    def __init__(self, tag_names: list[str]) -> None:
        super().__init__()
        self.tag_names = list(tag_names)
        self.add_state("predicted", default=[], dist_reduce_fx=None)
        self.add_state("gold", default=[], dist_reduce_fx=None)

    def update(self, predicted: torch.Tensor, gold: torch.Tensor) -> None:
        lengths = real_steps(gold).sum(dim=1).tolist()
        for p_row, g_row, n in zip(predicted, gold, lengths, strict=True):
            self.predicted.append(p_row[:n])
            self.gold.append(g_row[:n])

    def compute(self) -> torch.Tensor:
        from seqeval.metrics import f1_score

        names = self.tag_names
        gold = [[names[i] for i in row.tolist()] for row in self.gold]
        predicted = [[names[i] for i in row.tolist()] for row in self.predicted]
        if not gold:
            return torch.tensor(0.0)
        return torch.tensor(float(f1_score(gold, predicted, zero_division=0)))


def tagging_metrics(n_tags: int, tag_names: list[str] | None) -> MetricCollection:
    """`val/token_accuracy`, and `val/entity_f1` when the tag names are given."""
    accuracy = MulticlassAccuracy(n_tags, average="micro")
    metrics: dict[str, Metric | MetricCollection] = {"token_accuracy": accuracy}
    if tag_names is not None:
        if len(tag_names) != n_tags:
            raise ValueError(f"{len(tag_names)} tag_names for {n_tags} tags")
        metrics["entity_f1"] = EntityF1(tag_names)
    return MetricCollection(metrics).clone(prefix="val/")


class Tagging(Objective):
    """Cross-entropy over `(B, T, C)` per-step logits, averaged over the real steps (labels
    equal to `IGNORE_INDEX` are left out); token accuracy over the real steps, and entity F1
    with `tag_names`."""

    def __init__(self, n_tags: int, tag_names: list[str] | None = None) -> None:
        super().__init__()
        self.cross_entropy = nn.CrossEntropyLoss(ignore_index=IGNORE_INDEX)
        self.metrics = tagging_metrics(n_tags, tag_names)

    def loss(self, output: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.cross_entropy(output.flatten(0, 1), y.flatten())  # (B * T, C), (B * T,)

    def update(self, output: torch.Tensor, y: torch.Tensor) -> None:
        real = real_steps(y)
        self.metrics["token_accuracy"].update(output[real], y[real])  # (N, C), (N,)
        if "entity_f1" in self.metrics:
            self.metrics["entity_f1"].update(output.argmax(dim=-1), y)  # (B, T), (B, T)


class CRFTagging(Objective):
    """Negative log-likelihood of the gold tags under the network's linear-chain CRF over its
    `(B, T, C)` emission scores, summed over the batch and divided by its real steps (a
    per-step scale, like `Tagging`'s cross-entropy, so one learning rate suits both); token
    accuracy of the Viterbi tags over the real steps.

    The labels say where each sequence ends (real steps first, then `IGNORE_INDEX`), since
    the loss sees no `lengths`; labels with a gap are refused. The CRF is the network's own
    module, shared here (so it trains with the network and is saved and exported with it;
    a system's state_dict lists it under both). With `tag_names`, entity F1 of the Viterbi
    tags too."""

    def __init__(self, crf: LinearChainCRF, tag_names: list[str] | None = None) -> None:
        super().__init__()
        self.crf = crf
        self.metrics = tagging_metrics(crf.n_tags, tag_names)

    @classmethod
    def build(cls, network: nn.Module | None, **kwargs: Any) -> Self:
        crf = getattr(network, "crf", None)
        if not isinstance(crf, LinearChainCRF):
            raise ValueError("crf_tagging needs the network it trains, built with crf=True")
        return cls(crf, **kwargs)

    @staticmethod
    def lengths(y: torch.Tensor) -> torch.Tensor:
        """`(B,)` real steps per sequence of `(B, T)` labels."""
        real = real_steps(y)
        lengths = real.sum(dim=1)
        prefix = torch.arange(y.shape[1], device=y.device).unsqueeze(0) < lengths.unsqueeze(1)
        if not torch.equal(real, prefix) or bool((lengths == 0).any()):
            raise ValueError(
                f"per-step labels must be one or more real tags then {IGNORE_INDEX} padding"
            )
        return lengths

    def loss(self, output: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        lengths = self.lengths(y)
        nll = self.crf.negative_log_likelihood(output, y, lengths)  # (B,)
        return nll.sum() / lengths.sum()

    def update(self, output: torch.Tensor, y: torch.Tensor) -> None:
        with torch.no_grad():
            tags = self.crf.decode(output, self.lengths(y))  # (B, T), -1 at padding
        real = real_steps(y)
        self.metrics["token_accuracy"].update(tags[real], y[real])  # (N,), (N,)
        if "entity_f1" in self.metrics:
            self.metrics["entity_f1"].update(tags, y)  # (B, T), (B, T)


class NextToken(Objective):
    """A language model's: mean cross-entropy of the next token over a window's real targets
    (`(B, T, V)` logits, `(B, T)` targets, `IGNORE_INDEX` past a document's end). `stateful`:
    the system carries the recurrent state from one batch (a truncated-BPTT window) to the
    next (`LitSequenceModel`); `val/loss`, the mean NLL per validation token, is its metric."""

    stateful = True

    def __init__(self) -> None:
        super().__init__()
        self.cross_entropy = nn.CrossEntropyLoss(ignore_index=IGNORE_INDEX)
        self.metrics = MetricCollection({}).clone(prefix="val/")

    def loss(self, output: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.cross_entropy(output.flatten(0, 1), y.flatten())  # (B * T, V), (B * T,)

    def update(self, output: torch.Tensor, y: torch.Tensor) -> None:
        """No metric beyond `val/loss`."""


OBJECTIVES: dict[str, type[Objective]] = {
    "classification": Classification,
    "forecast": Forecast,
    "regression": Regression,
    "tagging": Tagging,
    "crf_tagging": CRFTagging,
    "next_token": NextToken,
}


def build_objective(spec: dict[str, Any], network: nn.Module | None = None) -> Objective:
    """`{"kind": <one of OBJECTIVES>, **its arguments}` → the objective; `network`, the
    network being trained, is needed by `crf_tagging` only (`Objective.build`)."""
    kind, kwargs = spec["kind"], {k: v for k, v in spec.items() if k != "kind"}
    return OBJECTIVES[kind].build(network, **kwargs)
