"""Forecast windows: differencing, scaling, chronological cuts and the way back to units.

The model reads `lookback` steps of the transformed series and writes the next `horizon`
transformed target values. The transform is optional differencing (`first`: y[t] - y[t-1];
`seasonal`: y[t] - y[t-s]) then standardisation with a scaler fitted on the training part
only. `ForecastSpec.invert` undoes both, integrating the differences from the history's last
values, so every forecast that leaves seqops is in the series' own units.

    spec = ForecastSpec.from_dict(preprocessing["forecast"])
    x = spec.model_input(history)            # (lookback, F) float32
    y = spec.invert(z[None], spec.tail(history)[None])[0]    # (horizon, K), original units

Chronology (`cuts`): the test block is the last `horizon + test_windows - 1` steps; the
validation block the `val_fraction` share of the steps before it; training the rest. A
window belongs to the block its *targets* fall in; its inputs may reach back into earlier
blocks (the past is allowed), never forward. Nothing here imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np

from seqops.errors import DataError

Differencing = Literal["none", "first", "seasonal"]

#: Forecast output column numbering the steps ahead of each history (1..horizon).
HORIZON_COLUMN = "horizon"


def lag_of(differencing: str, season_length: int) -> int:
    """Steps of history one transformed value needs beyond itself."""
    return {"none": 0, "first": 1, "seasonal": season_length}[differencing]


def difference(values: np.ndarray, lag: int) -> np.ndarray:
    """`values[t] - values[t - lag]` for t >= lag (`(N - lag, F)`); the values for lag 0."""
    return values.copy() if lag == 0 else values[lag:] - values[:-lag]


def first_non_positive(values: np.ndarray) -> tuple[int, int] | None:
    """(row, column) of the first value of `values` `(T, K)` that is not positive (NaN
    included), or None: where a logarithm is undefined."""
    found = np.argwhere(~(values > 0))
    return None if len(found) == 0 else (int(found[0][0]), int(found[0][1]))


def integration_matrix(horizon: int, lag: int) -> np.ndarray:
    """`(H, H)` 0/1 matrix M with level error = M @ difference error (M = I without differencing).

    With lag s the level at step h is the level at h - s plus a difference, so an error in the
    difference at step j reaches every later step h with (h - j) % s == 0.
    """
    h = np.arange(horizon)
    later = h[:, None] >= h[None, :]
    if lag == 0:
        return np.eye(horizon)
    return (later & ((h[:, None] - h[None, :]) % lag == 0)).astype(np.float64)


@dataclass(frozen=True)
class ForecastSpec:
    """What turns a history into model input and model output back into units."""

    lookback: int
    horizon: int
    differencing: str
    season_length: int
    feature_names: list[str]
    target_names: list[str]
    mean: np.ndarray
    """(F,) mean of the transformed features over the training part."""
    std: np.ndarray
    """(F,) standard deviation of the same."""
    log: bool = False
    """The targets' natural logarithm is modelled (`data.forecast.transform`): their
    differences are growth rates, and forecasts are exponentiated back."""

    @property
    def lag(self) -> int:
        return lag_of(self.differencing, self.season_length)

    @property
    def target_index(self) -> list[int]:
        return [self.feature_names.index(n) for n in self.target_names]

    @property
    def min_history(self) -> int:
        """Raw steps one forecast needs: `lookback` transformed steps plus the lag."""
        return self.lookback + self.lag

    def scale(self, transformed: np.ndarray) -> np.ndarray:
        return (transformed - self.mean) / self.std

    def logged(self, values: np.ndarray) -> np.ndarray:
        """`values` `(T, F)` with the targets' logarithm when `log` (else unchanged); a
        ValueError for a target value that is not positive."""
        if not self.log:
            return values
        k = self.target_index
        if first_non_positive(values[:, k]) is not None:
            raise ValueError("a target value is not positive: its logarithm is undefined")
        out = values.astype(np.float64, copy=True)
        out[:, k] = np.log(out[:, k])
        return out

    def model_input(self, history: np.ndarray) -> np.ndarray:
        """`(lookback, F)` float32 from the last `min_history` raw steps of `history` `(T, F)`."""
        if len(history) < self.min_history:
            raise ValueError(f"history of {len(history)} steps < {self.min_history}")
        recent = self.logged(history[len(history) - self.min_history :])
        return self.scale(difference(recent, self.lag)).astype(np.float32)

    def tail(self, history: np.ndarray) -> np.ndarray:
        """`(lag, K)` last target values (logged when `log`) that `invert` integrates from."""
        return self.logged(history[len(history) - self.lag :])[:, self.target_index]

    def invert(self, z: np.ndarray, tail: np.ndarray) -> np.ndarray:
        """Model output `(B, H, K)` and each history's `tail` `(B, lag, K)` → `(B, H, K)` units."""
        k = self.target_index
        steps = z.astype(np.float64) * self.std[k] + self.mean[k]
        lag = self.lag
        if lag == 0:
            return np.exp(steps) if self.log else steps
        levels = np.concatenate([tail.astype(np.float64), np.zeros_like(steps)], axis=1)
        for h in range(self.horizon):
            levels[:, lag + h] = levels[:, h] + steps[:, h]
        return np.exp(levels[:, lag:]) if self.log else levels[:, lag:]

    def to_dict(self) -> dict[str, Any]:
        return {
            "lookback": self.lookback,
            "horizon": self.horizon,
            "differencing": self.differencing,
            "season_length": self.season_length,
            "feature_names": self.feature_names,
            "target_names": self.target_names,
            "mean": self.mean.tolist(),
            "std": self.std.tolist(),
            **({"log": True} if self.log else {}),  # a bundle without the key models levels
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ForecastSpec:
        return cls(
            lookback=int(d["lookback"]),
            horizon=int(d["horizon"]),
            differencing=str(d["differencing"]),
            season_length=int(d["season_length"]),
            feature_names=[str(n) for n in d["feature_names"]],
            target_names=[str(n) for n in d["target_names"]],
            mean=np.asarray(d["mean"], dtype=np.float64),
            std=np.asarray(d["std"], dtype=np.float64),
            log=bool(d.get("log", False)),
        )


@dataclass(frozen=True)
class Cuts:
    """Raw-step indices: training is `[0, val_start)`, validation `[val_start, test_start)`,
    test `[test_start, n)`."""

    val_start: int
    test_start: int
    n: int


def cuts(n: int, horizon: int, test_windows: int, val_fraction: float, min_history: int) -> Cuts:
    """Chronological blocks, refusing a series too short to train, validate and test on."""
    test_start = n - (horizon + test_windows - 1)
    val_len = max(round(val_fraction * test_start), horizon)
    val_start = test_start - val_len
    train_windows = val_start - horizon - min_history + 1
    if train_windows < 2:
        need = min_history + 2 * horizon + 1 + val_len + test_windows
        raise DataError(
            f"series of {n} steps is too short for lookback + differencing ({min_history}), "
            f"horizon {horizon}, {val_len} validation and {horizon + test_windows - 1} test "
            f"steps: it leaves {max(train_windows, 0)} training windows (need at least 2, "
            f"about {need} steps); lower data.forecast.lookback or horizon"
        )
    return Cuts(val_start, test_start, n)


def fit_spec(
    values: np.ndarray,
    cut: Cuts,
    *,
    lookback: int,
    horizon: int,
    differencing: str,
    season_length: int,
    feature_names: list[str],
    target_names: list[str],
    log: bool = False,
) -> ForecastSpec:
    """The scaler is fitted on transformed values of training steps only (`< val_start`)."""
    lag = lag_of(differencing, season_length)
    shape = ForecastSpec(
        lookback, horizon, differencing, season_length, feature_names, target_names,
        mean=np.zeros(len(feature_names)), std=np.ones(len(feature_names)), log=log,
    )  # fmt: skip
    train = difference(shape.logged(values[: cut.val_start]), lag)
    std = train.std(axis=0)
    return replace(shape, mean=train.mean(axis=0), std=np.where(std > 1e-12, std, 1.0))


def origins(cut: Cuts, spec: ForecastSpec) -> dict[str, range]:
    """First forecast step of every window, per split (targets inside the split's block)."""
    h = spec.horizon
    return {
        "train": range(spec.min_history, cut.val_start - h + 1),
        "val": range(cut.val_start, cut.test_start - h + 1),
        "test": range(cut.test_start, cut.n - h + 1),
    }


def windows(
    values: np.ndarray, spec: ForecastSpec, starts: range
) -> tuple[list[np.ndarray], np.ndarray]:
    """Inputs `(lookback, F)` float32 and scaled transformed targets `(N, H, K)` float32.

    The window with origin o reads raw steps `[o - min_history, o)` and targets `[o, o + H)`.
    """
    lag, h, k = spec.lag, spec.horizon, spec.target_index
    inputs = [spec.model_input(values[o - spec.min_history : o]) for o in starts]
    logged = spec.logged(values)
    targets = [
        spec.scale(difference(logged[o - lag : o + h], lag))[:, k].astype(np.float32)
        for o in starts
    ]
    return inputs, np.stack(targets) if targets else np.zeros((0, h, len(k)), np.float32)
