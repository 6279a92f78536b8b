"""`tune.folds`: stratified folds of train + val for cross-validated tuning trials."""

from pathlib import Path

import numpy as np
import pytest

from seqops.config import parse_config
from seqops.data.sequences import SequenceSet
from seqops.data.splits import stratified_folds
from seqops.errors import ConfigError, DataError
from seqops.layout import PROCESSED_META, split_file
from seqops.tuning.trial import write_folds
from tests.unit.bundles import classification_meta


def test_folds_partition_the_examples_stratified_and_seeded() -> None:
    labels = np.array([0] * 12 + [1] * 6 + [2] * 3)
    folds = stratified_folds(labels, 3, seed=5)
    held = np.concatenate(folds)
    assert sorted(held.tolist()) == list(range(len(labels)))  # each index exactly once
    for fold in folds:
        assert np.bincount(labels[fold], minlength=3).tolist() == [4, 2, 1]
    again = stratified_folds(labels, 3, seed=5)
    assert all(np.array_equal(a, b) for a, b in zip(folds, again, strict=True))
    other = stratified_folds(labels, 3, seed=6)
    assert not all(np.array_equal(a, b) for a, b in zip(folds, other, strict=True))
    with pytest.raises(DataError, match="cannot make 5 folds of 3 examples"):
        stratified_folds(labels[:3], 5, seed=0)


def test_fold_directories_pool_train_and_val_and_keep_test(tmp_path: Path) -> None:
    processed = tmp_path / "processed"
    processed.mkdir()
    rng = np.random.default_rng(0)
    splits = {}
    for name, n in (("train", 12), ("val", 6), ("test", 4)):
        seqs = [rng.standard_normal((int(rng.integers(2, 6)), 2)).astype(np.float32)
                for _ in range(n)]  # fmt: skip
        splits[name] = SequenceSet(seqs, np.arange(n) % 2)
        splits[name].save(processed / split_file(name))
    classification_meta(["a", "b"], ["no", "yes"]).write(processed / PROCESSED_META)

    directories = write_folds(processed, tmp_path / "folds", 3, seed=1)
    pooled = {s.tobytes() for name in ("train", "val") for s in splits[name].sequences}
    held_out: list[bytes] = []
    for directory in directories:
        train = SequenceSet.load(directory / split_file("train"))
        val = SequenceSet.load(directory / split_file("val"))
        assert len(train) == 12 and len(val) == 6
        assert {s.tobytes() for s in [*train.sequences, *val.sequences]} == pooled
        held_out += [s.tobytes() for s in val.sequences]
        test = SequenceSet.load(directory / split_file("test"))
        assert [s.tobytes() for s in test.sequences] == [
            s.tobytes() for s in splits["test"].sequences
        ]
        meta = (directory / PROCESSED_META).read_bytes()
        assert meta == (processed / PROCESSED_META).read_bytes()
    assert sorted(held_out) == sorted(pooled)  # each example validated once


def test_folds_are_refused_outside_classification() -> None:
    forecast = {
        "data": {"task": "forecasting", "dataset": "co2"},
        "train": {"monitor": "val/loss"},
        "tune": {"metric": "val/loss", "folds": 3},
        "release": {"metric": "test/rmse", "max_metric": 1.0},
    }
    with pytest.raises(ConfigError, match=r"tune\.folds = 3 needs a classification task"):
        parse_config(forecast)
    assert parse_config({"tune": {"folds": 3}}).tune.folds == 3
