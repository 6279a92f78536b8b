"""What every classifier's prepare part shares: label encoding and the class report."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from seqops.errors import DataError

if TYPE_CHECKING:
    from seqops.data.sequences import SequenceSet


def encode_labels(raw: list[str], names: list[str], where: str) -> np.ndarray:
    index = {name: i for i, name in enumerate(names)}
    unknown = sorted(set(raw) - set(index))
    if unknown:
        raise DataError(f"{where}: label(s) {unknown} never appear in the training split")
    return np.array([index[v] for v in raw], dtype=np.int64)


def class_report(splits: dict[str, SequenceSet], names: list[str]) -> dict[str, Any]:
    return {
        "n_classes": len(names),
        "class_counts": {
            split: {
                names[c]: int(n)
                for c, n in zip(*np.unique(s.labels, return_counts=True), strict=True)
            }
            for split, s in splits.items()
        },
    }
