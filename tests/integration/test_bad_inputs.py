"""Every bad input gets one clear line and a refusal, never a traceback or a silent change.

Four tables, one row per bad input: training data (`seqops prepare` on a user file), params
(`load_config`, and `seqops train` / `prepare` for the exit code and the outputs kept), predict
files (`seqops predict` on a tiny bundle built once) and scoring-server requests (one real
`mlflow models serve` for the module). Each row asserts the exit code or HTTP status, that the
message is one line naming the problem, and that nothing valid-looking was left behind. The
main cases (missing file, missing column, NaN, no rows, a params typo) also run for every task,
and a tracking server that does not answer stops `seqops train` and `release` on the built
project in seconds, its outputs kept.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from seqops.cli import main as seqops
from seqops.config import load_config
from seqops.errors import ConfigError
from seqops.tasks.parts.serve import get_serve
from tests.conftest import BIN, REPO, run, serve_model, write_params


def _one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    assert "Traceback" not in text
    return lines[0]


def _cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """`seqops <args>` in-process (the real entry point): exit code and its one stderr line."""
    capsys.readouterr()
    code = seqops(args)
    return code, capsys.readouterr().err


# -- training data: `seqops prepare` on a user file ------------------------------------------


def _rows(n_ids: int = 8, steps: int = 3) -> pd.DataFrame:
    """A valid long-format table: `n_ids` sequences of `steps` rows, two classes."""
    rng = np.random.default_rng(0)
    rows = [
        {"id": f"s{i}", "time": t, "f1": rng.normal(), "f2": rng.normal(), "label": "ab"[i % 2]}
        for i in range(n_ids)
        for t in range(steps)
    ]
    return pd.DataFrame(rows)


def _csv(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode()


def _parquet(frame: pd.DataFrame) -> bytes:
    import io

    buf = io.BytesIO()
    frame.to_parquet(buf, index=False)
    return buf.getvalue()


def _with(row: int, column: str, value: Any) -> pd.DataFrame:
    frame = _rows().astype({column: object})
    frame.loc[row, column] = value
    return frame


def _series_csv(times: list[Any]) -> bytes:
    return _csv(pd.DataFrame({"month": times, "y": np.arange(len(times), dtype=float)}))


#: name -> (file name, its bytes, extra `data` params, what the message must say)
DATA_CASES: dict[str, tuple[str, bytes, dict[str, Any], str]] = {
    "0-byte csv": ("d.csv", b"", {}, "d.csv is empty"),
    "0-byte parquet": ("d.parquet", b"", {}, "d.parquet is empty"),
    "corrupt parquet": ("d.parquet", b"PAR1 not really", {}, "cannot be read as parquet"),
    "truncated parquet": ("d.parquet", _parquet(_rows())[:-40], {}, "cannot be read as parquet"),
    "non-UTF-8 csv": ("d.csv", _csv(_rows()).replace(b"ab"[:1], b"\xe9", 1), {}, "not UTF-8"),
    "header only": ("d.csv", b"id,time,f1,label\n", {}, "has a header but no rows"),
    "unknown suffix": ("d.xlsx", b"x", {}, "unsupported format '.xlsx'"),
    "missing column": (
        "d.csv",
        _csv(_rows().drop(columns="time")),
        {},
        "missing column(s) ['time']",
    ),
    "missing id": ("d.csv", _csv(_with(4, "id", None)), {}, "column 'id' is empty at row 4"),
    "missing time": ("d.csv", _csv(_with(5, "time", None)), {}, "column 'time' is empty at row 5"),
    "missing label": ("d.csv", _csv(_with(2, "label", None)), {}, "'label' is empty at row 2"),
    "text time": ("d.csv", _csv(_with(3, "time", "soon")), {}, "row 3 holds 'soon'"),
    "boolean time": (
        "d.parquet",
        _parquet(_rows().assign(time=lambda f: f.time > 0)),
        {},
        "time column 'time' holds booleans",
    ),
    "number-like and text time": ("d.csv", _csv(_with(1, "time", "1b")), {}, "row 1 holds '1b'"),
    "duplicate time": ("d.csv", _csv(_with(1, "time", 0)), {}, "duplicate 'time' values"),
    "text feature": ("d.csv", _csv(_with(6, "f1", "high")), {}, "'f1' must be numeric; row 6"),
    "boolean feature": (
        "d.csv",
        _csv(_rows().assign(f2=lambda f: f.f1 > 0)),
        {},
        "column 'f2' must be numeric",
    ),
    "NaN feature": ("d.csv", _csv(_with(4, "f1", np.nan)), {}, "'f1' has a NaN or infinite"),
    "infinite feature": ("d.csv", _csv(_with(4, "f2", np.inf)), {}, "'f2' has a NaN or infinite"),
    "1e308 feature": ("d.csv", _csv(_with(7, "f1", 1e308)), {}, "'f1' row 7 holds 1e+308"),
    "-1e308 feature": ("d.csv", _csv(_with(8, "f2", -1e308)), {}, "beyond the float32 range"),
    "two labels in a sequence": ("d.csv", _csv(_with(1, "label", "b")), {}, "several labels"),
    "unknown feature column": (
        "d.csv",
        _csv(_rows()),
        {"feature_columns": ["f9"]},
        "missing column(s) ['f9']",
    ),
    "ambiguous day/month dates": (
        "d.csv",
        _csv(
            _rows().assign(
                time=lambda f: f.time.map({0: "01/02/2020", 1: "02/01/2020", 2: "03/01/2020"})
            )
        ),
        {},
        "is ambiguous: row 0 holds '01/02/2020'",
    ),
    "day-first and month-first dates": (
        "d.csv",
        _csv(
            _rows().assign(
                time=lambda f: f.time.map({0: "13/01/2020", 1: "01/14/2020", 2: "01/01/2020"})
            )
        ),
        {},
        "mixes day-first and month-first dates",
    ),
    "time not in data.time_format": (
        "d.csv",
        _csv(_with(2, "time", "2020-01-03")),
        {"time_format": "%d/%m/%Y"},
        "which does not match data.time_format '%d/%m/%Y'",
    ),
    "times with and without a zone": (
        "d.csv",
        _csv(
            _rows().assign(
                time=lambda f: f.time.map(
                    {0: "2020-01-01T00:00+01:00", 1: "2020-01-02T00:00", 2: "2020-01-03T00:00"}
                )
            )
        ),
        {},
        "mixes times with a zone (row 0",
    ),
    "class smaller than its splits": (
        "d.csv",
        _csv(pd.concat([_rows(), _rows(2).assign(id=lambda f: "r" + f.id, label="rare")])),
        {},
        "the 3 splits (train, validation, test) each class must reach: 'rare': 2",
    ),
    "series: ambiguous dates": (
        "s.csv",
        _series_csv(["01/02/2020", "02/02/2020", "03/02/2020"]),
        {"task": "forecasting"},
        "is ambiguous: row 0 holds '01/02/2020'",
    ),
    "series: times with and without a zone": (
        "s.csv",
        _series_csv(["2020-01-01T00:00+00:00", "2020-01-02T00:00", "2020-01-03T00:00"]),
        {"task": "forecasting"},
        "mixes times with a zone (row 0",
    ),
    "series: number among timestamps": (
        "s.csv",
        _series_csv(["2020-01-01", "5", "2020-03-01"]),
        {"task": "forecasting"},
        "row 1 holds '5', which is not a timestamp",
    ),
    "series: text time": (
        "s.csv",
        _series_csv(["2020-01-01", "later", "2020-03-01"]),
        {"task": "forecasting"},
        "row 1 holds 'later', which is not a timestamp",
    ),
    "series: missing time": (
        "s.csv",
        _series_csv(["2020-01-01", None, "2020-03-01"]),
        {"task": "forecasting"},
        "time column 'month' is empty at row 1",
    ),
    "text: non-UTF-8 lines": (
        "t.txt",
        b"1 a fine film\n0 caf\xe9 dull\n",
        {"task": "text_classification"},
        "t.txt is not UTF-8 text",
    ),
    "text: 0-byte parquet": (
        "t.parquet",
        b"",
        {"task": "text_classification"},
        "t.parquet: cannot be read as parquet",
    ),
}

_TASK_DATA: dict[str, dict[str, Any]] = {
    "forecasting": {"time_column": "month", "forecast": {"lookback": 2, "horizon": 1}},
    "text_classification": {},
}


def _no_prepare_outputs(root: Path) -> bool:
    return (
        not (root / "data" / "processed").exists() and not (root / "reports" / "data.json").exists()
    )


@pytest.mark.parametrize("case", list(DATA_CASES))
def test_bad_training_data(
    case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    name, content, data, expected = DATA_CASES[case]
    (tmp_path / name).write_bytes(content)
    task = data.get("task", "sequence_classification")
    extra: dict[str, Any] = {
        "data": {"dataset": None, "path": name, **data, **_TASK_DATA.get(task, {})}
    }
    if task == "forecasting":
        extra["release"] = {"metric": "test/rmse", "max_metric": 1.0}
    write_params(tmp_path / "params.yaml", extra)
    monkeypatch.chdir(tmp_path)
    code, err = _cli(["prepare"], capsys)
    assert code == 2, err
    line = _one_line(err)
    assert line.startswith("seqops prepare: error: ") and expected in line, line
    assert _no_prepare_outputs(tmp_path)


# -- params -----------------------------------------------------------------------------------

#: name -> (dotted overrides, what the message must say)
PARAM_CASES: dict[str, tuple[dict[str, Any], str]] = {
    "hidden_size true": ({"model.hidden_size": True}, "model.hidden_size = True"),
    "hidden_size 1.5": ({"model.hidden_size": 1.5}, "model.hidden_size = 1.5"),
    "hidden_size text": ({"model.hidden_size": "64"}, "model.hidden_size = '64'"),
    "num_layers 0": ({"model.num_layers": 0}, "model.num_layers = 0"),
    "bidirectional yes": ({"model.bidirectional": "yes"}, "model.bidirectional = 'yes'"),
    "bidirectional 1": ({"model.bidirectional": 1}, "model.bidirectional = 1"),
    "dropout nan": ({"model.dropout": float("nan")}, "model.dropout = nan"),
    "weight_decay inf": ({"train.weight_decay": float("inf")}, "train.weight_decay = inf"),
    "lr -inf": ({"train.lr": float("-inf")}, "train.lr = -inf"),
    "noise_std inf": ({"train.noise_std": float("inf")}, "train.noise_std = inf"),
    "batch_size 32.0": ({"train.batch_size": 32.0}, "train.batch_size = 32.0"),
    "deterministic 0": ({"train.deterministic": 0}, "train.deterministic = 0"),
    "devices 0": ({"train.devices": 0}, "train.devices = 0"),
    "devices true": ({"train.devices": True}, "train.devices"),
    "devices many": ({"train.devices": "many"}, "train.devices"),
    "strategy bogus": ({"train.strategy": "bogus"}, "train.strategy = 'bogus'"),
    "accelerator tpu": ({"train.accelerator": "tpu"}, "train.accelerator = 'tpu'"),
    "monitor val/ece": ({"train.monitor": "val/ece"}, "train.monitor = 'val/ece'"),
    "monitor test metric": ({"train.monitor": "test/accuracy"}, "train.monitor = 'test/accuracy'"),
    "tune.metric val/ece": ({"tune.metric": "val/ece"}, "tune.metric = 'val/ece'"),
    "feature_columns []": (
        {"data.dataset": None, "data.path": "d.csv", "data.feature_columns": []},
        "data.feature_columns = []",
    ),
    "target_columns []": ({"data.forecast.target_columns": []}, "data.forecast.target_columns"),
    "tracking ftp": ({"tracking.uri": "ftp://host/mlflow"}, "tracking.uri: scheme 'ftp'"),
    "tracking s3": ({"tracking.uri": "s3://bucket/runs"}, "tracking.uri: scheme 's3'"),
    "tracking http without host": ({"tracking.uri": "http:///mlflow"}, "names no host"),
    "tracking port not a number": (
        {"tracking.uri": "http://127.0.0.1:50x0"},
        "tracking.uri: the port of 'http://127.0.0.1:50x0' is not a number",
    ),
    "tracking password": (
        {"tracking.uri": "http://bob:s3cret@127.0.0.1:5000"},
        "tracking.uri: holds a password",
    ),
    "experiment blank": ({"tracking.experiment": " "}, "tracking.experiment = ' '"),
    "experiment control character": (
        {"tracking.experiment": "seq\nops"},
        "tracking.experiment = 'seq\\nops'",
    ),
    "experiment 501 characters": ({"tracking.experiment": "e" * 501}, "more than MLflow's 500"),
    "model_name with a slash": ({"release.model_name": "team/seqops"}, "release.model_name"),
    "model_name with an alias sign": ({"release.model_name": "seqops@v1"}, "models:/NAME/N"),
    "model_name with a quote": ({"release.model_name": "o'brien"}, "release.model_name"),
    "train.threads 100000": ({"train.threads": 100_000}, "train.threads = 100000"),
    "benchmark.threads 0": ({"benchmark.threads": 0}, "benchmark.threads = 0"),
    "export.max_length 10^9": ({"export.max_length": 10**9}, "export.max_length = 1000000000"),
    "batch_size 10^7": ({"train.batch_size": 10**7}, "train.batch_size = 10000000"),
    "tokenizer.max_len 10^8": (
        {"data.tokenizer.max_len": 10**8},
        "data.tokenizer.max_len = 100000000",
    ),
    "vocab_size 10^9": ({"data.tokenizer.vocab_size": 10**9}, "data.tokenizer.vocab_size"),
    "lookback 10^8": ({"data.forecast.lookback": 10**8}, "data.forecast.lookback"),
    "parity batch 10^6": ({"export.parity_batch_sizes": [1, 10**6]}, "export.parity_batch_sizes"),
    "seed true": ({"seed": True}, "seed = True"),
    "n_trials 2.5": ({"tune.n_trials": 2.5}, "tune.n_trials = 2.5"),
    "timeout inf": ({"tune.timeout_s": float("inf")}, "tune.timeout_s = inf"),
    "max_p95_ms nan": ({"release.max_p95_ms": float("nan")}, "release.max_p95_ms = nan"),
    "space low > high": (
        {"tune.space": {"model.hidden_size": {"type": "int", "low": 64, "high": 8}}},
        "low=64 must be below high=8",
    ),
    "space float bound inf": (
        {"tune.space": {"train.lr": {"type": "float", "low": 1e-4, "high": float("inf")}}},
        "tune.space.train.lr",
    ),
}


@pytest.mark.parametrize("case", list(PARAM_CASES))
def test_bad_params(case: str) -> None:
    overrides, expected = PARAM_CASES[case]
    with pytest.raises(ConfigError) as err:
        load_config(REPO / "params.yaml", overrides=overrides)
    line = _one_line(str(err.value))
    assert expected in line, line


def test_yaml_float_forms_stay_accepted() -> None:
    """Strictness refuses wrong types, not YAML's spelling of a float (`lr: 1`, `1e-3`)."""
    cfg = load_config(REPO / "params.yaml", overrides={"train.lr": 1, "model.dropout": 0})
    assert cfg.train.lr == 1.0 and isinstance(cfg.train.lr, float)
    assert load_config(REPO / "params.yaml", overrides={"train.devices": "auto"}).train.devices


