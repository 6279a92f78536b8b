"""prepare for series labeling: long-format rows with one label per step → standardised
steps, per-step label indices and the training steps' scaler.

    prepared = prepare_series(cfg.data, cfg.seed)   # a `tasks.base.Prepared`

Sources (`task.series_source` tells which): the bundled `basic_motions_segments`
(`series.basic_motions_segments(seed)`: sktime's own train and test recordings), or a user's
long-format table `data.path` (CSV, TSV or Parquet: `id, time, features..., label`, read by
`series.read_step_series`), whose test series are carved out with `data.test_fraction`.
Validation series are carved from train with `data.val_fraction`. Every carving takes whole
series (`series.hold_out`, seeded): neighbouring steps are near copies, so a split by step
would score the model on what it has seen.

The feature scaler is fitted on the training steps only (`ChannelScaler`, as the sequence
classifier's); label names are the training split's labels, sorted, and a label only
validation or test holds is refused naming the source. Each split is stored with one label
index per step (`SequenceSet.with_step_labels`), and the test series' raw rows in time order
(`STEPS_FILE`: the predictions, the served-path check and the release's requests read them).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from seqops.contracts import Scaler
from seqops.errors import DataError
from seqops.tasks.base import Prepared, longest_sequence
from seqops.tasks.sequence_labeling.meta import SeriesLabelingMeta
from seqops.tasks.sequence_labeling.series import (
    BASIC_MOTIONS_FEATURES,
    StepSeries,
    basic_motions_segments,
    hold_out,
    read_step_series,
    segments,
)

if TYPE_CHECKING:
    from seqops.config import DataConfig
    from seqops.data.sequences import SequenceSet

SPLITS = ("train", "val", "test")
#: The test series' raw rows (id, time, features, label; time order), beside the splits.
STEPS_FILE = "test.steps.parquet"


def n_held(fraction: float, n: int, what: str, where: str) -> int:
    """Whole series `fraction` of `n` makes (at least one), leaving at least one."""
    held = max(1, round(fraction * n))
    if held >= n:
        raise DataError(
            f"{where}: {n} series cannot give {held} to {what} and keep one; add series"
        )
    return held


def read_parts(data: DataConfig, seed: int) -> tuple[dict[str, list[StepSeries]], list[str], str]:
    """The train, val and test series, the feature names and the source's name (see the
    module docstring)."""
    if data.dataset is not None:
        source = data.dataset
        features = BASIC_MOTIONS_FEATURES
        columns = {"id": data.id_column, "time": data.time_column, "label": data.label_column}
        frames = {k: f.rename(columns=columns) for k, f in basic_motions_segments(seed).items()}
        train_all, test = (
            read_step_series(frames[split], data.id_column, data.time_column,
                             data.label_column, BASIC_MOTIONS_FEATURES, where=source)
            for split in ("train", "test")
        )  # fmt: skip
    else:
        from seqops.data.sources import read_table

        assert data.path is not None
        source = str(data.path)
        frame = read_table(data.path, data.id_column)
        features = data.feature_columns or [
            c
            for c in frame.columns
            if c not in (data.id_column, data.time_column, data.label_column)
        ]
        everything = read_step_series(
            frame,
            data.id_column,
            data.time_column,
            data.label_column,
            features,
            where=source,
            time_format=data.time_format,
        )
        n_test = n_held(data.test_fraction, len(everything), "test", source)
        train_all, test = hold_out(everything, n_test, seed)
    n_val = n_held(data.val_fraction, len(train_all), "validation", source)
    train, val = hold_out(train_all, n_val, seed)
    return {"train": train, "val": val, "test": test}, list(features), source


def encode(
    parts: list[StepSeries], scaled: list[np.ndarray], names: list[str], split: str, where: str
) -> SequenceSet:
    """Standardised steps with one label index per step; a label train lacks names `where`."""
    from seqops.data.sequences import SequenceSet

    index = {name: i for i, name in enumerate(names)}
    unknown = sorted({str(label) for s in parts for label in s.labels} - set(index))
    if unknown:
        raise DataError(
            f"{where}: label(s) {unknown} of the {split} series never appear in the training "
            f"series (labels: {names})"
        )
    return SequenceSet.with_step_labels(
        scaled, [np.array([index[label] for label in s.labels], dtype=np.int64) for s in parts]
    )


def steps_frame(
    parts: list[StepSeries], features: list[str], id_column: str, time_column: str, label: str
) -> pd.DataFrame:
    """Series back in long format: one row per step, in id and time order."""
    return pd.DataFrame(
        {
            id_column: np.repeat(np.array([s.id for s in parts], dtype=object),
                                 [len(s.labels) for s in parts]),
            time_column: np.concatenate([s.times for s in parts]),
            **dict(zip(features, np.concatenate([s.values for s in parts]).T.astype(np.float64),
                       strict=True)),
            label: np.concatenate([s.labels for s in parts]),
        }
    )  # fmt: skip


def write_steps(frame: pd.DataFrame, path: Path) -> None:
    frame.to_parquet(path, index=False)


def read_steps(processed: Path) -> pd.DataFrame:
    """The test series' raw rows prepare wrote."""
    path = processed / STEPS_FILE
    try:
        return pd.read_parquet(path)
    except (OSError, ValueError) as exc:
        raise DataError(
            f"{path}: not the test rows prepare writes ({exc}); re-run prepare"
        ) from None


def describe(parts: dict[str, list[StepSeries]], names: list[str]) -> dict[str, Any]:
    """The task's fields of `reports/data.json`: labels, steps and segments per split."""
    return {
        "n_classes": len(names),
        "n_steps": {split: sum(len(s.labels) for s in parts[split]) for split in SPLITS},
        "step_counts": {
            split: dict(sorted(Counter(str(x) for s in parts[split] for x in s.labels).items()))
            for split in SPLITS
        },
        "segment_counts": {
            split: dict(
                sorted(Counter(g.label for s in parts[split] for g in segments(s.labels)).items())
            )
            for split in SPLITS
        },
    }


def prepare_series(data: DataConfig, seed: int) -> Prepared:
    """Read, split, scale, encode and describe the series (see the module docstring)."""
    from seqops.data.scaling import ChannelScaler

    parts, features, source = read_parts(data, seed)
    names = sorted({str(label) for s in parts["train"] for label in s.labels})
    if len(names) < 2:
        raise DataError(f"{source}: every training step is labelled {names}; need at least 2")
    scaler = ChannelScaler.fit([s.values for s in parts["train"]])
    splits = {
        split: encode(
            parts[split], scaler.transform([s.values for s in parts[split]]), names, split, source
        )
        for split in SPLITS
    }
    meta = SeriesLabelingMeta(
        feature_names=features,
        label_names=names,
        n_outputs=len(names),
        max_train_length=longest_sequence(splits),
        scaler=Scaler(**scaler.to_dict()),
        label_column=data.label_column,
    )
    test = steps_frame(
        parts["test"], meta.feature_names, data.id_column, data.time_column, data.label_column
    )
    files: dict[str, Callable[[Path], None]] = {STEPS_FILE: partial(write_steps, test)}
    return Prepared(splits, meta, source, {"input": meta.input, **describe(parts, names)}, files)
