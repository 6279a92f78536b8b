"""Where raw labelled sequences come from: sktime's bundled UCR/UEA sets, or a user file.

Both return `RawSequences` (float arrays of shape `(T, F)` with string labels); nothing is
downloaded at run time. A user file is in long format, one row per time step:

    id,time,f1,f2,label
    a,0,0.1,1.2,up
    a,1,0.3,1.1,up
    b,0,0.9,0.2,down
"""

from __future__ import annotations

import re
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


def read_table(path: Path, id_column: str | None = None) -> pd.DataFrame:
    """CSV, TSV or Parquet by suffix, with errors that name the file. The `id_column` of a CSV
    or TSV is read as written (text: `007` and `7` stay two ids)."""
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
            frame = pd.read_csv(
                path,
                sep="\t" if suffix == ".tsv" else ",",
                encoding="utf-8",
                dtype={id_column: str} if id_column else None,
            )
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


#: A date written day and month first in either order: two numbers of at most two digits, then
#: the year, one separator between them (`03/04/2020`, `3.4.20`, `03-04-2020 10:00`).
_DAY_MONTH = re.compile(r"^\s*(\d{1,2})([/.\-])(\d{1,2})\2(\d{4}|\d{2})(?!\d)")


def _day_first(text: pd.Series, where: str, name: str) -> bool:
    """Whether numeric dates in `text` are day-first; refused when every row reads as a valid
    date both ways (and some row differently: `03/04/2020`), or when no one order fits all."""
    parts = text.str.extract(_DAY_MONTH)
    matched = parts[0].notna().to_numpy()
    if not matched.any():
        return False
    first, second = parts[0][matched].astype(int), parts[2][matched].astype(int)
    day_first = bool(((first >= 1) & (first <= 31) & (second >= 1) & (second <= 12)).all())
    month_first = bool(((first >= 1) & (first <= 12) & (second >= 1) & (second <= 31)).all())
    sep = str(parts[1][matched].iloc[0])
    formats = f"'%d{sep}%m{sep}%Y' or '%m{sep}%d{sep}%Y'"
    if day_first and month_first:
        differ = (first != second).to_numpy()
        if not differ.any():
            return False
        row = int(np.flatnonzero(matched)[_first(differ)])
        raise DataError(
            f"{where}: time column {name!r} is ambiguous: row {row} holds {text.iloc[row]!r}, "
            "and every row reads as a date day-first and month-first alike; set "
            f"data.time_format ({formats})"
        )
    if not (day_first or month_first):
        rows = np.flatnonzero(matched)
        a = int(rows[_first((first > 12).to_numpy())])
        b = int(rows[_first((second > 12).to_numpy())])
        raise DataError(
            f"{where}: time column {name!r} mixes day-first and month-first dates (row {a} "
            f"holds {text.iloc[a]!r}, row {b} holds {text.iloc[b]!r}); set data.time_format "
            f"({formats})"
        )
    return day_first


def _wall_clock(stamps: pd.Series) -> pd.Series:
    """Timestamps of one zone as that zone's wall-clock time (naive); naive ones unchanged."""
    if isinstance(stamps.dtype, pd.DatetimeTZDtype):
        return stamps.dt.tz_localize(None)
    return stamps


def _zone_rows(text: pd.Series, day_first: bool) -> np.ndarray:
    """Per row: whether it parses to a time with a zone (an offset, `Z`, ...)."""

    def aware(value: str) -> bool:
        try:
            return pd.to_datetime(value, dayfirst=day_first).tzinfo is not None
        except (ValueError, TypeError, OverflowError):
            return False

    return text.map(aware).to_numpy(dtype=bool)


def _refuse_zone_mix(text: pd.Series, where: str, name: str, day_first: bool) -> None:
    """Raise DataError when some rows of `text` carry a zone and others do not."""
    zoned = _zone_rows(text, day_first)
    if zoned.any() and not zoned.all():
        plain, with_zone = _first(~zoned), _first(zoned)
        raise DataError(
            f"{where}: time column {name!r} mixes times with a zone (row {with_zone} holds "
            f"{text.iloc[with_zone]!r}) and without one (row {plain} holds "
            f"{text.iloc[plain]!r}); give every row a zone (normalised to UTC) or none"
        )


def parse_timestamps(
    column: pd.Series,
    where: str,
    name: str,
    time_format: str | None = None,
    *,
    mixed: bool = True,
) -> pd.Series:
    """Text timestamps as naive datetime64, NaT where a row is not one (the caller names it).

    With `time_format` (`data.time_format`, a strftime string) every row is read with it.
    Without, a numeric date is read in the one day/month order every row allows; a column
    where both orders fit every row (`03/04/2020`) is refused, naming a row, unless
    `time_format` says which. Zones: one zone throughout → its wall-clock times; several
    offsets (daylight saving, several sources) → normalised to UTC; rows with a zone mixed
    with rows without one are refused, naming one of each. `mixed` reads each row in its own
    layout; else all rows in the layout of the first (a series' time column)."""
    text = column.astype(str)
    if time_format is not None:
        try:
            stamps = pd.to_datetime(text, format=time_format, errors="coerce", utc=False)
        except ValueError:  # several offsets read with a %z format
            stamps = pd.to_datetime(text, format=time_format, errors="coerce", utc=True)
            return stamps.dt.tz_convert(None)
        return _wall_clock(stamps)
    day_first = _day_first(text, where, name)
    layout = "mixed" if mixed else None
    try:
        stamps = pd.to_datetime(text, errors="coerce", format=layout, dayfirst=day_first)
    except ValueError:  # pandas refuses several zones in one column
        _refuse_zone_mix(text, where, name, day_first)
        stamps = pd.to_datetime(
            text, errors="coerce", format=layout, dayfirst=day_first, utc=True
        ).dt.tz_convert(None)
    if stamps.isna().any():  # a row unread for a zone its neighbours lack is named as such
        _refuse_zone_mix(text, where, name, day_first)
    return _wall_clock(stamps)


def time_order(
    column: pd.Series, where: str, name: str, time_format: str | None = None
) -> np.ndarray:
    """What sorts a sequence's rows: numbers as numbers (`"10"` after `"2"`), else timestamps
    (`parse_timestamps`: `time_format`, day/month order, zones).

    An empty cell, a boolean column, numbers mixed with text, or text that is neither a
    number nor a timestamp is an error naming the row."""
    frame = column.to_frame(name)
    check_filled(frame, name, where)
    if column.dtype == bool:
        raise DataError(f"{where}: time column {name!r} holds booleans; use numbers or timestamps")
    if pd.api.types.is_datetime64_any_dtype(column):
        return _wall_clock(column).to_numpy()
    if pd.api.types.is_numeric_dtype(column):
        return column.to_numpy()
    check_one_kind(column, where, name)
    numbers = pd.to_numeric(column, errors="coerce")
    if numbers.notna().all() and time_format is None:
        return numbers.to_numpy()
    stamps = parse_timestamps(column, where, name, time_format)
    if time_format is not None and stamps.isna().any():
        row = _first(stamps.isna().to_numpy())
        raise DataError(
            f"{where}: time column {name!r} row {row} holds {column.iloc[row]!r}, which does "
            f"not match data.time_format {time_format!r}"
        )
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
    time_format: str | None = None,
) -> RawSequences:
    """Sequences from a long-format table, ordered by `time_column` within each id (ids as
    written: text in CSV/TSV)."""
    frame = read_table(path, id_column)
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
    times = time_order(frame[time_column], str(path), time_column, time_format)
    order = pd.Series(times, index=frame.index)

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
