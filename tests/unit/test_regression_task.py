"""`sequence_regression` without training: prepare (bundled Tecator, a user's long-format file),
bad labels, the target scaler, the torch-free codec, the ridge baseline, the paired test."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from seqops import onnx_contract as contract
from seqops.config import DataConfig
from seqops.contracts import Bundle, MetricsReport, OnnxIO, Scaler
from seqops.data import sources
from seqops.data.sources import RawSequences
from seqops.errors import DataError
from seqops.tasks.base import Prepared
from seqops.tasks.parts.prepare import get_prepare
from seqops.tasks.parts.release import ErrorScorer, get_release
from seqops.tasks.regression.evaluate import RegressionEvaluation, ridge_baseline
from seqops.tasks.regression.prepare import target_split
from seqops.tasks.regression.release import regression_scorer
from seqops.tasks.regression.serve import RegressionCodec
from seqops.tasks.regression.task import (
    PREDICTION,
    RegressionMeta,
    TargetScaler,
)

TASK = get_prepare("sequence_regression")


def data_config(**fields: object) -> DataConfig:
    return DataConfig.model_validate({"task": "sequence_regression", **fields})


@pytest.fixture(scope="module")
def tecator() -> Prepared:
    return TASK.prepare(data_config(dataset="Tecator"), seed=42)


def units(prepared: Prepared, split: str) -> np.ndarray:
    target = prepared.meta.target  # type: ignore[attr-defined]
    return prepared.splits[split].labels.astype(np.float64) * target.std + target.mean


def long_file(path: Path, n: int = 40, seed: int = 0, labels: dict[str, str] | None = None) -> Path:
    """`n` sequences of 5-12 steps, features a, b, label = 3 × mean(a) + noise (or `labels`)."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        sid = f"s{i:02d}"
        a = rng.normal(i / n, 1.0, rng.integers(5, 13))
        label = f"{3 * a.mean() + rng.normal(0, 0.1):.6f}"
        label = (labels or {}).get(sid, label)
        rows += [
            {"id": sid, "time": t, "a": v, "b": rng.normal(), "label": label}
            for t, v in enumerate(a)
        ]
    pd.DataFrame(rows).sample(frac=1.0, random_state=seed).to_csv(path, index=False)
    return path


# -- prepare ----------------------------------------------------------------------------------


def test_tecator_keeps_the_official_split_and_standardises_on_train(tecator: Prepared) -> None:
    splits, meta = tecator.splits, tecator.meta
    assert isinstance(meta, RegressionMeta) and meta.task == "sequence_regression"
    assert tecator.source == "sktime:Tecator"
    assert {k: len(v) for k, v in splits.items()} == {"train": 138, "val": 34, "test": 43}
    assert (meta.n_outputs, meta.label_names, meta.input) == (1, [], "x")
    assert meta.max_train_length == 100 and len(meta.feature_names) == 1
    for part in splits.values():
        assert part.labels.dtype == np.float32 and part.labels.shape == (len(part),)
    train = splits["train"]
    assert train.labels.mean() == pytest.approx(0.0, abs=1e-5)
    assert train.labels.std() == pytest.approx(1.0, abs=1e-5)
    steps = np.concatenate(train.sequences)
    assert steps.mean() == pytest.approx(0.0, abs=1e-4) and steps.std() == pytest.approx(
        1.0, abs=1e-4
    )
    stats = tecator.report["target"]
    assert set(stats) == {"train", "val", "test"}
    assert stats["test"]["mean"] == pytest.approx(18.3047, abs=1e-4)  # the official test split
    assert (stats["test"]["min"], stats["test"]["max"]) == pytest.approx((2.0, 47.8))
    np.testing.assert_allclose(units(tecator, "test").mean(), stats["test"]["mean"], rtol=1e-6)
    assert meta.target.mean == pytest.approx(stats["train"]["mean"])
    assert meta.target.std == pytest.approx(stats["train"]["std"])
    assert RegressionMeta.parse(meta.model_dump(mode="json"), "meta") == meta


