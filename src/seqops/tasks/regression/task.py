"""`sequence_regression`'s seam (name, metadata, report) and what prepare and train run of
it (see the package's docstring).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
from pydantic import model_validator

from seqops.contracts import (
    Contract,
    DataReport,
    Finite,
    MetricsReport,
    Scale,
    Scaler,
)
from seqops.errors import DataError
from seqops.layout import SPLITS
from seqops.tasks.base import Prepared, Task, kernel_network_args, longest_sequence
from seqops.tasks.long_format import ScaledMeta, load_sequences

if TYPE_CHECKING:
    from seqops.config import DataConfig, ModelConfig, TrainConfig

PREDICTION = "prediction"
"""The ONNX output, float32 `(batch, 1)`: the standardised target; and the answer column,
in the target's units."""

#: Most target-rank bins a random split is stratified on.
SPLIT_BINS = 10

#: RidgeCV's candidate penalties. Wide on purpose: NIR spectra want almost none (Tecator picks
#: 1e-5) and noisy count series a lot (Covid3Month picks 1e3); an edge choice is a clipped one.
RIDGE_ALPHAS = tuple(10.0**k for k in range(-6, 7))

#: What the bundled sets' labels measure (the model card's "targets").
BUNDLED_TARGETS = {
    "Tecator": "fat content (% of the meat sample)",
    "Covid3Month": "COVID-19 death rate (deaths / confirmed cases)",
}


class TargetScaler(Contract):
    """The training split's target mean and std: the network reads and writes
    `(y - mean) / std`."""

    mean: Finite
    std: Scale


class RegressionMeta(ScaledMeta):
    task: Literal["sequence_regression"] = "sequence_regression"
    input: Literal["x"] = "x"
    target: TargetScaler

    @model_validator(mode="after")
    def _one_output_per_scaled_feature(self) -> RegressionMeta:
        self.scaler.check_features(len(self.feature_names))
        if self.n_outputs != 1:
            raise ValueError(f"n_outputs = {self.n_outputs}: a regressor predicts 1 number")
        return self


class RegressionReport(DataReport):
    task: Literal["sequence_regression"] = "sequence_regression"
    target: dict[str, dict[str, float]]
    """The target's mean / std / min / max per split, in its units."""


# -- prepare ----------------------------------------------------------------------------------


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


# -- the task ---------------------------------------------------------------------------------


class SequenceRegression(Task[RegressionMeta, RegressionReport, MetricsReport]):
    """The seam, with what prepare and train run."""

    name = "sequence_regression"
    meta_type = RegressionMeta
    data_report_type = RegressionReport
    metrics: ClassVar[frozenset[str]] = frozenset({"rmse", "mae", "r2"})
    val_metrics: ClassVar[frozenset[str]] = frozenset({"rmse", "mae", "r2"})
    output = PREDICTION
    reads = ("model.kernel_features",)
    ignored = ("train.label_smoothing",)

    def check_data(self, data: DataConfig) -> None:
        super().check_data(data)
        if data.id_column == PREDICTION:
            raise ValueError(
                f"data.id_column = {PREDICTION!r} would collide with the answer's "
                f"{PREDICTION!r} column; rename it"
            )

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

    def network_args(
        self, meta: RegressionMeta, processed: Path, model: ModelConfig
    ) -> dict[str, Any]:
        return kernel_network_args(meta.max_train_length, model)

    def summary(self, report: RegressionReport) -> str:
        train = report.target["train"]
        return (
            f"prepare: {report.n_train} train / {report.n_val} val / {report.n_test} test "
            f"sequences, {report.n_features} features, training target mean {train['mean']:.4g} "
            f"(std {train['std']:.4g}, {train['min']:.4g} to {train['max']:.4g}) "
            f"from {report.source}"
        )

    def objective(
        self, meta: RegressionMeta, train: TrainConfig, model: ModelConfig
    ) -> dict[str, Any]:
        return {"kind": "regression", "mean": meta.target.mean, "std": meta.target.std}
