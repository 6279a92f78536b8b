"""`train.augment_*`: random changes to training examples, drawn anew each time."""

import numpy as np
import pytest
import torch

from seqops.config import parse_config
from seqops.data.batches import Augment, loader
from seqops.data.sequences import SequenceSet
from seqops.errors import ConfigError


def _series(steps: int = 50, features: int = 3) -> np.ndarray:
    return np.random.default_rng(0).normal(size=(steps, features)).astype(np.float32)


def test_all_zero_is_the_identity() -> None:
    x = _series()
    assert not Augment()
    np.testing.assert_array_equal(Augment()(x, np.random.default_rng(1)), x)


def test_crop_keeps_one_contiguous_window_of_at_least_the_floor() -> None:
    x = _series(40)
    rng = np.random.default_rng(2)
    lengths = set()
    for _ in range(200):
        out = Augment(crop=0.25)(x, rng)
        lengths.add(len(out))
        assert 30 <= len(out) <= 40  # at least ceil(0.75 * 40) steps
        start = int(np.flatnonzero((x == out[0]).all(axis=1))[0])
        np.testing.assert_array_equal(out, x[start : start + len(out)])
    assert len(lengths) > 5  # the window's length varies, not only its start


def test_scale_is_one_factor_per_feature_and_noise_has_the_asked_spread() -> None:
    x = np.ones((1000, 4), dtype=np.float32)
    scaled = Augment(scale=0.2)(x, np.random.default_rng(4))
    assert scaled.dtype == np.float32
    assert np.ptp(scaled, axis=0).max() == 0  # every step of a feature: the same factor
    assert len(set(scaled[0].tolist())) == 4  # a different factor per feature
    noisy = Augment(noise=0.5)(x, np.random.default_rng(5))
    assert abs(float((noisy - 1).std()) - 0.5) < 0.02
    assert abs(float((noisy - 1).mean())) < 0.02


def _batches(data: SequenceSet, augment: Augment, seed: int, epochs: int) -> list[torch.Tensor]:
    batches = loader(data, 4, shuffle=True, seed=seed, augment=augment)
    return [x for _ in range(epochs) for x, _, _ in batches]


def test_the_loader_draws_new_changes_each_epoch_and_repeats_them_for_a_seed() -> None:
    data = SequenceSet([_series(20) for _ in range(4)], np.zeros(4, dtype=np.int64))
    augment = Augment(noise=0.1, scale=0.1)
    first, second = _batches(data, augment, seed=7, epochs=2)
    assert not torch.equal(first, second)  # one batch (all 4 examples), changed anew
    again = _batches(data, augment, seed=7, epochs=2)
    assert all(torch.equal(a, b) for a, b in zip([first, second], again, strict=True))
    plain = _batches(data, Augment(), seed=7, epochs=2)
    assert torch.equal(plain[0].sort(dim=0).values, plain[1].sort(dim=0).values)


def test_each_ddp_rank_draws_its_own_changes_and_rank_0_the_single_process_ones() -> None:
    data = SequenceSet([_series(20) for _ in range(4)], np.zeros(4, dtype=np.int64))
    augment = Augment(noise=0.1)

    def first(stream: int) -> torch.Tensor:
        batches = loader(data, 4, shuffle=False, seed=3, augment=augment, augment_stream=stream)
        return next(iter(batches))[0]

    assert torch.equal(first(0), next(iter(loader(data, 4, shuffle=False, seed=3,
                                                  augment=augment)))[0])  # fmt: skip
    assert not torch.equal(first(0), first(1))
    assert torch.equal(first(1), first(1))


@pytest.mark.parametrize("key", ["augment_noise", "augment_scale", "augment_crop"])
def test_augmentation_is_refused_where_labels_would_not_survive_it(key: str) -> None:
    forecast = {
        "data": {"task": "forecasting", "dataset": "co2"},
        "train": {"monitor": "val/loss", key: 0.1},
        "tune": {"metric": "val/loss", "enabled": False},
        "release": {"metric": "test/rmse", "max_metric": 1.0},
    }
    with pytest.raises(ConfigError, match=rf"train\.{key} = 0\.1 does not fit data\.task = "):
        parse_config(forecast)
    assert parse_config({"train": {key: 0.1}}).train.model_dump()[key] == 0.1


TEXT = {
    "data": {"task": "text_classification", "dataset": None, "path": "train.txt"},
    "model": {"embedding_dim": 8},
}


def test_left_out_or_null_takes_the_tasks_value() -> None:
    """Sequence classification trains with noise and scaling unless told otherwise; the
    other tasks never augment unless told to (and then refuse it)."""
    default = parse_config({}).train
    assert (default.augment_noise, default.augment_scale, default.augment_crop) == (0.1, 0.1, 0.0)
    null = parse_config({"train": {"augment_noise": None, "augment_scale": None}}).train
    assert (null.augment_noise, null.augment_scale) == (0.1, 0.1)
    off = parse_config({"train": {"augment_noise": 0.0, "augment_scale": 0}}).train
    assert (off.augment_noise, off.augment_scale) == (0.0, 0.0)
    text = parse_config(TEXT).train
    assert (text.augment_noise, text.augment_scale, text.augment_crop) == (0.0, 0.0, 0.0)
    with pytest.raises(ConfigError, match=r"does not fit data\.task = 'text_classification'"):
        parse_config({**TEXT, "train": {"augment_noise": 0.1}})
