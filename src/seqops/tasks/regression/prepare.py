"""`sequence_regression`'s prepare part: a UEA set or a long-format file → splits stratified
on the target's rank, the features and the target standardised on the training split."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from seqops.contracts import MetricsReport, Scaler
from seqops.errors import DataError
from seqops.layout import SPLITS
from seqops.tasks.base import Prepared, longest_sequence
from seqops.tasks.long_format import load_sequences
from seqops.tasks.parts.prepare import PrepareTask
from seqops.tasks.regression.task import (
    RegressionMeta,
    RegressionReport,
    SequenceRegression,
    TargetScaler,
)

if TYPE_CHECKING:
    from seqops.config import DataConfig

#: Most target-rank bins a random split is stratified on.
SPLIT_BINS = 10


def parse_targets(labels: list[str], where: str, name: Callable[[int], str]) -> np.ndarray:
    """The loaders' string labels as float64; the first one that is not a finite number is a
    DataError naming its sequence (`name(i)`)."""
    out = np.empty(len(labels), dtype=np.float64)
    for i, raw in enumerate(labels):
        try:
            value = float(raw)
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            raise DataError(
                f"{where}: {name(i)} has label {raw!r}; sequence_regression needs a finite number"
            )
        out[i] = value
    return out


def target_split(
    y: np.ndarray, fraction: float, seed: int, what: str
) -> tuple[np.ndarray, np.ndarray]:
    """Indices `(keep, held_out)`, `fraction` held out at random (seeded), stratified on up to
    `SPLIT_BINS` equal-count bins of the target's rank (ties broken by order, so repeated
    values such as Covid3Month's zeros still fill equal bins)."""
    from sklearn.model_selection import train_test_split

    n = len(y)
    n_held = round(fraction * n)
    if n_held < 1 or n - n_held < 2:
        raise DataError(
            f"cannot carve a {what} split of {fraction:g} from {n} sequence(s): too few "
            "(need at least 1 held out and 2 kept)"
        )
    bins = min(SPLIT_BINS, n_held, n - n_held)
    rank = np.empty(n, dtype=np.int64)
    rank[np.argsort(y, kind="stable")] = np.arange(n)
    keep, held = train_test_split(
        np.arange(n), test_size=n_held, stratify=rank * bins // n, random_state=seed
    )
    return np.sort(keep), np.sort(held)


def target_stats(y: np.ndarray) -> dict[str, float]:
    return {
        "mean": float(y.mean()),
        "std": float(y.std()),
        "min": float(y.min()),
        "max": float(y.max()),
    }


def file_sequence_name(data: DataConfig) -> Callable[[int], str]:
    """`i` → the i-th sequence of a long-format file by id (`load_long_file` orders by id).
    Reads the file again, so it is only called to name a bad label."""

    def name(i: int) -> str:
        from seqops.data.sources import read_table

        assert data.path is not None
        ids = list(read_table(data.path).groupby(data.id_column, sort=True).groups)
        return f"sequence {ids[i]!r} (column {data.label_column!r})"

    return name


class SequenceRegressionPrepare(
    PrepareTask[RegressionMeta, RegressionReport, MetricsReport], SequenceRegression
):
    def prepare(self, data: DataConfig, seed: int) -> Prepared:
        from seqops.data.scaling import ChannelScaler
        from seqops.data.sequences import SequenceSet

        raw, raw_test, source = load_sequences(data)
        if raw_test is None:
            y = parse_targets(raw.labels, source, file_sequence_name(data))
            everything = SequenceSet(raw.sequences, y)
            keep, held = target_split(y, data.test_fraction, seed, "test")
            train_all, test = everything.subset(keep), everything.subset(held)
        else:
            train_all = SequenceSet(
                raw.sequences,
                parse_targets(raw.labels, f"{source} train", lambda i: f"sequence {i}"),
            )
            test = SequenceSet(
                raw_test.sequences,
                parse_targets(raw_test.labels, f"{source} test", lambda i: f"sequence {i}"),
            )
        keep, held = target_split(train_all.labels, data.val_fraction, seed, "validation")
        train, val = train_all.subset(keep), train_all.subset(held)
        if np.ptp(train.labels) == 0:
            raise DataError(
                f"{source}: the training split's target is constant ({train.labels[0]:g}); "
                "there is nothing to learn"
            )
        scaler = ChannelScaler.fit(train.sequences)
        target = TargetScaler(mean=float(train.labels.mean()), std=float(train.labels.std()))
        parts = dict(zip(SPLITS, (train, val, test), strict=True))
        splits = {
            name: SequenceSet(
                scaler.transform(part.sequences),
                ((part.labels - target.mean) / target.std).astype(np.float32),
            )
            for name, part in parts.items()
        }
        meta = RegressionMeta(
            feature_names=raw.feature_names,
            label_names=[],
            n_outputs=1,
            max_train_length=longest_sequence(splits),
            scaler=Scaler(**scaler.to_dict()),
            target=target,
        )
        report = {"target": {name: target_stats(part.labels) for name, part in parts.items()}}
        return Prepared(splits, meta, source, report, files={})

    def summary(self, report: RegressionReport) -> str:
        train = report.target["train"]
        return (
            f"prepare: {report.n_train} train / {report.n_val} val / {report.n_test} test "
            f"sequences, {report.n_features} features, training target mean {train['mean']:.4g} "
            f"(std {train['std']:.4g}, {train['min']:.4g} to {train['max']:.4g}) "
            f"from {report.source}"
        )