#: Lightning options that fail only once training starts, and train deletes the old model first.
TRAIN_CASES: dict[str, dict[str, Any]] = {
    "devices 0": {"train": {"devices": 0}},
    "strategy bogus": {"train": {"strategy": "bogus"}},
    "accelerator tpu": {"train": {"accelerator": "tpu"}},
    "accelerator gpu absent": {"train": {"accelerator": "gpu"}},
    "devices 2 without ddp": {"train": {"strategy": "auto", "devices": 2}},
    "ddp from Python": {"train": {"strategy": "ddp", "devices": 2}},
    "monitor val/ece": {"train": {"monitor": "val/ece"}},
    "weight_decay inf": {"train": {"weight_decay": float("inf")}},
}


@pytest.mark.parametrize("case", list(TRAIN_CASES))
def test_bad_train_option_keeps_the_model(
    case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    if case == "accelerator gpu absent":
        import torch

        if torch.cuda.is_available():
            pytest.skip("this machine has a GPU")
    write_params(tmp_path / "params.yaml", TRAIN_CASES[case])
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "model.ckpt").write_bytes(b"the previous model")
    monkeypatch.chdir(tmp_path)
    code, err = _cli(["train"], capsys)
    assert code == 2
    key = next(iter(TRAIN_CASES[case]["train"]))
    assert f"train.{key}" in _one_line(err)
    assert (tmp_path / "models" / "model.ckpt").read_bytes() == b"the previous model"


