"""Bad user data: each case gets one clear DataError naming the file and the problem."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from seqops.config import DataConfig
from seqops.data.sources import bundled_datasets, load_bundled, load_long_file
from seqops.errors import DataError
from seqops.tasks.parts.prepare import get_prepare

COLUMNS = {
    "id_column": "id",
    "time_column": "time",
    "label_column": "label",
    "feature_columns": None,
}


def long_frame(n_per_class: int = 4, classes: tuple[str, ...] = ("a", "b")) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for c, label in enumerate(classes):
        for k in range(n_per_class):
            sid = f"{label}{k}"
            for t in range(3 + k):
                rows.append(
                    {"id": sid, "time": t, "f1": rng.normal(c), "f2": rng.normal(), "label": label}
                )
    return pd.DataFrame(rows)


def test_reads_long_format_in_time_order(tmp_path: Path) -> None:
    frame = long_frame().sample(frac=1.0, random_state=0)  # rows shuffled
    path = tmp_path / "d.parquet"
    frame.to_parquet(path)
    raw = load_long_file(path, **COLUMNS)
    assert raw.feature_names == ["f1", "f2"]
    assert len(raw.sequences) == 8 and sorted(set(raw.labels)) == ["a", "b"]
    first = frame[frame.id == "a0"].sort_values("time")[["f1", "f2"]].to_numpy()
    np.testing.assert_array_equal(raw.sequences[0], first)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"data.path: .*nope.csv does not exist"):
        load_long_file(tmp_path / "nope.csv", **COLUMNS)


def test_empty_file_and_header_only(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(DataError, match=r"empty\.csv is empty"):
        load_long_file(empty, **COLUMNS)
    header = tmp_path / "header.csv"
    header.write_text("id,time,f1,label\n")
    with pytest.raises(DataError, match="has a header but no rows"):
        load_long_file(header, **COLUMNS)


def test_missing_label_column(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    long_frame().drop(columns="label").to_csv(path, index=False)
    with pytest.raises(DataError, match=r"missing column\(s\) \['label'\]"):
        load_long_file(path, **COLUMNS)


def test_non_numeric_feature_names_column_and_row(tmp_path: Path) -> None:
    frame = long_frame()
    frame["f2"] = frame["f2"].astype(object)
    frame.loc[5, "f2"] = "oops"
    path = tmp_path / "d.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(DataError, match="column 'f2' must be numeric; row 5 holds 'oops'"):
        load_long_file(path, **COLUMNS)


def test_nan_feature(tmp_path: Path) -> None:
    frame = long_frame()
    frame.loc[3, "f1"] = np.nan
    path = tmp_path / "d.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(DataError, match="column 'f1' has a NaN or infinite value at row 3"):
        load_long_file(path, **COLUMNS)


def test_label_must_be_constant_within_a_sequence(tmp_path: Path) -> None:
    frame = long_frame()
    frame.loc[0, "label"] = "b"
    path = tmp_path / "d.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(DataError, match="sequence 'a0' has several labels"):
        load_long_file(path, **COLUMNS)


def test_class_with_a_single_example_cannot_be_stratified(tmp_path: Path) -> None:
    frame = pd.concat([long_frame(), long_frame(1, ("lonely",)).assign(id="z")])
    path = tmp_path / "d.csv"
    frame.to_csv(path, index=False)
    cfg = DataConfig(dataset=None, path=path)
    # Refused before any split is carved: it cannot reach train, validation and test.
    with pytest.raises(DataError, match=r"fewer examples than the 3 splits .*: 'lonely': 1;"):
        get_prepare(cfg.task).prepare(cfg, seed=0)


def test_user_file_prepares_stratified_splits(tmp_path: Path) -> None:
    path = tmp_path / "d.tsv"
    long_frame(n_per_class=12).to_csv(path, sep="\t", index=False)
    cfg = DataConfig(dataset=None, path=path, val_fraction=1 / 3, test_fraction=0.25)
    prepared = get_prepare(cfg.task).prepare(cfg, 0)
    sizes = {k: len(v) for k, v in prepared.splits.items()}
    assert sizes == {"train": 12, "val": 6, "test": 6}
    for split in prepared.splits.values():
        assert np.bincount(split.labels).tolist() == [len(split) // 2] * 2


def test_bundled_set_is_offline_and_unknown_names_are_refused() -> None:
    assert {"JapaneseVowels", "BasicMotions", "GunPoint"} <= set(bundled_datasets())
    raw = load_bundled("JapaneseVowels", "train")
    assert len(raw.sequences) == 270 and raw.sequences[0].shape[1] == 12
    with pytest.raises(DataError, match="'NotASet' is not bundled with sktime"):
        load_bundled("NotASet", "train")
