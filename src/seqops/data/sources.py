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
    if suffix not in (".parquet", ".csv", ".tsv", ".txt"):
        raise DataError(f"data.path: {path}: unsupported format {suffix!r} (csv, tsv, parquet)")
    if path.stat().st_size == 0:
        raise DataError(f"data.path: {path} is empty")
    try:
        if suffix == ".parquet":
            frame = pd.read_parquet(path)
        else:
            frame = pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",", encoding="utf-8")
    except pd.errors.EmptyDataError:
        raise DataError(f"data.path: {path} is empty") from None
    except UnicodeDecodeError as exc:
        raise DataError(
            f"data.path: {path} is not UTF-8 text (byte {exc.start}); save it as UTF-8"
        ) from None
    except (ValueError, OSError) as exc:  # pyarrow's ArrowInvalid is a ValueError
        raise DataError(
            f"data.path: {path} cannot be read as {suffix[1:]}: {one_line(exc)}"
        ) from None
    if frame.empty:
        raise DataError(f"data.path: {path} has a header but no rows")
    return frame


def one_line(exc: object) -> str:
    """A library's exception message as one line (its first non-blank line)."""
    return next(
        (line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__
    )


def _first(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def check_filled(frame: pd.DataFrame, column: str, where: str) -> None:
    """An id or time column must be set on every row: a missing one is named, never dropped."""
    empty = frame[column].isna().to_numpy()
    if empty.any():
        raise DataError(f"{where}: column {column!r} is empty at row {_first(empty)}")


def check_one_kind(column: pd.Series, where: str, name: str) -> None:
    """Numbers and text mixed in one key column (Parquet, JSON) cannot be ordered or matched."""
    if column.dtype == object:
        is_text = column.map(lambda v: isinstance(v, str)).to_numpy()
        if is_text.any() and not is_text.all():
            row = _first(~is_text) if is_text[0] else _first(is_text)
            raise DataError(
                f"{where}: column {name!r} mixes numbers and text (row {row} holds "
                f"{column.iloc[row]!r}, row 0 holds {column.iloc[0]!r})"
            )


def time_order(column: pd.Series, where: str, name: str) -> np.ndarray:
    """What sorts a sequence's rows: numbers as numbers (`"10"` after `"2"`), else timestamps.

    An empty cell, a boolean column, numbers mixed with text, or text that is neither a
    number nor a timestamp is an error naming the row."""
    frame = column.to_frame(name)
    check_filled(frame, name, where)
    if column.dtype == bool:
        raise DataError(f"{where}: time column {name!r} holds booleans; use numbers or timestamps")
    if pd.api.types.is_numeric_dtype(column) or pd.api.types.is_datetime64_any_dtype(column):
        return column.to_numpy()
    check_one_kind(column, where, name)
    numbers = pd.to_numeric(column, errors="coerce")
    if numbers.notna().all():
        return numbers.to_numpy()
    stamps = pd.to_datetime(column, errors="coerce", format="mixed")
    if stamps.notna().all():
        return stamps.to_numpy()
    # Name the first row that breaks what most rows are.
    if numbers.notna().sum() >= stamps.notna().sum():
        row, kind = _first(numbers.isna().to_numpy()), "a number"
    else:
        row, kind = _first(stamps.isna().to_numpy()), "a timestamp"
    raise DataError(
        f"{where}: time column {name!r} row {row} holds {column.iloc[row]!r}, which is not "
        f"{kind} like the other rows"
    )


#: Features are float32 in the model: a larger magnitude would become infinite.
FLOAT32_MAX = float(np.finfo(np.float32).max)


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
    named with its row; so is an infinite value or one beyond float32, and NaN unless `gaps`
    (a series' missing value, which `seqops.data.series.regularise` reports or fills).
    `row_context(row)` adds where the row belongs (its sequence) to the message."""
    out = np.empty((len(frame), len(columns)), dtype=np.float64)
    for j, col in enumerate(columns):
        values = pd.to_numeric(frame[col], errors="coerce")
        not_numeric = values.isna() & frame[col].notna()
        if not_numeric.any() or frame[col].dtype == bool:
            row = int(np.flatnonzero(not_numeric.to_numpy())[0]) if not_numeric.any() else 0
            value = frame[col].iloc[row]
            value = value.item() if isinstance(value, np.generic) else value
            raise DataError(f"{where}: column {col!r} must be numeric; row {row} holds {value!r}")
        column = values.to_numpy(dtype=np.float64)
        bad = np.isinf(column) if gaps else ~np.isfinite(column)
        context = (lambda row: f" ({row_context(row)})") if row_context else (lambda row: "")
        if bad.any():
            row = _first(bad)
            what = "an infinite" if gaps else "a NaN or infinite"
            raise DataError(f"{where}: column {col!r} has {what} value at row {row}{context(row)}")
        huge = np.abs(np.nan_to_num(column)) > FLOAT32_MAX
        if huge.any():
            row = _first(huge)
            raise DataError(
                f"{where}: column {col!r} row {row}{context(row)} holds {column[row].item()!r}, "
                f"beyond the float32 range (±{FLOAT32_MAX:.4g}) the model computes in"
            )
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
    for column in (id_column, label_column):
        check_filled(frame, column, str(path))
    check_one_kind(frame[id_column], str(path), id_column)
    order = pd.Series(time_order(frame[time_column], str(path), time_column), index=frame.index)

    sequences: list[np.ndarray] = []
    labels: list[str] = []
    for seq_id, group in frame.groupby(id_column, sort=True):
        group = group.loc[order[group.index].sort_values(kind="stable").index]
        if order[group.index].duplicated().any():
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