def test_the_target_scaler_never_sees_a_test_label(monkeypatch: pytest.MonkeyPatch) -> None:
    real = sources.load_bundled

    def shifted(name: str, split: str) -> RawSequences:
        raw = real(name, split)
        if split != "test":
            return raw
        return RawSequences(raw.sequences, ["1000.0", *raw.labels[1:]], raw.feature_names)

    before = TASK.prepare(data_config(dataset="Tecator"), seed=42)
    monkeypatch.setattr(sources, "load_bundled", shifted)
    after = TASK.prepare(data_config(dataset="Tecator"), seed=42)
    assert after.meta.target == before.meta.target  # type: ignore[attr-defined]
    assert after.meta.scaler == before.meta.scaler  # type: ignore[attr-defined]
    assert after.report["target"]["test"]["max"] == 1000.0
    assert after.report["target"]["train"] == before.report["target"]["train"]


def test_a_long_format_file_with_a_numeric_label(tmp_path: Path) -> None:
    path = long_file(tmp_path / "seqs.csv")
    data = data_config(dataset=None, path=path, test_fraction=0.25, val_fraction=0.2)
    prepared = TASK.prepare(data, seed=7)
    sizes = {k: len(v) for k, v in prepared.splits.items()}
    assert sizes == {"train": 24, "val": 6, "test": 10}
    assert prepared.meta.feature_names == ["a", "b"] and prepared.source == str(path)
    assert len({len(s) for s in prepared.splits["train"].sequences}) > 1
    # Rank-stratified: every part spans the target's range, not one end of it.
    stats = prepared.report["target"]
    for split in ("val", "test"):
        assert stats[split]["min"] < stats["train"]["mean"] < stats[split]["max"]
    again = TASK.prepare(data, seed=7)
    for split, part in prepared.splits.items():
        np.testing.assert_array_equal(part.labels, again.splits[split].labels)
    other = TASK.prepare(data, seed=8)
    assert not np.array_equal(prepared.splits["test"].labels, other.splits["test"].labels)


@pytest.mark.parametrize("bad", ["heavy", "-inf", "12.5%"])
def test_a_label_that_is_not_a_finite_number_names_its_sequence(tmp_path: Path, bad: str) -> None:
    path = long_file(tmp_path / "seqs.csv", labels={"s07": bad})
    with pytest.raises(DataError) as err:
        TASK.prepare(data_config(dataset=None, path=path), seed=0)
    message = str(err.value)
    assert str(path) in message and "'s07'" in message and "finite number" in message


def test_a_bundled_set_with_class_names_is_refused_naming_the_sequence() -> None:
    with pytest.raises(DataError, match=r"sktime:BasicMotions train: sequence 0 has label '\w+'"):
        TASK.prepare(data_config(dataset="BasicMotions"), seed=0)


def test_target_split_is_seeded_stratified_and_refuses_too_few() -> None:
    y = np.r_[np.zeros(30), np.linspace(1, 10, 70)]  # many ties, like Covid3Month's zeros
    keep, held = target_split(y, 0.2, seed=3, what="validation")
    assert len(held) == 20 and len(keep) == 80 and not set(keep) & set(held)
    np.testing.assert_array_equal(held, target_split(y, 0.2, seed=3, what="validation")[1])
    deciles = np.searchsorted(np.sort(y), y[held], side="right") * 10 // (len(y) + 1)
    assert len(set(deciles.tolist())) >= 8
    with pytest.raises(DataError, match="cannot carve a test split"):
        target_split(np.arange(2.0), 0.25, seed=0, what="test")


def test_a_constant_training_target_is_refused(tmp_path: Path) -> None:
    path = long_file(tmp_path / "seqs.csv", labels={f"s{i:02d}": "5" for i in range(40)})
    with pytest.raises(DataError, match="target is constant"):
        TASK.prepare(data_config(dataset=None, path=path), seed=0)


def test_an_id_column_named_like_the_answer_is_refused() -> None:
    with pytest.raises(ValueError, match="collide"):
        TASK.check_data(data_config(dataset="Tecator", id_column=PREDICTION))


# -- serving ----------------------------------------------------------------------------------

FEATURES = ["a", "b"]
MEAN, STD = [1.0, -2.0], [2.0, 0.5]
TARGET = TargetScaler(mean=10.0, std=4.0)


