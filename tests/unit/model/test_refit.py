"""The model the train stage keeps: the validated best epoch, or a refit on train + val."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from seqops.config import load_config
from seqops.data.datamodule import SequenceDataModule
from seqops.model.training import fit_final

PARAMS = Path(__file__).resolve().parents[3] / "params.yaml"
TINY = {
    "model.hidden_size": 8,
    "model.num_layers": 1,
    "train.max_epochs": 3,
    "train.patience": 3,
    "train.batch_size": 8,
    "train.refit_max_examples": 100,
}


def _weights(model: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.parameters()]


def test_small_data_is_refit_on_train_and_val_deterministically(
    processed: Path, tmp_path: Path
) -> None:
    cfg = load_config(PARAMS, overrides=TINY)
    kept = fit_final(cfg, processed, tmp_path / "a", progress_bar=False)
    again = fit_final(cfg, processed, tmp_path / "b", progress_bar=False)
    validated = fit_final(
        load_config(PARAMS, overrides={**TINY, "train.refit_max_examples": 0}),
        processed,
        tmp_path / "c",
        progress_bar=False,
    )
    assert kept.refit_examples == 32 and validated.refit_examples == 0
    # The refit keeps the validated run's choice of epoch and score ...
    assert (kept.best_epoch, kept.best_score) == (validated.best_epoch, validated.best_score)
    # ... but is another model (it saw the val split), and is reproducible.
    assert any(
        not torch.equal(a, b)
        for a, b in zip(_weights(kept.model), _weights(validated.model), strict=True)
    )
    for a, b in zip(_weights(kept.model), _weights(again.model), strict=True):
        torch.testing.assert_close(a, b, atol=0, rtol=0)


def test_refit_is_skipped_above_the_threshold_and_with_a_plateau_schedule(
    processed: Path, tmp_path: Path
) -> None:
    for overrides in ({"train.refit_max_examples": 31}, {"train.scheduler": "plateau"}):
        result = fit_final(
            load_config(PARAMS, overrides={**TINY, **overrides}),
            processed,
            tmp_path,
            progress_bar=False,
        )
        assert result.refit_examples == 0


def test_refit_loader_draws_from_train_and_val(processed: Path) -> None:
    data = SequenceDataModule(processed, batch_size=5, seed=0, train_on=("train", "val"))
    assert sum(len(y) for _, _, y in data.train_dataloader()) == 32
    only_train = SequenceDataModule(processed, batch_size=5, seed=0)
    assert sum(len(y) for _, _, y in only_train.train_dataloader()) == 24


@pytest.mark.parametrize(("epoch_examples", "copies"), [(0, 1), (24, 1), (25, 2), (100, 5)])
def test_an_epoch_repeats_a_small_training_split(
    processed: Path, epoch_examples: int, copies: int
) -> None:
    """`train.epoch_examples`: each training sequence appears `copies` times per epoch, in a
    shuffled order; validation is one pass; the same seed gives the same epoch."""
    data = SequenceDataModule(processed, 8, seed=3, epoch_examples=epoch_examples)
    train = data.splits["train"]
    seen: list[tuple[float, ...]] = []
    for x, lengths, y in data.train_dataloader():
        seen += [tuple(x[i, : lengths[i]].flatten().tolist()) for i in range(len(y))]
    assert len(seen) == copies * len(train)
    for sequence in train.sequences:
        assert seen.count(tuple(sequence.flatten().tolist())) == copies
    assert sum(len(y) for *_, y in data.val_dataloader()) == len(data.splits["val"])
    again = SequenceDataModule(processed, 8, seed=3, epoch_examples=epoch_examples)
    first = next(iter(again.train_dataloader()))[0]
    assert torch.equal(first, next(iter(data.train_dataloader()))[0])
    if copies > 1:  # the copies are shuffled together, not played back one after another
        order = [seen.index(tuple(s.flatten().tolist())) for s in train.sequences]
        assert order != sorted(order)


def test_a_tiny_split_gets_epoch_examples_worth_of_steps(processed: Path, tmp_path: Path) -> None:
    """24 training sequences, batch 8: 3 optimiser steps an epoch, 15 with 100 examples."""
    from seqops.model.training import fit

    steps = {}
    for examples in (0, 100):
        overrides = {**TINY, "train.refit_max_examples": 0, "train.epoch_examples": examples}
        result = fit(load_config(PARAMS, overrides=overrides), processed, tmp_path / str(examples),
                     progress_bar=False)  # fmt: skip
        steps[examples] = result.steps
    assert steps == {0: 3 * 3, 100: 15 * 3}


def test_augmentation_reaches_training_batches_only_and_repeats_for_a_seed(
    processed: Path, tmp_path: Path
) -> None:
    """`train.augment_*` from params to the fitted weights: training examples change, the
    validation split is read as it is, and the same seed gives the same model."""
    from seqops.model.training import augmentation, fit

    cfg = load_config(PARAMS, overrides={"train.augment_noise": 0.3, "train.augment_crop": 0.2})
    data = SequenceDataModule(processed, 8, seed=0, augment=augmentation(cfg))
    train, val = data.splits["train"], data.splits["val"]
    originals = {tuple(s.flatten().tolist()) for s in train.sequences}
    drawn = [x[i, : n].flatten().tolist() for x, lengths, _ in data.train_dataloader()
             for i, n in enumerate(lengths)]  # fmt: skip
    assert not any(tuple(d) in originals for d in drawn)
    (x, lengths, _), *_ = data.val_dataloader()
    assert x[0, : lengths[0]].flatten().tolist() == val.sequences[0].flatten().tolist()

    def fitted(overrides: dict[str, object], name: str) -> list[torch.Tensor]:
        merged = {**TINY, "train.refit_max_examples": 0, **overrides}
        result = fit(load_config(PARAMS, overrides=merged), processed, tmp_path / name,
                     progress_bar=False)  # fmt: skip
        return _weights(result.model)

    noisy = {"train.augment_noise": 0.3}
    off = {"train.augment_noise": 0.0, "train.augment_scale": 0.0}
    once, twice, plain = fitted(noisy, "a"), fitted(noisy, "b"), fitted(off, "c")
    assert all(torch.equal(a, b) for a, b in zip(once, twice, strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(once, plain, strict=True))
