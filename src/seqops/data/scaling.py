"""Per-channel standardisation, fitted on the training split only."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ChannelScaler:
    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, sequences: list[np.ndarray]) -> ChannelScaler:
        steps = np.concatenate(sequences).astype(np.float64)
        std = steps.std(axis=0)
        # A constant channel carries no information; scale 1 keeps it finite instead of inf.
        std = np.where(std > 1e-12, std, 1.0)
        return cls(steps.mean(axis=0), std)

    def transform(self, sequences: list[np.ndarray]) -> list[np.ndarray]:
        return [((s - self.mean) / self.std).astype(np.float32) for s in sequences]

    def to_dict(self) -> dict[str, list[float]]:
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_dict(cls, d: dict[str, list[float]]) -> ChannelScaler:
        return cls(np.asarray(d["mean"]), np.asarray(d["std"]))
