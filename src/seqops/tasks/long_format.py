"""Numeric sequences in long format (`id, time, features..., label`): loading a bundled UEA
set or a user's file, and raw requests rebuilt from a test split. Shared by the tasks that read
such sequences (sequence classification and regression); not a task itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from seqops.contracts import Bundle, DataMeta, Scaler
from seqops.errors import DataError

if TYPE_CHECKING:
    from seqops.config import DataConfig
    from seqops.data.sequences import SequenceSet


class ScaledMeta(DataMeta):
    """Metadata of standardised long-format sequences: the training split's scaler (what
    `example_frame` undoes). The classification and regression metadata build on it."""

    scaler: Scaler


def check_nonempty(sequences: list[np.ndarray], where: str) -> None:
    if not sequences:
        raise DataError(f"{where}: no sequences")
    for i, s in enumerate(sequences):
        if len(s) == 0:
            raise DataError(f"{where}: sequence {i} has no steps")
        if not np.isfinite(s).all():
            raise DataError(f"{where}: sequence {i} holds NaN or infinite values")


def load_sequences(data: DataConfig) -> tuple[Any, Any | None, str]:
    """The raw labelled sequences: a bundled set's official train and test splits, or a user
    file (test None: carved out by the caller)."""
    from seqops.data.sources import load_bundled, load_long_file

    if data.dataset is not None:
        source = f"sktime:{data.dataset}"
        train, test = load_bundled(data.dataset, "train"), load_bundled(data.dataset, "test")
        check_nonempty(train.sequences, source)
        check_nonempty(test.sequences, source)
        return train, test, source
    assert data.path is not None
    raw = load_long_file(
        data.path,
        id_column=data.id_column,
        time_column=data.time_column,
        label_column=data.label_column,
        feature_columns=data.feature_columns,
        time_format=data.time_format,
    )
    check_nonempty(raw.sequences, str(data.path))
    return raw, None, str(data.path)


def example_frame(test: SequenceSet, bundle: Bundle[ScaledMeta], n: int) -> pd.DataFrame:
    """The first `n` test sequences back in raw long format (un-standardised), ids `seq<i>`."""
    scaler = bundle.data.scaler
    mean, std = np.asarray(scaler.mean), np.asarray(scaler.std)
    rows = []
    for i in range(min(n, len(test))):
        raw = test.sequences[i].astype(np.float64) * std + mean  # (T, F)
        for t, step in enumerate(raw):
            rows.append(
                {
                    bundle.id_column: f"seq{i}",
                    bundle.time_column: t,
                    **dict(zip(bundle.data.feature_names, step.tolist(), strict=True)),
                }
            )
    return pd.DataFrame(rows)