def bundle() -> Bundle:
    meta = RegressionMeta(
        feature_names=FEATURES,
        label_names=[],
        n_outputs=1,
        max_train_length=20,
        scaler=Scaler(mean=MEAN, std=STD),
        target=TARGET,
    )
    axes = contract.dynamic_axes(contract.INPUT, PREDICTION)
    io = OnnxIO(
        inputs=[contract.INPUT, contract.LENGTHS],
        outputs=[PREDICTION],
        dynamic_axes={name: {str(k): v for k, v in dims.items()} for name, dims in axes.items()},
    )
    return Bundle(data=meta, id_column="id", time_column="time", max_length=20, onnx=io)


def mean_of_first_feature(x: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """A stand-in ONNX model: each sequence's mean standardised `a` over its real steps."""
    steps = np.arange(x.shape[1])[None, :] < lengths[:, None]
    return ((x[..., 0] * steps).sum(axis=1) / lengths)[:, None].astype(np.float32)


def test_the_codec_answers_in_the_target_units() -> None:
    # raw a = 5 is standardised to (5 - 1) / 2 = 2, so the model says 2: 10 + 4 × 2 = 18.
    frame = pd.DataFrame(
        {
            "id": ["x", "x", "x", 7, 7],
            "time": [2, 0, 1, 0, 1],
            "a": [5.0, 5.0, 5.0, 1.0, -1.0],
            "b": [0.0] * 5,
        }
    )
    codec = get_release(TASK.name).codec(bundle(), {})
    assert isinstance(codec, RegressionCodec)
    out = codec.predict_frame(frame, mean_of_first_feature, "request")
    assert list(out.columns) == ["id", PREDICTION]
    assert out["id"].tolist() == ["x", 7]
    assert out[PREDICTION].dtype == np.float64
    np.testing.assert_allclose(out[PREDICTION], [18.0, 10.0 + 4.0 * -0.5], atol=1e-6)
    signature = codec.signature()
    assert signature.inputs.input_names() == ["id", "time", *FEATURES]
    assert signature.outputs.input_names() == ["id", PREDICTION]


def test_the_codec_refuses_bad_rows_like_the_classifier() -> None:
    frame = pd.DataFrame({"id": ["x"], "time": [0], "a": ["heavy"], "b": [0.0]})
    with pytest.raises(DataError, match="column 'a' must be numeric"):
        get_release(TASK.name).codec(bundle(), {}).predict_frame(
            frame, mean_of_first_feature, "request"
        )


def test_serving_a_regressor_never_imports_torch() -> None:
    script = (
        "import sys\n"
        "import numpy as np, pandas as pd\n"
        "from tests.unit.test_regression_task import bundle, mean_of_first_feature\n"
        "from seqops.tasks.parts.serve import get_serve\n"
        "codec = get_serve('sequence_regression').codec(bundle(), {})\n"
        "frame = pd.DataFrame({'id': [1, 1], 'time': [0, 1], 'a': [1.0, 3.0], 'b': [0.0, 0.0]})\n"
        "print(codec.predict_frame(frame, mean_of_first_feature, 'r')['prediction'].iloc[0],\n"
        "      'torch' in sys.modules, 'lightning' in sys.modules)\n"
    )
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=root)
    assert proc.stdout.split() == ["12.0", "False", "False"], proc.stdout + proc.stderr


# -- evaluate and release ---------------------------------------------------------------------


def test_ridge_is_deterministic_and_far_better_than_the_mean_on_tecator(
    tecator: Prepared,
) -> None:
    train, test = tecator.splits["train"], tecator.splits["test"]
    train_y, actual = units(tecator, "train"), units(tecator, "test")
    first = ridge_baseline(train.sequences, train_y, test.sequences)
    np.testing.assert_array_equal(first, ridge_baseline(train.sequences, train_y, test.sequences))
    rmse = float(np.sqrt(((first - actual) ** 2).mean()))
    mean_rmse = float(np.sqrt(((train_y.mean() - actual) ** 2).mean()))
    assert mean_rmse == pytest.approx(12.89, abs=0.02)
    assert rmse < 0.2 * mean_rmse  # measured 2.065 on this split


