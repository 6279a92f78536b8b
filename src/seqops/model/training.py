"""Train one model: `fit(cfg, processed_dir, checkpoint_dir)`, what the train stage, the tuner
and the tests all call.

    result = fit(load_config("params.yaml"), Path("data/processed"), Path("/tmp/ckpt"))
    result.model, result.best_score, result.history

The task recorded in `data/processed/preprocessing.json` decides the head, the extra network
arguments and the objective (its train part, `seqops.tasks.parts.train`); nothing here
depends on which task it is.

Several devices (docs/architecture.md, "Scale"): `train.strategy: ddp` with `train.devices: N`
runs Lightning's DDP. Lightning starts ranks 1..N-1 by re-running the command line (`seqops
train`), so each rank runs the stage's `main()`; only rank 0 (`is_rank_zero()`) writes the
checkpoint, reports and the MLflow run. `train.batch_size` is the global batch: each rank
loads `batch_size / N` sequences per step, so N processes take the steps one process takes.
On CPU the ranks talk over gloo.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import lightning.pytorch as pl
import mlflow
import numpy as np
import torch
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint

from seqops.config import Config
from seqops.contracts import DataMeta
from seqops.data.batches import Augment, pad_batch
from seqops.data.datamodule import SequenceDataModule
from seqops.data.sequences import SequenceSet
from seqops.errors import ConfigError
from seqops.layout import PROCESSED_META, split_file
from seqops.model.network import EnsembleNet, SequenceNet, architecture, fitted_splits
from seqops.model.runtime import ensemble_averages_probabilities, use_threads
from seqops.model.system import LitSequenceModel
from seqops.tasks import read_meta
from seqops.tasks.parts.train import get_train


class EpochHistory(pl.Callback):
    """Keeps every epoch's logged metrics, for the learning curves."""

    def __init__(self) -> None:
        self.rows: list[dict[str, float]] = []

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        row = {"epoch": float(trainer.current_epoch)}
        row.update({k: float(v) for k, v in trainer.callback_metrics.items() if "/" in k})
        self.rows.append(row)


class EpochMetricsLogger(pl.Callback):
    """Logs each epoch's `train/*` and `val/*` metrics to the active MLflow run, step = epoch."""

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if mlflow.active_run() is None or trainer.sanity_checking:
            return
        metrics = {
            name: float(value)
            for name, value in trainer.callback_metrics.items()
            if name.startswith(("train/", "val/"))
        }
        mlflow.log_metrics(metrics, step=trainer.current_epoch)


#: Environment variables Lightning and torchrun set in every rank of a distributed run.
_RANK_VARS = ("RANK", "LOCAL_RANK", "SLURM_PROCID", "JSM_NAMESPACE_RANK")


def is_rank_zero() -> bool:
    """False in ranks 1..N-1 of a DDP run (the copies of the command Lightning launched)."""
    for var in _RANK_VARS:
        if var in os.environ:
            return int(os.environ[var]) == 0
    return True


def launched_from_cli() -> bool:
    """Whether this process runs the `seqops` command, which Lightning's DDP launcher can
    re-run for the other ranks (it re-runs `sys.argv`: under pytest or a notebook that would
    be the wrong program)."""
    import __main__

    spec = getattr(__main__, "__spec__", None)
    if spec is not None:
        return str(spec.name).startswith("seqops")
    return Path(sys.argv[0]).name == "seqops"


def _check_strategy(cfg: Config, world_size: int) -> None:
    """What seqops supports past one device: Lightning's `ddp` launched from `seqops train`."""
    strategy = cfg.train.strategy
    if world_size > 1 and strategy != "ddp":
        raise ConfigError(
            f"train.strategy: {strategy!r} with {world_size} devices: expected 'ddp' (seqops "
            "runs one process per device, launched by `seqops train`)"
        )
    if strategy.startswith("ddp") and strategy != "ddp":
        raise ConfigError(f"train.strategy: {strategy!r}: expected 'ddp' or a one-device strategy")
    if world_size > 1 and cfg.train.refit_max_examples:
        raise ConfigError(
            f"train.refit_max_examples: {cfg.train.refit_max_examples} refits in one process "
            "after training: set it to 0 with several devices"
        )
    if world_size > 1 and cfg.train.ensemble > 1:
        raise ConfigError(
            f"train.ensemble: {cfg.train.ensemble} trains its members one after another in one "
            "process: set it to 1 with several devices"
        )
    if world_size > 1 and not launched_from_cli():
        raise ConfigError(
            f"train.strategy: 'ddp' with {world_size} devices re-runs the command for each rank: "
            "run it through `seqops train` (or `dvc repro`), not from Python"
        )
    if cfg.train.batch_size % world_size:
        raise ConfigError(
            f"train.batch_size: {cfg.train.batch_size} is the global batch: expected a multiple "
            f"of the {world_size} devices"
        )


