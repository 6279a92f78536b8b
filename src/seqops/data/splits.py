"""Seeded, stratified splits that refuse classes too small to appear on both sides."""

from __future__ import annotations

import numpy as np
from sklearn.model_selection import StratifiedKFold, train_test_split

from seqops.errors import DataError


def check_class_sizes(labels: np.ndarray, names: list[str], splits: list[str], source: str) -> None:
    """Refuse a class with fewer examples than the `splits` it must reach (train, validation,
    and test unless the source brings its own): it would be missing from one of them, so that
    split's metrics would silently say nothing about it. Names each such class and its count."""
    classes, counts = np.unique(labels, return_counts=True)
    small = {names[c]: int(n) for c, n in zip(classes, counts, strict=True) if n < len(splits)}
    if small:
        shown = ", ".join(f"{name!r}: {n}" for name, n in list(small.items())[:10])
        raise DataError(
            f"{source}: class(es) with fewer examples than the {len(splits)} splits "
            f"({', '.join(splits)}) each class must reach: {shown}"
            f"{' …' if len(small) > 10 else ''}; add examples or drop the class"
        )


def stratified_split(
    labels: np.ndarray, fraction: float, seed: int, *, names: list[str], what: str
) -> tuple[np.ndarray, np.ndarray]:
    """Indices `(keep, held_out)` with `fraction` of each class held out."""
    classes, counts = np.unique(labels, return_counts=True)
    small = [names[c] for c, n in zip(classes, counts, strict=True) if n < 2]
    if small:
        raise DataError(
            f"cannot carve a stratified {what} split: class(es) {small} have a single example "
            "(every class needs at least 2)"
        )
    index = np.arange(len(labels))
    n_held = max(round(fraction * len(labels)), len(classes))
    if len(labels) - n_held < len(classes):
        raise DataError(
            f"cannot carve a stratified {what} split: {len(labels)} examples for "
            f"{len(classes)} classes is too few"
        )
    keep, held = train_test_split(index, test_size=n_held, stratify=labels, random_state=seed)
    return np.sort(keep), np.sort(held)


def stratified_folds(labels: np.ndarray, folds: int, seed: int) -> list[np.ndarray]:
    """The held-out indices of each of `folds` seeded stratified folds (sorted; every index in
    exactly one)."""
    if len(labels) < folds:
        raise DataError(f"cannot make {folds} folds of {len(labels)} examples")
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    return [np.sort(held) for _, held in splitter.split(np.zeros(len(labels)), labels)]