def test_evaluation_reports_the_model_beside_ridge(tmp_path: Path) -> None:
    actual = np.array([1.0, 2.0, 3.0, 4.0])
    evaluation = RegressionEvaluation(
        actual, {"model": actual + np.array([0.1, -0.1, 0.1, -0.1]), "ridge": actual + 1.0}
    )
    m = evaluation.metrics
    assert m.task == "sequence_regression" and m.test["n"] == 4
    assert m.test["rmse"] == pytest.approx(0.1) and m.test["mae"] == pytest.approx(0.1)
    assert m.test["r2"] == pytest.approx(1 - 0.04 / 5.0)
    assert m.baseline == {"ridge": pytest.approx({"rmse": 1.0, "mae": 1.0, "r2": 1 - 4 / 5.0})}
    assert m.skill == pytest.approx({"rmse_vs_ridge": 0.1})
    lines = evaluation.predictions_csv().splitlines()
    assert lines[0] == "index,actual,model,ridge,error" and lines[1] == "0,1,1.1,2,0.1"
    assert evaluation.logged_metrics()["baseline/ridge/rmse"] == 1.0
    images = evaluation.write_plots(tmp_path / "plots", tmp_path)
    assert (tmp_path / "plots" / "scatter.csv").read_text().splitlines()[:2] == [
        "actual,predicted",
        "1,1.1",
    ]
    assert [p.read_bytes()[:4] for p in images] == [b"\x89PNG"]
    (gate,) = get_release(TASK.name).extra_checks(m)
    assert (gate.name, gate.passed, gate.value) == ("beats_baseline", True, pytest.approx(0.1))
    worse = MetricsReport(task=m.task, test={"rmse": 2.0}, baseline={"ridge": {"rmse": 1.0}})
    assert not get_release(TASK.name).extra_checks(worse)[0].passed


class Served:
    """A loaded pyfunc stand-in: answers `prediction` = truth + a fixed error per sequence."""

    def __init__(self, errors: np.ndarray) -> None:
        self.errors = errors

    def predict(self, requests: pd.DataFrame) -> pd.DataFrame:
        ids = list(dict.fromkeys(requests["id"]))
        truth = np.arange(len(ids), dtype=np.float64)
        return pd.DataFrame({"id": ids, PREDICTION: truth + self.errors})


def test_the_paired_test_flags_a_clearly_worse_candidate() -> None:
    rng = np.random.default_rng(0)
    n = 43
    requests = pd.DataFrame({"id": [f"seq{i}" for i in range(n) for _ in range(3)]})
    scorer = regression_scorer(requests, np.arange(n, dtype=np.float64))
    champion_errors = rng.normal(0, 1.0, n)
    champion = scorer.score(Served(champion_errors))
    np.testing.assert_allclose(champion, champion_errors)
    worse = scorer.score(Served(3 * rng.normal(0, 1.0, n)))
    check = scorer.compare(worse, champion, alpha=0.05)
    assert check.name == "no_regression_vs_champion" and not check.passed
    assert check.value is not None and check.value < 0.01
    assert f"on {n} test sequences" in check.detail
    same = scorer.compare(champion, champion, alpha=0.05)
    assert same.passed and same.value == 1.0
    better = scorer.compare(champion / 3, champion, alpha=0.05)
    assert better.passed


def test_the_scorer_reads_the_raw_test_requests(tecator: Prepared, tmp_path: Path) -> None:
    processed = tmp_path / "processed"
    processed.mkdir()
    for name, part in tecator.splits.items():
        part.save(processed / f"{name}.npz")
    b = bundle().model_copy(update={"data": tecator.meta})
    scorer = get_release(TASK.name).scorer(processed, b)
    assert isinstance(scorer, ErrorScorer) and scorer.columns == [PREDICTION]
    assert scorer.requests["id"].nunique() == 43 and len(scorer.requests) == 43 * 100
    np.testing.assert_allclose(scorer.actual, units(tecator, "test"))
    assert scorer.actual[:3] == pytest.approx([46.3, 47.7, 25.5], abs=1e-4)