def check_trainer(cfg: Config) -> int:
    """Lightning's own check of `train.accelerator` / `devices` / `strategy` (is the
    accelerator here, do the devices exist) and seqops' DDP rules, without training: the train
    stage calls it before it deletes the previous model. Returns the number of processes."""
    from lightning.fabric.utilities.exceptions import MisconfigurationException

    train = cfg.train
    quiet = logging.getLogger("lightning.pytorch")  # its "GPU available: ..." lines come at fit
    level = quiet.level
    quiet.setLevel(logging.WARNING)
    try:
        trainer = pl.Trainer(
            accelerator=train.accelerator,
            devices=train.devices,
            strategy=train.strategy,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
        )
    except (MisconfigurationException, TypeError, ValueError, RuntimeError) as exc:
        raise ConfigError(
            f"train.accelerator = {train.accelerator!r}, train.devices = {train.devices!r}, "
            f"train.strategy = {train.strategy!r}: {' '.join(str(exc).split())}"
        ) from None
    finally:
        quiet.setLevel(level)
    _check_strategy(cfg, trainer.world_size)
    return int(trainer.world_size)


@dataclass
class FitResult:
    model: torch.nn.Module
    """The kept network: the best epoch's `LitSequenceModel`, or an `EnsembleNet`."""
    best_checkpoint: Path
    best_score: float
    best_epoch: int
    epochs_run: int
    history: list[dict[str, float]] = field(default_factory=list)
    wall_s: float = 0.0
    refit_examples: int = 0
    """Examples (train + val) of the refit that made `model`; 0 when it was not refit."""
    steps: int = 0
    """Optimiser steps taken (`train.epoch_examples` raises them on a tiny split)."""


def build_model(cfg: Config, meta: DataMeta, processed_dir: Path) -> LitSequenceModel:
    """The system for the task of `meta`, sized from it, initialised as the task says
    (pretrained word vectors for a text model with `model.embeddings_path`)."""
    task = get_train(meta.task)
    network = architecture(cfg.model, meta.max_train_length)
    network.update(task.network_args(meta, processed_dir, cfg.model))
    model = LitSequenceModel(
        n_features=len(meta.feature_names),
        n_outputs=meta.n_outputs,
        network=network,
        objective=task.objective(meta, cfg.train, cfg.model),
        lr=cfg.train.lr,
        weight_decay=cfg.train.weight_decay,
        scheduler=cfg.train.scheduler,
        max_epochs=cfg.train.max_epochs,
        monitor=cfg.train.monitor,
        monitor_mode=cfg.train.monitor_mode,
        noise_std=cfg.train.noise_std,
    )
    task.init_model(model.net, meta, processed_dir, cfg.model)
    if model.net.kernels is not None:
        fit_kernel_path(model, SequenceSet.load(processed_dir / split_file("train")))
    return model


def fit_kernel_path(model: LitSequenceModel, train: SequenceSet) -> float:
    """Fit a network's random-kernel path on the training split (`seqops.model.kernels`):
    the kernels' biases and feature scaling, then their frozen head by ridge regression onto
    what the network is trained to output (class indicators coded -1 / +1, as
    `RidgeClassifierCV` does; a regressor's standardised target). Returns the ridge penalty."""
    from seqops.model.kernels import fit_ridge
    from seqops.model.objectives import Classification, Regression

    net = model.net
    assert net.kernels is not None and net.kernel_head is not None
    x, lengths = pad_batch(train.sequences)
    features = net.kernels.fit(x, lengths)
    labels = np.asarray(train.labels)
    if isinstance(model.objective, Classification):
        targets = -np.ones((len(labels), net.kernel_head.out_features))
        targets[np.arange(len(labels)), labels.astype(np.int64)] = 1.0
    elif isinstance(model.objective, Regression):
        targets = labels.reshape(len(labels), -1).astype(np.float64)
    else:
        raise ConfigError(
            "model.kernel_features: the kernel path is fitted for classification and "
            f"regression objectives, not {type(model.objective).__name__}"
        )
    return fit_ridge(features, targets, net.kernel_head)