def test_bad_params_through_the_real_command(tmp_path: Path) -> None:
    """The installed `seqops` exits 2 with one line (the in-process cases share its main)."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["model"]["hidden_size"] = True
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    proc = run([str(BIN / "seqops"), "prepare"], tmp_path, check=False)
    assert proc.returncode == 2
    assert "model.hidden_size = True" in _one_line(proc.stderr)
    assert _no_prepare_outputs(tmp_path)


#: A "billion laughs" document: nine levels of ten aliases, 10^9 strings once expanded.
_LAUGHS = "lol0: &a0 [lol]\n" + "".join(
    f"lol{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]\n" for i in range(1, 10)
)

#: name -> (params.yaml as written, what the message must say): refused while it is read.
PARAMS_FILE_CASES: dict[str, tuple[str, str]] = {
    "repeated section": (
        "train:\n  lr: 0.01\nseed: 1\ntrain:\n  max_epochs: 2\n",
        "params.yaml, line 4: key 'train' appears twice in one mapping (first at line 1)",
    ),
    "repeated key": ("model:\n  cell: gru\n  cell: lstm\n", "line 3: key 'cell' appears twice"),
    "billion laughs": (_LAUGHS, "params.yaml, line 4: aliases expand to more than 1000 values"),
    "python tag": ("seed: !!python/object/apply:os.getpid []\n", "line 1: tag 'tag:yaml.org"),
    "deep nesting": ("seed: " + "[" * 200_000 + "]" * 200_000 + "\n", "nested deeper than 64"),
    "10 MB value": ("data:\n  dataset: " + "x" * 10_000_000 + "\n", "more than a params file"),
    "100 kB value": ("model:\n  cell: " + "x" * 100_000 + "\n", "model.cell = 'xxxxxxxx"),
    "100 kB key": ("model:\n  ? " + "k" * 100_000 + "\n  : 1\n", "model.kkkkkkkk"),
}


@pytest.mark.parametrize("case", list(PARAMS_FILE_CASES))
def test_bad_params_file(
    case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    text, expected = PARAMS_FILE_CASES[case]
    (tmp_path / "params.yaml").write_text(text)
    monkeypatch.chdir(tmp_path)
    code, err = _cli(["prepare"], capsys)
    assert code == 2, err
    line = _one_line(err)
    assert line.startswith("seqops prepare: error: ") and expected in line, line
    assert len(line) < 300, line
    assert _no_prepare_outputs(tmp_path)


# -- predict files: `seqops predict` on one tiny bundle ---------------------------------------

FEATURES = ["a", "b", "c"]


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch

    from seqops.config import DataConfig
    from seqops.model.network import SequenceNet
    from tests.unit.bundles import classification_meta, write_bundle

    torch.manual_seed(0)
    net = SequenceNet(3, 2, cell="gru", hidden_size=4, num_layers=1, pooling="mean").eval()
    meta = classification_meta(FEATURES, ["down", "up"], max_train_length=8)
    return write_bundle(tmp_path_factory.mktemp("models"), net, meta, DataConfig(), 16)


def _request(n_ids: int = 2, steps: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    rows = [
        {"id": f"q{i}", "time": t, **dict(zip(FEATURES, rng.normal(size=3).tolist(), strict=True))}
        for i in range(n_ids)
        for t in range(steps)
    ]
    return pd.DataFrame(rows)


def _req_with(row: int, column: str, value: Any) -> pd.DataFrame:
    frame = _request().astype({column: object})
    frame.loc[row, column] = value
    return frame


def _truncate(models: Path) -> None:
    data = (models / "model.onnx").read_bytes()
    (models / "model.onnx").write_bytes(data[: len(data) // 2])


def _reseal(models: Path) -> None:
    from tests.unit.bundles import reseal

    reseal(models)


def _model_digest_written_in(models: Path) -> None:
    """Record model.onnx's sha256 in preprocessing.json, as export would (not in the
    integrity record, which covers preprocessing.json too)."""
    pre = json.loads((models / "preprocessing.json").read_text())
    pre["sha256"]["model.onnx"] = hashlib.sha256((models / "model.onnx").read_bytes()).hexdigest()
    (models / "preprocessing.json").write_text(json.dumps(pre))


def _resealed(spoil: Callable[[Path], Any]) -> Callable[[Path], None]:
    """`spoil`, then record the spoiled model's sha256 as export would, in preprocessing.json
    and in the integrity record: the predictor's digest checks pass and its ONNX loading is
    what must refuse the file."""

    def spoil_and_seal(models: Path) -> None:
        spoil(models)
        _model_digest_written_in(models)
        _reseal(models)

    return spoil_and_seal


def _preprocessing(text: str) -> Callable[[Path], Any]:
    """preprocessing.json replaced by `text`, the integrity record written over it: its
    parser is what must refuse it."""

    def write(models: Path) -> None:
        (models / "preprocessing.json").write_text(text)
        _reseal(models)

    return write


def _edited(change: Callable[[dict[str, Any]], Any], reseal: bool = True) -> Callable[[Path], Any]:
    """preprocessing.json edited by `change` (on its parsed JSON) and, with `reseal`, the
    integrity record written over it; without, the record is what must refuse it."""

    def edit(models: Path) -> None:
        pre = json.loads((models / "preprocessing.json").read_text())
        change(pre)
        (models / "preprocessing.json").write_text(json.dumps(pre))
        if reseal:
            _reseal(models)

    return edit


def _extra_feature(pre: dict[str, Any]) -> None:
    pre["data"]["feature_names"].append("d")
    pre["data"]["scaler"]["mean"].append(0.0)
    pre["data"]["scaler"]["std"].append(1.0)


def _std(index: int, value: Any) -> Callable[[dict[str, Any]], None]:
    return lambda pre: pre["data"]["scaler"]["std"].__setitem__(index, value)


def _three_labels(pre: dict[str, Any]) -> None:
    pre["data"]["label_names"] = ["down", "flat", "up"]
    pre["data"]["n_outputs"] = 3


def _text_meta(tokenizer: str) -> Callable[[dict[str, Any]], None]:
    """The bundle's metadata made a text model's, its tokenizer file named `tokenizer`."""

    def change(pre: dict[str, Any]) -> None:
        pre["data"] = {
            "task": "text_classification",
            "input": "tokens",
            "feature_names": [],
            "label_names": ["down", "up"],
            "n_outputs": 2,
            "max_train_length": 8,
            "tokenizer": tokenizer,
            "vocab_size": 10,
            "max_len": 8,
            "text_column": "text",
        }

    return change


def _another_model(models: Path) -> None:
    """model.onnx replaced by another valid model with the same contract (another seed)."""
    import torch

    from seqops.model.network import SequenceNet
    from tests.unit.bundles import classification_meta, export

    torch.manual_seed(1)
    net = SequenceNet(3, 2, cell="gru", hidden_size=4, num_layers=1, pooling="mean").eval()
    export(net, models / "model.onnx", classification_meta(FEATURES, ["down", "up"]))


def _swapped_model_digest_written_in(models: Path) -> None:
    _another_model(models)
    _model_digest_written_in(models)


def _record(text: str) -> Callable[[Path], Any]:
    return lambda models: (models / "bundle.sha256").write_text(text)


#: name -> (input file name, its bytes, a change to the bundle or None, output name, message)
PREDICT_CASES: dict[str, tuple[str, bytes, Callable[[Path], Any] | None, str, str]] = {
    "output is a directory": ("in.csv", _csv(_request()), None, "outdir/", "is a directory"),
    "output suffix": ("in.csv", _csv(_request()), None, "out.xlsx", "unsupported output format"),
    "output folder missing": ("in.csv", _csv(_request()), None, "no/out.csv", "does not exist"),
    "output folder a file": ("in.csv", _csv(_request()), None, "in.csv/o.csv", "is not a folder"),
    "model.onnx changed after export": (
        "in.csv",
        _csv(_request()),
        _truncate,
        "out.csv",
        "model.onnx: sha256 differs from the one",
    ),
    "truncated model.onnx": (
        "in.csv",
        _csv(_request()),
        _resealed(_truncate),
        "out.csv",
        "not a loadable",
    ),
    "empty model.onnx": (
        "in.csv",
        _csv(_request()),
        _resealed(lambda m: (m / "model.onnx").write_bytes(b"")),
        "out.csv",
        "model.onnx: not a loadable ONNX model",
    ),
    "text as model.onnx": (
        "in.csv",
        _csv(_request()),
        _resealed(lambda m: (m / "model.onnx").write_text("not onnx")),
        "out.csv",
        "model.onnx: not a loadable ONNX model",
    ),
    "preprocessing []": ("in.csv", _csv(_request()), _preprocessing("[]"), "out.csv", "got list"),
    "preprocessing null": (
        "in.csv",
        _csv(_request()),
        _preprocessing("null"),
        "out.csv",
        "got null",
    ),
    "preprocessing not JSON": (
        "in.csv",
        _csv(_request()),
        _preprocessing("{"),
        "out.csv",
        "not valid JSON",
    ),
    "preprocessing vs graph": (
        "in.csv",
        _csv(_request().assign(d=1.0)),
        _edited(_extra_feature),
        "out.csv",
        "the graph takes 3 features per step but preprocessing.json lists 4",
    ),
    # tampering the integrity record catches: preprocessing.json is not the one exported
    "reversed label names": (
        "in.csv",
        _csv(_request()),
        _edited(lambda pre: pre["data"]["label_names"].reverse(), reseal=False),
        "out.csv",
        "preprocessing.json: sha256 differs from the one",
    ),
    "another model, its digest written in": (
        "in.csv",
        _csv(_request()),
        _swapped_model_digest_written_in,
        "out.csv",
        "preprocessing.json: sha256 differs from the one",
    ),
    "negative std, not resealed": (
        "in.csv",
        _csv(_request()),
        _edited(_std(0, -1.0), reseal=False),
        "out.csv",
        "preprocessing.json: sha256 differs from the one",
    ),
    "no integrity record": (
        "in.csv",
        _csv(_request()),
        lambda models: (models / "bundle.sha256").unlink(),
        "out.csv",
        "bundle.sha256: not found: the bundle has no integrity record",
    ),
    "record names a path": (
        "in.csv",
        _csv(_request()),
        _record("0" * 64 + "  ../model.onnx\n"),
        "out.csv",
        "bundle.sha256: line 1 is not '<sha256>  <file name>'",
    ),
    "record of other files": (
        "in.csv",
        _csv(_request()),
        _record("0" * 64 + "  preprocessing.json\n"),
        "out.csv",
        "preprocessing.json: sha256 differs from the one",
    ),
    # metadata the record vouches for but the typed model refuses (a buggy or forged export)
    "negative std": (
        "in.csv",
        _csv(_request()),
        _edited(_std(0, -1.0)),
        "out.csv",
        "scaler.std.0: Input should be greater than 0",
    ),
    "zero std": (
        "in.csv",
        _csv(_request()),
        _edited(_std(2, 0.0)),
        "out.csv",
        "scaler.std.2: Input should be greater than 0",
    ),
    "NaN std": (
        "in.csv",
        _csv(_request()),
        _edited(_std(1, float("nan"))),
        "out.csv",
        "scaler.std.1: Input should be a finite number",
    ),
    "text std": (
        "in.csv",
        _csv(_request()),
        _edited(_std(1, "1.0")),
        "out.csv",
        "scaler.std.1: Input should be a valid number",
    ),
    "short std": (
        "in.csv",
        _csv(_request()),
        _edited(lambda pre: pre["data"]["scaler"]["std"].pop()),
        "out.csv",
        "3 means but 2 stds",
    ),
    "repeated label names": (
        "in.csv",
        _csv(_request()),
        _edited(lambda pre: pre["data"].update(label_names=["up", "up"])),
        "out.csv",
        "label names repeat 'up'",
    ),
    "a label name short": (
        "in.csv",
        _csv(_request()),
        _edited(lambda pre: pre["data"].update(n_outputs=3)),
        "out.csv",
        "2 label_names for 3 outputs",
    ),
    "labels vs graph outputs": (
        "in.csv",
        _csv(_request()),
        _edited(_three_labels),
        "out.csv",
        "do not match the {'lengths': ['batch'], 'logits': ['batch', 3],",
    ),
    "deeply nested preprocessing": (
        "in.csv",
        _csv(_request()),
        _preprocessing('{"data": ' + "[" * 200_000 + "]" * 200_000 + "}"),
        "out.csv",
        "preprocessing.json: nested deeper than 32 levels",
    ),
    "tokenizer outside the bundle": (
        "in.csv",
        _csv(_request()),
        _edited(_text_meta("../tokenizer.json")),
        "out.csv",
        "not a valid TextMeta (tokenizer: String should match pattern",
    ),
    "0-byte csv": ("in.csv", b"", None, "out.csv", "in.csv: input is empty"),
    "0-byte parquet": ("in.parquet", b"", None, "out.csv", "cannot be read as parquet"),
    "non-UTF-8 csv": (
        "in.csv",
        _csv(_request()).replace(b"q0", b"q\xe9", 1),
        None,
        "out.csv",
        "cannot be read as csv",
    ),
    "missing id": (
        "in.csv",
        _csv(_req_with(2, "id", None)),
        None,
        "o.csv",
        "'id' is empty at row 2",
    ),
    "missing time": (
        "in.csv",
        _csv(_req_with(4, "time", None)),
        None,
        "out.csv",
        "column 'time' is empty at row 4",
    ),
    "text time": ("in.csv", _csv(_req_with(1, "time", "x")), None, "o.csv", "row 1 holds 'x'"),
    "mixed int/str time": (
        "in.jsonl",
        _req_with(1, "time", "t1").to_json(orient="records", lines=True).encode(),
        None,
        "out.csv",
        "column 'time' mixes numbers and text",
    ),
    "boolean feature": (
        "in.csv",
        _csv(_request().assign(b=lambda f: f.a > 0)),
        None,
        "out.csv",
        "column 'b' must be numeric",
    ),
    "1e308 feature": ("in.csv", _csv(_req_with(0, "c", 1e308)), None, "o.csv", "float32 range"),
    "missing feature": (
        "in.csv",
        _csv(_request().drop(columns="b")),
        None,
        "out.csv",
        "missing column(s) ['b']",
    ),
}


@pytest.mark.parametrize("case", list(PREDICT_CASES))
def test_bad_predict_input(
    case: str, bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    name, content, spoil, output, expected = PREDICT_CASES[case]
    models = tmp_path / "models"
    shutil.copytree(bundle, models)
    if spoil is not None:
        spoil(models)
    (tmp_path / name).write_bytes(content)
    out = tmp_path / output
    if output.endswith("/"):
        out.mkdir()
    files = {p.name: p.read_bytes() for p in models.iterdir()}
    code, err = _cli(
        ["predict", "--model", str(models), "--input", str(tmp_path / name), "--output", str(out)],
        capsys,
    )
    assert code == 2, err
    line = _one_line(err)
    assert line.startswith("seqops predict: error: ") and expected in line, line
    assert len(line) < 400 + 3 * len(str(tmp_path)), line  # paths, and no user value unbounded
    assert out.is_dir() if output.endswith("/") else not out.exists()
    assert list(out.iterdir()) == [] if out.is_dir() else True
    assert {p.name: p.read_bytes() for p in models.iterdir()} == files  # nothing deleted
    made = {output.rstrip("/")} if output.endswith("/") else set()
    assert {p.name for p in tmp_path.iterdir()} == {"models", name} | made  # nothing written


def test_predict_exit_code_through_the_real_command(bundle: Path, tmp_path: Path) -> None:
    (tmp_path / "in.csv").write_bytes(_csv(_req_with(0, "id", None)))
    proc = subprocess.run(
        [str(BIN / "seqops"), "predict", "--model", str(bundle), "--input", "in.csv",
         "--output", "out.csv"],
        cwd=tmp_path, capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "column 'id' is empty at row 0" in _one_line(proc.stderr)
    assert not (tmp_path / "out.csv").exists()


# -- the MLflow scoring server ----------------------------------------------------------------


@pytest.fixture(scope="module")
def server(bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    import mlflow

    from seqops.onnx_export import artifacts
    from seqops.pyfunc_serving import OnnxSequenceModel
    from seqops.serving import served_signature
    from seqops.tasks import read_bundle

    root = tmp_path_factory.mktemp("server")
    pre = read_bundle(bundle / "preprocessing.json")
    codec = get_serve(pre.data.task).codec(pre, {})
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(f"sqlite:///{root / 'mlflow.db'}")
    with mlflow.start_run():
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=OnnxSequenceModel(),
            artifacts=artifacts(bundle, pre.data),
            signature=served_signature(codec),
        )
    mlflow.set_tracking_uri(previous)
    with serve_model(root, str(info.model_uri)) as base:
        yield base


def _post(base: str, body: bytes, content_type: str) -> tuple[int, str]:
    request = urllib.request.Request(f"{base}/invocations", body, {"Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=60) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def _split(frame: pd.DataFrame) -> bytes:
    split = json.loads(frame.to_json(orient="split", index=False))
    return json.dumps({"dataframe_split": split}).encode()


_JSON = "application/json"

#: name -> (body, content type, what the message must say)
SERVER_CASES: dict[str, tuple[bytes, str, str]] = {
    "boolean feature": (
        _split(_request().assign(b=lambda f: f.a > 0)),
        _JSON,
        "column 'b' must be numeric; row 0 holds",
    ),
    "text feature": (_split(_req_with(3, "a", "oops")), _JSON, "'a' must be numeric; row 3"),
    "NaN feature": (_split(_req_with(4, "c", np.nan)), _JSON, "'c' has a NaN or infinite"),
    "1e308 feature": (_split(_req_with(1, "a", 1e308)), _JSON, "beyond the float32 range"),
    "missing feature": (_split(_request().drop(columns="c")), _JSON, "missing column(s) ['c']"),
    "missing id": (_split(_req_with(2, "id", None)), _JSON, "column 'id' is empty at row 2"),
    "mixed int/str time": (_split(_req_with(1, "time", "t")), _JSON, "mixes numbers and text"),
    "no rows": (_split(_request().iloc[:0]), _JSON, "request: no rows"),
    "too long": (
        _split(_request(1, 40)),
        _JSON,
        "has 40 steps; the model accepts at most 16",
    ),
    "deeply nested JSON": (
        b'{"dataframe_split": {"columns": ["id"], "data": '
        + b"[" * 100_000
        + b"]" * 100_000
        + b"}}",
        _JSON,
        "nested too deeply",
    ),
    "nested cell": (
        json.dumps(
            {
                "dataframe_split": {
                    "columns": ["id", "time", *FEATURES],
                    "data": [["q", 0, [[1]], 1, 1]],
                }
            }
        ).encode(),
        _JSON,
        "column 'a' must be numeric",
    ),
    "not JSON": (b"{", _JSON, "valid JSON"),
    "non-UTF-8 JSON": (b'{"dataframe_split": "\xff"}', _JSON, "request: "),
    "JSON list": (b"[1, 2]", _JSON, "Received a list"),
    "no input field": (b'{"rows": []}', _JSON, "exactly one of the input fields"),
    "bad split shape": (
        json.dumps({"dataframe_split": {"columns": ["a"], "data": [[1, 2]]}}).encode(),
        _JSON,
        "not a valid dataframe representation",
    ),
    "CSV with boolean feature": (
        _csv(_request().assign(c=True)),
        "text/csv",
        "column 'c' must be numeric",
    ),
    "CSV missing time": (_csv(_req_with(3, "time", None)), "text/csv", "'time' is empty at row 3"),
    "empty CSV": (b"", "text/csv", "request: "),
}


def _assert_400(status: int, body: str, expected: str) -> None:
    assert status == 400, body
    message = json.loads(body)["message"]
    line = _one_line(message)
    assert line.startswith("request") and expected in line, line
    assert "Failed to predict data" not in line and 'dataframe_split": {' not in line


@pytest.mark.slow
@pytest.mark.parametrize("case", list(SERVER_CASES))
def test_bad_request(server: str, case: str) -> None:
    body, content_type, expected = SERVER_CASES[case]
    status, answer = _post(server, body, content_type)
    _assert_400(status, answer, expected)


@pytest.mark.slow
def test_server_answers_csv_like_json_and_names_what_it_takes(server: str) -> None:
    frame = _request()
    status_json, by_json = _post(server, _split(frame), _JSON)
    status_csv, by_csv = _post(server, _csv(frame), "text/csv")
    assert (status_json, status_csv) == (200, 200), by_csv
    assert json.loads(by_csv) == json.loads(by_json)
    status, answer = _post(server, b"<rows/>", "application/xml")
    assert status == 415 and "text/csv" in answer and "application/json" in answer
    # the server survived every bad request
    assert _post(server, _split(frame), _JSON)[0] == 200


# -- a tracking server that does not answer ---------------------------------------------------


def _tree(root: Path) -> dict[str, str]:
    """Every file under models/ and reports/ with its sha256."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for folder in ("models", "reports")
        for p in sorted((root / folder).rglob("*"))
        if p.is_file()
    }


