"""`data.task: text_classification` through the real `dvc repro` (every stage, tiny params, a
synthetic CSV with its own column names), then `seqops predict` and the MLflow scoring server
on raw-text requests. The SST-2 accuracy floor is checked by `.ci/text_pipeline.sh`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from tests.conftest import BIN, run
from tests.integration.test_default_project import _commit

# The scoring-server fixture of the float tests, started over this module's `pipeline`.
from tests.integration.test_serving_mlflow import invoke, server  # noqa: F401

pytestmark = pytest.mark.slow

GOOD = ["fine", "warm", "witty", "gorgeous", "moving"]
BAD = ["dull", "cold", "flat", "tedious", "clumsy"]
FILLER = ["a", "film", "the", "plot", "is", "and", "acting", "très", "naïve"]


def synthetic_reviews(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        positive = bool(i % 2)
        words = list(rng.choice(FILLER, rng.integers(3, 12)))
        words.insert(int(rng.integers(0, len(words))), str(rng.choice(GOOD if positive else BAD)))
        rows.append({"review": " ".join(words), "sentiment": "pos" if positive else "neg"})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.conftest import REPO, write_params

    root = tmp_path_factory.mktemp("text")
    import shutil

    shutil.copytree(REPO / "src", root / "src", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "dvc.yaml", root / "dvc.yaml")
    shutil.copytree(REPO / "data" / "raw", root / "data" / "raw")
    synthetic_reviews(300, seed=0).to_csv(root / "data" / "raw" / "reviews.csv", index=False)
    write_params(
        root / "params.yaml",
        {
            "data": {
                "task": "text_classification",
                "dataset": None,
                "path": "data/raw/reviews.csv",
                "text_column": "review",
                "label_column": "sentiment",
                "tokenizer": {"max_len": 16, "vocab_size": 100},
            },
            "model": {"embedding_dim": 8, "cell": "lstm"},
            "train": {"max_epochs": 4, "lr": 0.01},
            "tune": {"space": {"model.pooling": {"type": "categorical", "choices": ["max"]}}},
            "export": {"max_length": 64},
        },
    )
    run(["git", "init", "-q"], root)
    run([str(BIN / "dvc"), "init", "-q"], root)
    run([str(BIN / "dvc"), "repro"], root)
    return root


def _json(root: Path, name: str) -> dict:
    return json.loads((root / "reports" / name).read_text())


def test_every_stage_runs_for_text(pipeline: Path) -> None:
    data = _json(pipeline, "data.json")
    assert (data["n_train"], data["n_val"], data["n_test"]) == (180, 45, 75)
    assert data["vocab_size"] == 2 + len(set(GOOD + BAD + FILLER))
    best = yaml.safe_load((pipeline / "models" / "best_params.yaml").read_text())
    metrics = _json(pipeline, "metrics.json")["test"]
    assert metrics["n"] == 75 and {"accuracy", "f1_macro", "ece"} <= set(metrics)
    # The classical baseline, fitted on the training texts with C picked on validation: each
    # review holds one sentiment word, so TF-IDF + LR gets (nearly) every test review right.
    assert _json(pipeline, "metrics.json")["baseline"]["tfidf_lr"]["accuracy"] >= 0.9
    assert (pipeline / "data" / "processed" / "train.texts.json").is_file()
    for plot, header in (
        ("roc.csv", "fpr,tpr,threshold"),
        ("pr.csv", "recall,precision,threshold"),
    ):
        assert (pipeline / "reports" / "plots" / "evaluate" / plot).read_text().splitlines()[
            0
        ] == header
    export = _json(pipeline, "export.json")
    assert export["dynamic_axes"] == {
        "tokens": {"0": "batch", "1": "time"},
        "lengths": {"0": "batch"},
        "logits": {"0": "batch"},
    }
    assert export["parity"]["passed"] and [2, 64] in export["parity"]["shapes_checked"]
    assert export["served"]["raw_text_max_abs_diff"] <= 1e-6
    # The tuner searches model.cell (the default space); int8 exists for an LSTM only.
    assert export["int8"]["available"] == (best["model.cell"] == "lstm")
    latency = _json(pipeline, "latency.json")
    assert {"torch", "onnx_fp32"} <= set(latency)
    assert ("onnx_int8" in latency) == export["int8"]["available"]
    release = _json(pipeline, "release.json")
    assert release["passed"] and release["version"] == 1
    bundle = json.loads((pipeline / "models" / "preprocessing.json").read_text())
    assert bundle["data"]["input"] == "tokens" and bundle["data"]["tokenizer"] == "tokenizer.json"
    assert bundle["onnx"]["inputs"] == ["tokens", "lengths"]
    assert (pipeline / "models" / "tokenizer.json").is_file()


def test_a_second_model_is_compared_with_the_champion_on_raw_texts(pipeline: Path) -> None:
    _commit(pipeline, "text model")  # promote takes the committed model
    run([str(BIN / "seqops"), "promote"], pipeline)  # v1 becomes champion
    params = yaml.safe_load((pipeline / "params.yaml").read_text())
    params["train"]["max_epochs"] += 1  # another model
    (pipeline / "params.yaml").write_text(yaml.safe_dump(params))
    proc = run([str(BIN / "dvc"), "repro"], pipeline)
    release = _json(pipeline, "release.json")
    check = release["checks"]["no_regression_vs_champion"]
    assert "vs champion v1: McNemar exact" in check["detail"], proc.stdout
    assert release["version"] == 2


def test_server_answers_raw_text_like_seqops_predict(
    pipeline: Path,
    server: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    frame = pd.DataFrame({"review": ["a witty film", "Très DULL — plot", "x " * 500]})
    frame.to_csv(tmp_path / "in.csv", index=False)
    run([str(BIN / "seqops"), "predict", "--model", "models", "--input", str(tmp_path / "in.csv"),
         "--output", str(tmp_path / "out.csv")], pipeline)  # fmt: skip
    local = pd.read_csv(tmp_path / "out.csv", dtype={"label": str})
    status, body = invoke(server, frame)
    assert status == 200, body
    served = pd.DataFrame(body["predictions"])
    assert list(served.columns) == list(local.columns) == ["id", "label", "p_neg", "p_pos"]
    assert served["id"].tolist() == [0, 1, 2]
    assert served["label"].tolist() == local["label"].tolist()
    np.testing.assert_allclose(
        served[["p_neg", "p_pos"]].to_numpy(), local[["p_neg", "p_pos"]].to_numpy(), atol=1e-6
    )
    status, body = invoke(server, frame.assign(id=["a", "b", "c"]))
    assert status == 200 and [r["id"] for r in body["predictions"]] == ["a", "b", "c"]


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        (pd.DataFrame({"review": ["fine", "   "]}), "request: column 'review' is empty at row 1"),
        (pd.DataFrame({"text": ["fine"]}), "missing column 'review' (the text to classify)"),
    ],
)
def test_bad_text_request_is_a_400_with_the_reason(
    server: str,  # noqa: F811
    frame: pd.DataFrame,
    expected: str,
) -> None:
    status, body = invoke(server, frame)
    assert status == 400, body
    assert expected in body["message"]
