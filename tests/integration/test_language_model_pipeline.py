"""`data.task: language_modeling` through the real `dvc repro` (every stage, a tiny character
LSTM, six small documents written here), then `seqops predict` and `seqops generate` on the
exported bundle, torch-free. The Shakespeare figures of the preset are in docs/tasks."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from seqops.cli import main as cli
from seqops.tasks.language_modeling.meta import streams_file
from seqops.tasks.language_modeling.metrics import bits_per_token
from seqops.tasks.language_modeling.ngram import select_order
from seqops.tasks.language_modeling.streams import load_streams
from seqops.tasks.language_modeling.vocab import TokenVocabulary
from tests.conftest import BIN, REPO, assert_predict_succeeds_without_torch, run, write_params

pytestmark = pytest.mark.slow

WORDS = ["the", "king", "and", "queen", "of", "green", "wood", "sing", "a", "song", "to", "old",
         "moon", "at", "night"]  # fmt: skip
DOCUMENTS = {name: i for i, name in enumerate(["alpha", "beta", "gamma", "delta", "eta", "zeta"])}


def document(seed: int) -> str:
    """A few hundred characters of lines drawn from a small vocabulary (seeded)."""
    rng = np.random.default_rng(seed)
    lines = [" ".join(rng.choice(WORDS, size=rng.integers(4, 9))) + "." for _ in range(12)]
    return "\n".join(line.capitalize() for line in lines) + "\n"


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("language_model")
    shutil.copytree(REPO / "src", root / "src", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "dvc.yaml", root / "dvc.yaml")
    corpus = root / "data" / "raw" / "tiny"
    corpus.mkdir(parents=True)
    for name, seed in DOCUMENTS.items():
        (corpus / f"{name}.txt").write_text(document(seed))
    write_params(
        root / "params.yaml",
        {
            "data": {
                "task": "language_modeling",
                "dataset": None,
                "path": "data/raw/tiny",
                "val_documents": ["eta"],
                "test_documents": ["zeta"],
                "block_tokens": 64,
            },
            "model": {"cell": "lstm", "hidden_size": 16, "num_layers": 1, "embedding_dim": 8,
                      "bidirectional": False, "dropout": 0.0},
            "train": {"max_epochs": 3, "batch_size": 4, "bptt": 16, "lr": 0.01, "patience": 3},
            "tune": {"enabled": False},
            "export": {"max_length": 128},
            "release": {"metric": "test/bits_per_char", "max_metric": 100.0,
                        "max_p95_ms": 1000.0},
            "tracking": {"experiment": "seqops-lm-test"},
        },
    )  # fmt: skip
    run(["git", "init", "-q"], root)
    run([str(BIN / "dvc"), "init", "-q"], root)
    run([str(BIN / "dvc"), "repro"], root)
    return root


def _json(root: Path, name: str) -> dict:
    return json.loads((root / "reports" / name).read_text())


def test_every_stage_runs_for_a_language_model(pipeline: Path) -> None:
    root = pipeline
    data = _json(root, "data.json")
    assert data["task"] == "language_modeling"
    assert data["documents"] == {
        "train": ["alpha", "beta", "delta", "gamma"], "val": ["eta"], "test": ["zeta"]
    }  # fmt: skip
    assert data["n_tokens"]["test"] == len(document(DOCUMENTS["zeta"]))
    assert data["n_documents"] == {"train": 4, "val": 1, "test": 1}
    assert 0.0 <= data["test_unknown_rate"] < 0.05
    # blocks of 64 characters: the shared splits' sizes
    assert data["n_test"] == math.ceil(len(document(DOCUMENTS["zeta"])) / 64)

    train = _json(root, "train.json")
    assert train["monitor"] == "val/loss" and train["epochs_run"] >= 1
    curves = pd.read_csv(root / "reports" / "plots" / "learning_curves.csv")
    assert {"train/loss", "val/loss"} <= set(curves.columns)
    assert curves["train/loss"].iloc[-1] < curves["train/loss"].iloc[0]  # it learns

    metrics = _json(root, "metrics.json")
    assert metrics["task"] == "language_modeling"
    test, baseline = metrics["test"], metrics["baseline"]["kneser_ney"]
    # the same scored tokens: every test character after the document's first
    assert test["n_tokens"] == data["n_tokens"]["test"] - 1
    assert 0.0 < test["bits_per_char"] < math.log2(data["vocab_size"])
    assert 0.0 < baseline["bits_per_char"] < math.log2(data["vocab_size"])
    assert 2 <= baseline["order"] <= 7
    # the baseline refitted here on the training works, scored on the same test characters
    _, train_ids = load_streams(root / "data" / "processed" / streams_file("train"))
    _, val_ids = load_streams(root / "data" / "processed" / streams_file("val"))
    _, test_ids = load_streams(root / "data" / "processed" / streams_file("test"))
    vocab = TokenVocabulary.load(root / "data" / "processed" / "lm_vocab.json")
    assert test_ids[0].tolist() == vocab.encode(document(DOCUMENTS["zeta"])).tolist()
    choice = select_order(train_ids, val_ids, len(vocab))
    assert choice.order == baseline["order"]
    assert bits_per_token(*choice.model.nll(test_ids)) == pytest.approx(baseline["bits_per_char"])
    blocks = pd.read_csv(root / "reports" / "predictions.csv")
    assert list(blocks.columns) == ["document", "block", "n_tokens", "model", "kneser_ney"]
    assert blocks["n_tokens"].sum() == test["n_tokens"]
    assert blocks["model"].sum() / test["n_tokens"] / math.log(2) == pytest.approx(
        test["bits_per_char"]
    )

    export = _json(root, "export.json")
    assert export["dynamic_axes"]["tokens"] == {"0": "batch", "1": "time"}
    assert export["dynamic_axes"]["logits"] == {"0": "batch", "1": "time"}
    assert export["parity"]["passed"]
    assert export["streaming"]["available"] and export["streaming"]["passed"]
    assert export["int8"]["metric"] == "test/bits_per_char"
    assert (root / "models" / "model_step.onnx").is_file()
    release = _json(root, "release.json")
    assert release["checks"]["test/bits_per_char"]["passed"]
    assert "bits_per_char" in (root / "models" / "MODEL_CARD.md").read_text()


def test_predict_scores_texts_torch_free(pipeline: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = pipeline
    monkeypatch.chdir(root)
    (root / "q.txt").write_text("The king and queen.\nSing a song\n")
    assert_predict_succeeds_without_torch(
        ["predict", "--model", "models", "--input", "q.txt", "--output", "q.csv"]
    )
    answer = pd.read_csv(root / "q.csv", keep_default_na=False)
    assert list(answer.columns) == ["id", "n_tokens", "nll", "bits_per_char", "next_token"]
    assert answer["n_tokens"].tolist() == [18, 10]


def _generate(root: Path, *extra: str, seed: int = 3) -> str:
    out = root / f"gen-{seed}-{len(extra)}.txt"
    script = (
        "import contextlib, sys\n"
        "from seqops.cli import main\n"
        f"with open({str(out)!r}, 'w') as fh, contextlib.redirect_stdout(fh):\n"
        "    rc = main(['generate', '--model', 'models', '--prompt', 'The k',"
        f" '--max-tokens', '40', '--temperature', '0.8', '--top-k', '5', '--seed', '{seed}',"
        f" *{list(extra)!r}])\n"
        "print(rc, 'torch' in sys.modules, 'lightning' in sys.modules)\n"
    )
    proc = run([str(BIN / "python"), "-c", script], root)
    assert proc.stdout.split() == ["0", "False", "False"], proc.stdout + proc.stderr
    return out.read_text().rstrip("\n")


def test_generate_is_reproducible_for_a_seed_and_torch_free(pipeline: Path) -> None:
    first, again = _generate(pipeline, seed=3), _generate(pipeline, seed=3)
    assert first == again
    assert first.startswith("The k") and len(first) == len("The k") + 40
    assert _generate(pipeline, seed=4) != first


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--prompt", "The k\u00e9ng", "--max-tokens", "5"], "outside the model's vocabulary"),
        (["--prompt", "The", "--max-tokens", "0"], "--max-tokens 0"),
        (["--prompt", "The", "--max-tokens", "-3"], "--max-tokens -3"),
        (["--prompt", "The", "--max-tokens", "5", "--temperature", "0"], "--temperature 0"),
        (["--prompt", "The", "--max-tokens", "5", "--top-k", "0"], "--top-k 0"),
    ],
)
def test_generate_refuses_bad_input_in_one_line(
    pipeline: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    message: str,
) -> None:
    monkeypatch.chdir(pipeline)
    assert cli(["generate", "--model", "models", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_generate_refuses_a_bundle_without_a_step_graph(
    pipeline: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copy = tmp_path / "models"
    shutil.copytree(pipeline / "models", copy)
    (copy / "model_step.onnx").unlink()
    record = copy / "bundle.sha256"
    kept = [line for line in record.read_text().splitlines(True) if "model_step" not in line]
    record.write_text("".join(kept))
    assert cli(["generate", "--model", str(copy), "--prompt", "The", "--max-tokens", "3"]) == 2
    err = capsys.readouterr().err
    assert "no step graph" in err and err.count("\n") == 1


def test_generate_refuses_a_model_of_another_task(
    pipeline: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from types import SimpleNamespace

    from seqops import serving

    other = SimpleNamespace(bundle=SimpleNamespace(data=SimpleNamespace(task="sequence_labeling")))
    monkeypatch.setattr(serving.Predictor, "load", classmethod(lambda cls, *a, **k: other))
    assert cli(["generate", "--model", "models", "--prompt", "The", "--max-tokens", "3"]) == 2
    err = capsys.readouterr().err
    assert "not a language model" in err and err.count("\n") == 1