def _closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow
@pytest.mark.parametrize("where", ["params", "environment", "environment with a password"])
def test_an_unreachable_tracking_server_stops_stages_before_they_delete(
    built_project: Path, where: str
) -> None:
    import time

    port = _closed_port()
    env: dict[str, str] = {}
    if where == "params":
        params = yaml.safe_load((built_project / "params.yaml").read_text())
        params["tracking"]["uri"] = f"http://127.0.0.1:{port}"
        (built_project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    elif where == "environment":
        env = {"MLFLOW_TRACKING_URI": f"http://bob@127.0.0.1:{port}/",
               "MLFLOW_TRACKING_PASSWORD": "s3cret"}  # fmt: skip
    else:
        env = {"MLFLOW_TRACKING_URI": f"http://bob:s3cret@127.0.0.1:{port}/"}
    before = _tree(built_project)
    for stage in ("train", "release"):
        start = time.monotonic()
        proc = run([str(BIN / "seqops"), stage], built_project, check=False, env=env)
        elapsed = time.monotonic() - start
        assert proc.returncode == 2, (proc.stdout, proc.stderr)
        line = _one_line(proc.stderr)
        assert line.startswith(f"seqops {stage}: error: "), line
        assert "s3cret" not in proc.stdout + proc.stderr
        if where == "environment with a password":
            assert "MLFLOW_TRACKING_URI" in line and "bob:***@" in line, line
        else:
            assert f"127.0.0.1:{port}" in line and "unreachable" in line, line
        assert elapsed < 60, elapsed  # torch's import included; MLflow's retries take minutes
        assert _tree(built_project) == before


def test_stages_after_training_stop_before_they_delete_when_the_runs_server_is_down(
    built_project: Path,
) -> None:
    """evaluate, export and benchmark reopen the run `models/run.json` names: a server there
    that does not answer stops them in one line, naming host and port, with nothing removed."""
    port = _closed_port()
    run_file = built_project / "models" / "run.json"
    info = json.loads(run_file.read_text())
    info["tracking_uri"] = f"http://127.0.0.1:{port}"
    run_file.write_text(json.dumps(info))
    before = _tree(built_project)
    for stage in ("evaluate", "export", "benchmark"):
        proc = run([str(BIN / "seqops"), stage], built_project, check=False)
        assert proc.returncode == 2, (stage, proc.stdout, proc.stderr)
        line = _one_line(proc.stderr)
        assert line.startswith(f"seqops {stage}: error: models/run.json: "), line
        assert f"127.0.0.1:{port}" in line and "unreachable" in line, line
        assert _tree(built_project) == before, stage


# -- the main bad inputs, task by task ---------------------------------------------------------


def _task_frame(task: str) -> pd.DataFrame:
    """A valid training table of `task` (in the columns its params below name)."""
    if task == "forecasting":
        months = pd.date_range("2020-01-01", periods=24, freq="MS").strftime("%Y-%m-%d")
        return pd.DataFrame({"month": months, "y": np.arange(24, dtype=float)})
    if task == "text_classification":
        return pd.DataFrame(
            {"text": [f"text number {i}" for i in range(12)], "label": ["pos", "neg"] * 6}
        )
    frame = _rows()
    if task == "sequence_regression":
        frame["label"] = frame["id"].str[1:].astype(float)
    return frame


#: task -> (extra params, the column a missing-column case drops, the cell a NaN case empties)
TASKS: dict[str, tuple[dict[str, Any], str, tuple[int, str]]] = {
    "sequence_classification": ({}, "time", (4, "f1")),
    "sequence_regression": (
        {"release": {"metric": "test/rmse", "max_metric": 1.0}},
        "label",
        (4, "f2"),
    ),
    "forecasting": (
        {"release": {"metric": "test/rmse", "max_metric": 1.0}},
        "month",
        (5, "y"),
    ),
    "text_classification": ({}, "text", (3, "label")),
}

#: case -> what the one line says, by task (a substring)
TASK_CASES: dict[str, dict[str, str]] = {
    "missing file": dict.fromkeys(TASKS, "does not exist"),
    "missing column": {
        "sequence_classification": "missing column(s) ['time']",
        "sequence_regression": "missing column(s) ['label']",
        "forecasting": "missing column(s) ['month']",
        "text_classification": "'text'",
    },
    "NaN": {
        "sequence_classification": "'f1' has a NaN or infinite value at row 4",
        "sequence_regression": "'f2' has a NaN or infinite value at row 4",
        "forecasting": "2020-06-01",
        "text_classification": "row 3",
    },
    "no rows": dict.fromkeys(TASKS, "no rows"),
}


@pytest.mark.parametrize("task", list(TASKS))
@pytest.mark.parametrize("case", list(TASK_CASES))
def test_main_bad_inputs_of_every_task(
    task: str,
    case: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    extra, column, (row, cell) = TASKS[task]
    frame = _task_frame(task)
    if case == "missing column":
        frame = frame.drop(columns=column)
    elif case == "NaN":
        frame = frame.astype({cell: object})
        frame.loc[row, cell] = None
    elif case == "no rows":
        frame = frame.iloc[:0]
    if case != "missing file":
        frame.to_csv(tmp_path / "d.csv", index=False)
    data = {"task": task, "dataset": None, "path": "d.csv", **_TASK_DATA.get(task, {})}
    write_params(tmp_path / "params.yaml", {**extra, "data": data})
    monkeypatch.chdir(tmp_path)
    code, err = _cli(["prepare"], capsys)
    assert code == 2, err
    line = _one_line(err)
    assert line.startswith("seqops prepare: error: "), line
    assert TASK_CASES[case][task] in line, line
    assert _no_prepare_outputs(tmp_path)


@pytest.mark.parametrize("task", list(TASKS))
def test_a_params_typo_is_named_for_every_task(task: str, tmp_path: Path) -> None:
    extra, _, _ = TASKS[task]
    data = {"task": task, "dataset": None, "path": "d.csv", **_TASK_DATA.get(task, {})}
    params = write_params(tmp_path / "params.yaml", {**extra, "data": data})
    load_config(params)  # the task's params are valid as written
    with pytest.raises(ConfigError) as err:
        load_config(params, overrides={"data.tim_column": "t"})
    assert "data.tim_column = 't': unknown key (typo?)" in _one_line(str(err.value))
