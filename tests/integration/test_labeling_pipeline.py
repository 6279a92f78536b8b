"""`data.task: sequence_labeling` through the real `dvc repro` (every stage, a tiny model, the
first sentences of WNUT-17), then `seqops predict` on a `.txt` and on an untagged CoNLL file.
The WNUT-17 figures of the full preset are in the commit that records them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from seqops.tasks.sequence_labeling.conll import read_conll
from tests.conftest import BIN, REPO, run, write_params

pytestmark = pytest.mark.slow

#: Sentences taken from the start of each WNUT-17 split: enough training sentences to hold
#: every tag that the first validation and test sentences use.
SIZES = {"train": 400, "dev": 60, "test": 60}


def write_subset(source: Path, target: Path) -> dict[str, list]:
    target.mkdir(parents=True)
    kept = {}
    for split, n in SIZES.items():
        sentences = read_conll(source / f"{split}.conll")[:n]
        blocks = ["\n".join(f"{w}\t{t}" for w, t in zip(*s, strict=True)) for s in sentences]
        (target / f"{split}.conll").write_text("\n\n".join(blocks) + "\n")
        kept[split] = sentences
    return kept


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, list]]:
    root = tmp_path_factory.mktemp("labeling")
    shutil.copytree(REPO / "src", root / "src", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "dvc.yaml", root / "dvc.yaml")
    kept = write_subset(REPO / "data" / "raw" / "wnut17", root / "data" / "raw" / "tiny")
    write_params(
        root / "params.yaml",
        {
            "data": {
                "task": "sequence_labeling",
                "dataset": None,
                "path": "data/raw/tiny/train.conll",
                "val_path": "data/raw/tiny/dev.conll",
                "test_path": "data/raw/tiny/test.conll",
                "labeling": {"max_word_length": 8},
            },
            "model": {"hidden_size": 8, "num_layers": 1, "embedding_dim": 8, "cell": "lstm"},
            "train": {"max_epochs": 2, "epoch_examples": 0, "lr": 0.01},
            "tune": {
                "n_trials": 1,
                "workers": 1,
                "max_epochs": 1,
                "metric": "val/token_accuracy",
                "space": {"train.lr": {"type": "float", "low": 0.005, "high": 0.02}},
            },
            "export": {"max_length": 64},
            "release": {"metric": "test/entity_f1", "min_metric": 0.0, "max_p95_ms": 1000.0,
                        "baseline_alpha": None},
        },
    )  # fmt: skip
    run(["git", "init", "-q"], root)
    run([str(BIN / "dvc"), "init", "-q"], root)
    run([str(BIN / "dvc"), "repro"], root)
    return root, kept


def _json(root: Path, name: str) -> dict:
    return json.loads((root / "reports" / name).read_text())


def test_every_stage_runs_for_tagging(pipeline: tuple[Path, dict[str, list]]) -> None:
    root, kept = pipeline
    data = _json(root, "data.json")
    assert (data["n_train"], data["n_val"], data["n_test"]) == (400, 60, 60)
    assert data["n_tokens"]["test"] == sum(len(s.tokens) for s in kept["test"])
    assert {"tag_counts", "entity_counts", "vocab_size", "test_unknown_token_rate"} <= set(data)
    metrics = _json(root, "metrics.json")
    keys = {"entity_f1", "entity_precision", "entity_recall", "token_accuracy"}
    assert keys <= set(metrics["test"]) and keys <= set(metrics["baseline"]["crf"])
    predictions = pd.read_csv(root / "reports" / "predictions.csv", keep_default_na=False)
    assert list(predictions.columns) == [
        "sentence", "token_index", "token", "gold", "model", "crf"
    ]  # fmt: skip
    assert predictions["token"].tolist() == [t for s in kept["test"] for t in s.tokens]
    assert predictions["gold"].tolist() == [t for s in kept["test"] for t in s.tags]
    plots = root / "reports" / "plots" / "evaluate"
    assert {"confusion.csv", "per_type_f1.csv", "per_type_f1.png"} <= {
        p.name for p in plots.iterdir()
    }
    export = _json(root, "export.json")
    assert export["dynamic_axes"]["tokens"] == {"0": "batch", "1": "time"}
    assert export["dynamic_axes"]["logits"] == {"0": "batch", "1": "time"}
    assert export["parity"]["passed"] and export["served"]["raw_sentence_tag_mismatches"] == 0
    assert export["int8"]["metric"] == "test/entity_f1"
    bundle = json.loads((root / "models" / "preprocessing.json").read_text())
    assert bundle["onnx"]["outputs"] == [
        "logits", "transitions", "start_transitions", "end_transitions"
    ]  # fmt: skip
    assert {"torch", "onnx_fp32"} <= set(_json(root, "latency.json"))
    release = _json(root, "release.json")
    assert release["passed"] and release["version"] == 1
    assert (root / "models" / "MODEL_CARD.md").read_text().count("entity_f1") >= 1


def test_predict_tags_every_token_of_txt_and_conll_requests(
    pipeline: tuple[Path, dict[str, list]],
) -> None:
    root, kept = pipeline
    sentences = [s.tokens for s in kept["test"][:5]]
    (root / "q.txt").write_text("".join(" ".join(s) + "\n" for s in sentences))
    (root / "q.conll").write_text("\n\n".join("\n".join(s) for s in sentences) + "\n")
    answers = []
    for name in ("q.txt", "q.conll"):
        out = root / f"{name}.csv"
        run([str(BIN / "seqops"), "predict", "--model", "models", "--input", name,
             "--output", str(out)], root)  # fmt: skip
        frame = pd.read_csv(out, keep_default_na=False)
        assert list(frame.columns) == ["id", "token_index", "token", "tag"]
        assert frame["token"].tolist() == [t for s in sentences for t in s]
        assert frame["id"].tolist() == [i for i, s in enumerate(sentences) for _ in s]
        assert frame["token_index"].tolist() == [t for s in sentences for t in range(len(s))]
        answers.append(frame)
    assert answers[0].equals(answers[1])
    # the tags the evaluated model gave these test sentences
    evaluated = pd.read_csv(root / "reports" / "predictions.csv", keep_default_na=False)
    first = evaluated[evaluated["sentence"] < len(sentences)]
    assert answers[0]["tag"].tolist() == first["model"].tolist()