def mix_ngram_path(
    result: FitResult, processed_dir: Path, weights: tuple[float, float] | None = None
) -> tuple[float, float] | None:
    """Weigh a trained text network's recurrent path and its n-gram path
    (`seqops.model.ngrams`) in `result.model` and its checkpoint: `weights` (recurrent,
    n-gram), or when None those with the lowest validation log-loss (`mixing_weights`).
    Returns them; None for a network without the path."""
    from seqops.model.ngrams import mixing_weights

    net = result.model.net
    if not isinstance(net, SequenceNet) or net.ngrams is None:
        return None
    if weights is None:
        val = SequenceSet.load(processed_dir / split_file("val"))
        net.eval().ngram_scale.zero_()
        net.recurrent_scale.fill_(1.0)
        scores: list[tuple[np.ndarray, np.ndarray]] = []
        with torch.no_grad():
            for start in range(0, len(val), 1024):
                x, lengths = pad_batch(val.sequences[start : start + 1024])
                scores.append((net(x, lengths).double().numpy(), net.ngrams(x, lengths).numpy()))
        recurrent, ngram = (np.concatenate(part) for part in zip(*scores, strict=True))
        weights = mixing_weights(recurrent, ngram, np.asarray(val.labels, dtype=np.int64))
        print(
            f"train: recurrent path weighted {weights[0]:.3f} and n-gram path {weights[1]:.3f} "
            "(lowest validation log-loss)"
        )
    set_scales(result, dict(zip(("recurrent_scale", "ngram_scale"), weights, strict=True)))
    return weights


def set_scales(result: FitResult, scales: dict[str, float]) -> None:
    """Set scalar parameters of `result.model`'s network (`ngram_scale`, ...) in the model and
    in its checkpoint."""
    net = result.model.net
    for name, value in scales.items():
        with torch.no_grad():
            getattr(net, name).fill_(value)
    _save_weights(result, tuple(scales))


def _save_weights(result: FitResult, prefixes: tuple[str, ...]) -> None:
    """Write the network's weights whose names start with one of `prefixes` into the kept
    checkpoint (what the train stage copies), so it holds what `result.model` holds."""
    net = result.model.net
    assert isinstance(net, SequenceNet)
    state = net.state_dict()
    checkpoint = torch.load(result.best_checkpoint, map_location="cpu", weights_only=True)
    for name, value in state.items():
        if name.startswith(prefixes):
            checkpoint["state_dict"][f"net.{name}"] = value.detach().clone()
    torch.save(checkpoint, result.best_checkpoint)


def refit_kernel_model(result: FitResult, processed_dir: Path) -> FitResult:
    """A kernel-only network (`model.recurrent: false`) is a closed-form ridge model times a
    trained scale, and only the scale needed validation (its epoch, by `train.monitor`). Once
    it is kept, fit the kernels and the ridge head again on train + val
    (`fitted_splits`), in the model and its checkpoint: the ridge learns from every labelled
    example, as a classical baseline does. The validation figures stay those of the fit
    before, as after `refit` (validation is now training data)."""
    system = result.model
    assert isinstance(system, LitSequenceModel) and not system.net.recurrent
    both = SequenceSet.load_splits(processed_dir, fitted_splits(system.net))
    fit_kernel_path(system, both)
    _save_weights(result, ("kernels.", "kernel_head."))
    print(f"train: kernel model refit on train + val ({len(both)} examples), its scale kept")
    return replace(result, refit_examples=len(both))


def shrink_forecast(
    result: FitResult, processed_dir: Path, weight: float | None = None
) -> float | None:
    """Weigh a trained forecaster against the drift forecast (`train.forecast_shrink`): its
    scaled (differenced) outputs times `weight`, or when None the weight in [0, 1] with the
    lowest squared level error on the validation windows. 0 forecasts the training split's
    mean difference (seasonal naive or the last value, with drift; the training mean for
    `differencing: none`), 1 the network alone. Returns it; None for a model without it."""
    from seqops.model.objectives import Forecast, shrink_weight

    net = result.model.net
    if not isinstance(net, SequenceNet) or net.horizon is None:
        return None
    if weight is None:
        val = SequenceSet.load(processed_dir / split_file("val"))
        objective = result.model.objective
        assert isinstance(objective, Forecast)
        net.eval().forecast_scale.fill_(1.0)
        with torch.no_grad():
            x, lengths = pad_batch(val.sequences)
            target = torch.as_tensor(np.stack(list(val.labels)), dtype=torch.float32)
            ours, actual = (objective.levels(z).double().numpy() for z in (net(x, lengths), target))
        weight = shrink_weight(ours, actual)
        print(
            f"train: forecast weighted {weight:.3f} against the drift forecast "
            "(lowest validation squared error)"
        )
    set_scales(result, {"forecast_scale": weight})
    return weight


