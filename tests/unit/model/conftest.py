"""Fixtures shared by the model tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from seqops.data.sequences import SequenceSet
from seqops.layout import PROCESSED_META, split_file
from tests.unit.bundles import classification_meta


@pytest.fixture(scope="module")
def processed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """24 train / 8 val / 8 test sequences of 2 features, 2 classes."""
    directory = tmp_path_factory.mktemp("processed")
    rng = np.random.default_rng(0)
    for name, n in (("train", 24), ("val", 8), ("test", 8)):
        labels = np.arange(n) % 2
        seqs = [
            (rng.standard_normal((int(rng.integers(3, 9)), 2)) + y).astype(np.float32)
            for y in labels
        ]
        SequenceSet(seqs, labels).save(directory / split_file(name))
    classification_meta(["a", "b"], ["no", "yes"]).write(directory / PROCESSED_META)
    return directory
