"""Where raw labelled sequences come from: sktime's bundled UCR/UEA sets, or a user file.

Both return `RawSequences` (float arrays of shape `(T, F)` with string labels); nothing is
downloaded at run time. A user file is in long format, one row per time step:

    id,time,f1,f2,label
    a,0,0.1,1.2,up
    a,1,0.3,1.1,up
    b,0,0.9,0.2,down
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from seqops.errors import DataError


@dataclass(frozen=True)
class RawSequences:
    sequences: list[np.ndarray]
    labels: list[str]
    feature_names: list[str]


def bundled_datasets() -> list[str]:
    """Names of the UCR/UEA sets shipped inside sktime's wheel."""
    import sktime.datasets

    root = Path(sktime.datasets.__file__).parent / "data"
    return sorted(p.name for p in root.iterdir() if (p / f"{p.name}_TRAIN.ts").is_file())


def load_bundled(name: str, split: str) -> RawSequences:
    """One official split (`train` or `test`) of a bundled UCR/UEA set."""
    available = bundled_datasets()
    if name not in available:
        raise DataError(
            f"data.dataset: {name!r} is not bundled with sktime (nothing is downloaded); "
            f"choose one of {available} or set data.path to your own file"
        )
    from sktime.datasets import load_UCR_UEA_dataset

    X, y = load_UCR_UEA_dataset(name, split=split, return_X_y=True)
    channels = list(X.columns)
    sequences = [
        np.stack([np.asarray(X.iloc[i][c], dtype=np.float64) for c in channels], axis=1)
        for i in range(len(X))
    ]
    return RawSequences(sequences, [str(v) for v in y], [str(c) for c in channels])


def read_table(path: Path) -> pd.DataFrame:
    """CSV, TSV or Parquet by suffix, with errors that name the file."""
    if not path.is_file():
        raise DataError(f"data.path: {path} does not exist")
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            frame = pd.read_parquet(path)
        elif suffix in (".csv", ".tsv", ".txt"):
            frame = pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",")
        else:
            raise DataError(f"data.path: {path}: unsupported format {suffix!r} (csv, tsv, parquet)")
    except pd.errors.EmptyDataError:
        raise DataError(f"data.path: {path} is empty") from None
    if frame.empty:
        raise DataError(f"data.path: {path} has a header but no rows")
    return frame


def numeric_columns(
    frame: pd.DataFrame,
    columns: list[str],
    where: str,
    *,
    gaps: bool = False,
    row_context: Callable[[int], str] | None = None,
) -> np.ndarray:
    """`(rows, columns)` float64 of feature columns, with one error naming the first bad cell.

    A non-numeric cell, or a boolean column (numeric to pandas, never a meaningful feature), is
    named with its row; so is an infinite value, and NaN unless `gaps` (a series' missing value,
    which `seqops.data.series.regularise` reports or fills). `row_context(row)` adds where the
    row belongs (its sequence) to the message."""
    out = np.empty((len(frame), len(columns)), dtype=np.float64)
    for j, col in enumerate(columns):
        values = pd.to_numeric(frame[col], errors="coerce")
        not_numeric = values.isna() & frame[col].notna()
        if not_numeric.any() or frame[col].dtype == bool:
            row = int(np.flatnonzero(not_numeric.to_numpy())[0]) if not_numeric.any() else 0
            raise DataError(
                f"{where}: column {col!r} must be numeric; row {row} holds {frame[col].iloc[row]!r}"
            )
        column = values.to_numpy(dtype=np.float64)
        bad = np.isinf(column) if gaps else ~np.isfinite(column)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            what = "an infinite" if gaps else "a NaN or infinite"
            context = f" ({row_context(row)})" if row_context else ""
            raise DataError(f"{where}: column {col!r} has {what} value at row {row}{context}")
        out[:, j] = column
    return out


def load_long_file(
    path: Path,
    *,
    id_column: str,
    time_column: str,
    label_column: str,
    feature_columns: list[str] | None,
) -> RawSequences:
    """Sequences from a long-format table, ordered by `time_column` within each id."""
    frame = read_table(path)
    required = [id_column, time_column, label_column, *(feature_columns or [])]
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise DataError(
            f"{path}: missing column(s) {missing}; found {list(frame.columns)} "
            "(set data.id_column / time_column / label_column / feature_columns)"
        )
    features = feature_columns or [
        c for c in frame.columns if c not in (id_column, time_column, label_column)
    ]
    if not features:
        raise DataError(f"{path}: no feature columns besides id, time and label")
    values = numeric_columns(frame, features, str(path))
    if frame[label_column].isna().any():
        row = int(np.flatnonzero(frame[label_column].isna().to_numpy())[0])
        raise DataError(f"{path}: column {label_column!r} is empty at row {row}")

    sequences: list[np.ndarray] = []
    labels: list[str] = []
    for seq_id, group in frame.groupby(id_column, sort=True):
        group = group.sort_values(time_column, kind="stable")
        if group[time_column].duplicated().any():
            raise DataError(f"{path}: sequence {seq_id!r} has duplicate {time_column!r} values")
        seq_labels = group[label_column].unique()
        if len(seq_labels) != 1:
            raise DataError(
                f"{path}: sequence {seq_id!r} has several labels {list(seq_labels)}; "
                f"{label_column!r} must be constant within a sequence"
            )
        sequences.append(values[frame.index.get_indexer(group.index)])
        labels.append(str(seq_labels[0]))
    return RawSequences(sequences, labels, [str(f) for f in features])