def fit(
    cfg: Config,
    processed_dir: Path,
    checkpoint_dir: Path,
    *,
    callbacks: list[pl.Callback] | None = None,
    progress_bar: bool = True,
) -> FitResult:
    """Train one model; the best epoch by `train.monitor` is saved under `checkpoint_dir`."""
    start = time.perf_counter()
    use_threads(cfg.train.threads)
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    meta = read_meta(processed_dir / PROCESSED_META)
    model = build_model(cfg, meta, processed_dir)
    checkpoint = ModelCheckpoint(
        dirpath=checkpoint_dir,
        filename="best",
        monitor=cfg.train.monitor,
        mode=cfg.train.monitor_mode,
        save_top_k=1,
        enable_version_counter=False,
    )
    history = EpochHistory()
    trainer = pl.Trainer(
        max_epochs=cfg.train.max_epochs,
        accelerator=cfg.train.accelerator,
        devices=cfg.train.devices,
        strategy=cfg.train.strategy,
        deterministic=cfg.train.deterministic,
        gradient_clip_val=cfg.train.gradient_clip_val or None,
        callbacks=[
            checkpoint,
            EarlyStopping(
                cfg.train.monitor, mode=cfg.train.monitor_mode, patience=cfg.train.patience
            ),
            history,
            *(callbacks or []),
        ],
        logger=False,
        enable_progress_bar=progress_bar,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    _check_strategy(cfg, trainer.world_size)
    batch_size = cfg.train.batch_size // trainer.world_size
    data = SequenceDataModule(
        processed_dir,
        batch_size,
        cfg.seed,
        epoch_examples=cfg.train.epoch_examples,
        augment=augmentation(cfg),
        own=get_train(meta.task).loaders(
            meta, processed_dir, batch_size, cfg.seed, cfg.train, ("train",)
        ),
    )
    trainer.fit(model, datamodule=data)
    if not trainer.is_global_zero:  # rank 0 saved the checkpoint and reports the result
        return FitResult(
            model=model,
            best_checkpoint=Path(checkpoint.best_model_path),
            best_score=float("nan"),
            best_epoch=-1,
            epochs_run=trainer.current_epoch,
            wall_s=time.perf_counter() - start,
        )
    if not checkpoint.best_model_path:
        raise RuntimeError(f"no checkpoint written: was {cfg.train.monitor!r} ever logged?")
    best = load_system(Path(checkpoint.best_model_path))
    scores = [row.get(cfg.train.monitor, float("nan")) for row in history.rows]
    best_score = float(checkpoint.best_model_score)  # type: ignore[arg-type]
    return FitResult(
        model=best,
        best_checkpoint=Path(checkpoint.best_model_path),
        best_score=best_score,
        best_epoch=scores.index(best_score) if best_score in scores else -1,
        epochs_run=trainer.current_epoch,
        history=history.rows,
        wall_s=time.perf_counter() - start,
        steps=trainer.global_step,
    )


def augmentation(cfg: Config) -> Augment:
    """The training examples' random changes, from `train.augment_*`."""
    t = cfg.train
    return Augment(noise=t.augment_noise, scale=t.augment_scale, crop=t.augment_crop)


def should_refit(cfg: Config, processed_dir: Path) -> int:
    """Train + val examples when `train.refit_max_examples` asks for a refit, else 0."""
    n = sum(len(SequenceSet.load(processed_dir / split_file(s))) for s in ("train", "val"))
    return n if cfg.train.scheduler != "plateau" and 0 < n <= cfg.train.refit_max_examples else 0


def refit(
    cfg: Config,
    processed_dir: Path,
    checkpoint_dir: Path,
    chosen: FitResult,
    *,
    anneal: bool = False,
) -> FitResult:
    """Train again from the same seed on train + val for the epochs `chosen` ran up to its
    best one, with the same schedule and no validation, and keep the last epoch's model.
    `anneal`: the cosine schedule spans the refit's epochs instead, so the kept model is taken
    at a low learning rate (no better in `benchmarks/small_data.py refit`; off)."""
    start = time.perf_counter()
    epochs = (chosen.best_epoch if chosen.best_epoch >= 0 else chosen.epochs_run) + 1
    if anneal:
        cfg = cfg.model_copy(update={"train": cfg.train.model_copy(update={"max_epochs": epochs})})
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    meta = read_meta(processed_dir / PROCESSED_META)
    train_on = ("train", "val")
    data = SequenceDataModule(
        processed_dir,
        cfg.train.batch_size,
        cfg.seed,
        train_on=train_on,
        epoch_examples=cfg.train.epoch_examples,
        augment=augmentation(cfg),
        own=get_train(meta.task).loaders(
            meta, processed_dir, cfg.train.batch_size, cfg.seed, cfg.train, train_on
        ),
    )
    model = build_model(cfg, meta, processed_dir)
    trainer = pl.Trainer(
        max_epochs=epochs,
        accelerator=cfg.train.accelerator,
        devices=cfg.train.devices,
        strategy=cfg.train.strategy,
        deterministic=cfg.train.deterministic,
        gradient_clip_val=cfg.train.gradient_clip_val or None,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    trainer.fit(model, datamodule=data)
    path = checkpoint_dir / "refit.ckpt"
    trainer.save_checkpoint(path)
    n = len(data.splits["train"]) + len(data.splits["val"])
    return FitResult(
        model=load_system(path),
        best_checkpoint=path,
        best_score=chosen.best_score,
        best_epoch=chosen.best_epoch,
        epochs_run=chosen.epochs_run,
        history=chosen.history,
        wall_s=chosen.wall_s + time.perf_counter() - start,
        refit_examples=n,
    )


def fit_final(
    cfg: Config,
    processed_dir: Path,
    checkpoint_dir: Path,
    *,
    callbacks: list[pl.Callback] | None = None,
    progress_bar: bool = True,
) -> FitResult:
    """What the train stage keeps: `fit`, then `refit` on train + val when the data is small
    enough for `train.refit_max_examples`; with `train.ensemble: N`, that for seeds `seed`
    ... `seed + N - 1`, kept as one checkpoint of the N networks (`EnsembleNet`). The result
    reports the first member's curve and epoch; `callbacks` (MLflow's per-epoch logging)
    follow the first member only, so its curve is not overwritten."""
    members = []
    for i in range(cfg.train.ensemble):
        member = cfg.model_copy(update={"seed": cfg.seed + i})
        directory = checkpoint_dir / f"member{i}" if cfg.train.ensemble > 1 else checkpoint_dir
        result = fit(
            member,
            processed_dir,
            directory,
            callbacks=callbacks if i == 0 else None,
            progress_bar=progress_bar,
        )
        weights = mix_ngram_path(result, processed_dir)
        shrink = shrink_forecast(result, processed_dir) if member.train.forecast_shrink else None
        if should_refit(member, processed_dir):
            result = refit(member, processed_dir, directory, result)
            # Validation is in the refit's training data: the weights found before it stay.
            mix_ngram_path(result, processed_dir, weights)
            if shrink is not None:
                shrink_forecast(result, processed_dir, shrink)
        if isinstance(result.model.net, SequenceNet) and not result.model.net.recurrent:
            result = refit_kernel_model(result, processed_dir)
        members.append(result)
    if len(members) == 1:
        return members[0]
    path = checkpoint_dir / "ensemble.ckpt"
    first = members[0]
    return FitResult(
        model=save_ensemble([m.model for m in members], path),
        best_checkpoint=path,
        best_score=first.best_score,
        best_epoch=first.best_epoch,
        epochs_run=first.epochs_run,
        history=first.history,
        wall_s=sum(m.wall_s for m in members),
        refit_examples=first.refit_examples,
        steps=sum(m.steps for m in members),
    )


def save_ensemble(systems: list[torch.nn.Module], path: Path) -> EnsembleNet:
    """The trained systems' networks as one `EnsembleNet`, saved at `path` as what
    `seqops.model.runtime.load_network` reads back: the first system's hyperparameters plus
    `ensemble: N`, and the weights as `net.members.<i>.*`. The systems share one config but
    the seed, so they share the architecture."""
    lits = [s for s in systems if isinstance(s, LitSequenceModel)]
    assert len(lits) == len(systems), "ensemble members are trained LitSequenceModels"
    hparams = {**lits[0].hparams, "ensemble": len(lits)}
    probabilities = ensemble_averages_probabilities(hparams)
    net = EnsembleNet([s.net for s in lits], probabilities=probabilities).eval()
    weights = {f"net.{k}": v for k, v in net.state_dict().items()}
    torch.save({"hyper_parameters": hparams, "state_dict": weights}, path)
    return net


def load_system(checkpoint: Path) -> LitSequenceModel:
    """A trained system from its checkpoint, on the CPU, in eval mode.

    `weights_only=True`: the checkpoint is unpickled by torch's restricted loader (tensors,
    containers and primitives only), so a tampered file cannot run code when it is read."""
    return LitSequenceModel.load_from_checkpoint(
        checkpoint, map_location="cpu", weights_only=True
    ).eval()
