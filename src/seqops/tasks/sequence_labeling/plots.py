"""The plots both kinds of labeling draw: F1 per label (type) of the model beside its baseline,
as a CSV for `dvc plots` and a bar chart, and the confusion matrix of gold against predicted
labels over every test step (token)."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np


def f1_csv(
    key: str,
    names: Sequence[str],
    model: Sequence[float],
    baseline: Sequence[float],
    support: Sequence[int],
    baseline_name: str,
) -> str:
    """One row per label: its name under `key`, the model's and the baseline's F1, the gold
    support (the columns `dvc.yaml`'s per-label plots read)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([key, "model", baseline_name, "support"])
    for row in zip(names, model, baseline, support, strict=True):
        name, ours, theirs, gold = row
        writer.writerow([name, f"{ours:.6f}", f"{theirs:.6f}", gold])
    return buf.getvalue()


def f1_bars_png(
    path: Path,
    names: Sequence[str],
    model: Sequence[float],
    baseline: Sequence[float],
    baseline_name: str,
    what: str,
) -> None:
    """Horizontal bars of the model's and the baseline's F1 per label; `what` names the score
    and the labels ("entity F1 per type")."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    y = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(6, 1.0 + 0.45 * len(names)))
    ax.barh(y - 0.2, model, height=0.4, label="model")
    ax.barh(y + 0.2, baseline, height=0.4, label=f"{baseline_name} baseline")
    ax.set_yticks(y, names)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel(f"test {what.split(' per ')[0]}")
    ax.set_title(f"test {what}")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def confusion_png(
    path: Path,
    gold: Sequence[str],
    predicted: Sequence[str],
    names: Sequence[str],
    unit: str,
    log_colour: bool = False,
) -> None:
    """Counts of (gold, predicted) label pairs over every test `unit` ("tokens", "steps"), in
    the order of `names`; `log_colour` when one label (`O`) outnumbers the others by far."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    index = {name: i for i, name in enumerate(names)}
    matrix = np.zeros((len(names), len(names)), dtype=np.int64)
    np.add.at(matrix, ([index[g] for g in gold], [index[p] for p in predicted]), 1)
    side = 1.5 + 0.5 * len(names)
    fig, ax = plt.subplots(figsize=(side, side))
    ax.imshow(np.log1p(matrix) if log_colour else matrix, cmap="Blues")
    for (i, j), count in np.ndenumerate(matrix):
        if count:
            ax.text(j, i, str(count), ha="center", va="center", fontsize=7)
    ax.set_xticks(range(len(names)), names, rotation=90)
    ax.set_yticks(range(len(names)), names)
    label = "tag" if unit == "tokens" else "label"
    ax.set_xlabel(f"predicted {label}")
    ax.set_ylabel(f"gold {label}")
    ax.set_title(f"test {label} confusion ({unit})")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
