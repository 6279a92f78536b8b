"""The torch-free predictor: same answers as PyTorch from raw long-format rows, clear rejections."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from seqops.config import DataConfig
from seqops.errors import DataError
from seqops.model.network import SequenceNet
from seqops.serving import Predictor, predict_file, read_input
from tests.conftest import assert_predict_succeeds_without_torch
from tests.unit.bundles import classification_meta, write_bundle

FEATURES = ["a", "b", "c"]
LABELS = ["down", "flat", "up", "wild"]
MEAN = np.array([1.0, -2.0, 0.5])
STD = np.array([2.0, 0.5, 1.0])
MAX_LENGTH = 20


@pytest.fixture(scope="module")
def net() -> SequenceNet:
    torch.manual_seed(0)
    return SequenceNet(
        3, 4, cell="lstm", hidden_size=6, num_layers=1, bidirectional=True, pooling="mean"
    ).eval()


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory, net: SequenceNet) -> Path:
    meta = classification_meta(FEATURES, LABELS, MEAN, STD, max_train_length=12)
    return write_bundle(tmp_path_factory.mktemp("models"), net, meta, DataConfig(), MAX_LENGTH)


def long_frame(lengths: dict[str, int], seed: int = 0) -> pd.DataFrame:
    """Raw long-format rows, one per step, shuffled (the predictor must order by time)."""
    rng = np.random.default_rng(seed)
    rows = [
        {"id": sid, "time": t, **dict(zip(FEATURES, rng.normal(MEAN, STD).tolist(), strict=True))}
        for sid, n in lengths.items()
        for t in range(n)
    ]
    frame = pd.DataFrame(rows)
    frame["label"] = "ignored"
    return frame.sample(frac=1.0, random_state=1).reset_index(drop=True)


def torch_probs(net: SequenceNet, frame: pd.DataFrame, ids: list[str]) -> np.ndarray:
    out = []
    for sid in ids:
        rows = frame[frame["id"] == sid].sort_values("time")
        x = ((rows[FEATURES].to_numpy() - MEAN) / STD).astype(np.float32)
        with torch.no_grad():
            logits = net(torch.from_numpy(x)[None], torch.tensor([len(x)]))
        out.append(torch.softmax(logits, -1)[0].numpy())
    return np.stack(out)


def test_predictions_match_pytorch_on_raw_rows(bundle: Path, net: SequenceNet) -> None:
    frame = long_frame({"s2": 5, "s0": 12, "s1": 1, "s3": MAX_LENGTH})
    got = Predictor.load(bundle).predict_frame(frame)
    first_seen = list(dict.fromkeys(frame["id"]))
    assert list(got.columns) == ["id", "label", "p_down", "p_flat", "p_up", "p_wild"]
    assert got["id"].tolist() == first_seen
    probs = got[[f"p_{n}" for n in LABELS]].to_numpy()
    np.testing.assert_allclose(probs, torch_probs(net, frame, first_seen), atol=1e-6)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-6)
    assert got["label"].tolist() == [LABELS[i] for i in probs.argmax(axis=1)]


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".parquet", ".jsonl"])
def test_every_input_format_gives_the_same_predictions(
    bundle: Path, tmp_path: Path, suffix: str
) -> None:
    frame = long_frame({"a": 4, "b": 7})
    path = tmp_path / f"in{suffix}"
    if suffix == ".parquet":
        frame.to_parquet(path)
    elif suffix == ".jsonl":
        frame.to_json(path, orient="records", lines=True)
    else:
        frame.to_csv(path, sep="\t" if suffix == ".tsv" else ",", index=False)
    expected = Predictor.load(bundle).predict_frame(frame)
    got = predict_file(bundle, path, tmp_path / "out.csv")
    pd.testing.assert_frame_equal(got, expected, atol=1e-7)
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "out.csv"), expected, atol=1e-6)


def _drop_b(f: pd.DataFrame) -> pd.DataFrame:
    return f.drop(columns=["b"])


def _text_in_a(f: pd.DataFrame) -> pd.DataFrame:
    f = f.astype({"a": object})
    f.loc[2, "a"] = "oops"
    return f


def _nan_in_c(f: pd.DataFrame) -> pd.DataFrame:
    f.loc[1, "c"] = np.nan
    return f


def _duplicate_time(f: pd.DataFrame) -> pd.DataFrame:
    return pd.concat([f, f.iloc[[0]]], ignore_index=True)


BAD_INPUTS = {
    "missing column": (
        _drop_b,
        "input: missing column(s) ['b']; the model needs ['id', 'time', 'a', 'b', 'c'], "
        "found ['id', 'time', 'a', 'c', 'label']",
    ),
    "text in a feature": (_text_in_a, "input: column 'a' must be numeric; row 2 holds 'oops'"),
    "NaN": (_nan_in_c, "input: column 'c' has a NaN or infinite value at row 1 (sequence '{id1}')"),
    "empty": (lambda f: f.iloc[:0], "input: no rows (expected one row per time step)"),
    "duplicate time": (
        _duplicate_time,
        "input: sequence '{id0}' has duplicate 'time' values [{t0}]",
    ),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_rejected_with_a_clear_message(bundle: Path, case: str) -> None:
    frame = long_frame({"s0": 3, "s1": 4})
    corrupt, message = BAD_INPUTS[case]
    expected = message.format(
        id0=frame.loc[0, "id"], id1=frame.loc[1, "id"], t0=frame.loc[0, "time"]
    )
    with pytest.raises(DataError) as err:
        Predictor.load(bundle).predict_frame(corrupt(frame.copy()))
    assert str(err.value) == expected


def test_over_long_sequence_is_rejected_not_truncated(bundle: Path) -> None:
    frame = long_frame({"ok": MAX_LENGTH, "long": MAX_LENGTH + 1})
    with pytest.raises(DataError) as err:
        Predictor.load(bundle).predict_frame(frame)
    assert str(err.value) == (
        f"input: sequence 'long' has {MAX_LENGTH + 1} steps; the model accepts at most "
        f"{MAX_LENGTH} (export.max_length); split it or re-export with a larger limit"
    )


def test_unreadable_and_unknown_files_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"input file does not exist"):
        read_input(tmp_path / "nope.csv")
    (tmp_path / "x.xlsx").write_text("")
    with pytest.raises(DataError, match=r"unsupported format '.xlsx'"):
        read_input(tmp_path / "x.xlsx")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(DataError, match=r"empty.csv: input is empty"):
        read_input(tmp_path / "empty.csv")


def test_predict_command_never_imports_torch(bundle: Path, tmp_path: Path) -> None:
    frame = long_frame({"a": 4, "b": 9})
    frame.to_csv(tmp_path / "in.csv", index=False)
    args = ["predict", "--model", str(bundle), "--input", str(tmp_path / "in.csv")]
    args += ["--output", str(tmp_path / "out.jsonl")]
    assert_predict_succeeds_without_torch(args)
    got = pd.read_json(tmp_path / "out.jsonl", lines=True)
    assert got["id"].tolist() == ["a", "b"]
    pd.testing.assert_frame_equal(got, Predictor.load(bundle).predict_frame(frame), atol=1e-6)


def test_predict_command_bad_input_exits_2_with_one_line(bundle: Path, tmp_path: Path) -> None:
    long_frame({"a": 4}).drop(columns=["c"]).to_csv(tmp_path / "in.csv", index=False)
    proc = subprocess.run(
        [sys.executable, "-m", "seqops", "predict", "--model", str(bundle), "--input",
         str(tmp_path / "in.csv")],
        capture_output=True,
        text=True,
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"seqops predict: error: {tmp_path / 'in.csv'}: missing column(s) ['c']; the model needs "
        "['id', 'time', 'a', 'b', 'c'], found ['id', 'time', 'a', 'b', 'label']"
    ]
