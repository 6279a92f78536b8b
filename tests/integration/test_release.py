"""The release gate against the real MLflow registry, through the real `dvc` pipeline.

A first release becomes champion; a clearly worse retrain (one epoch) fails the gate, makes
`dvc repro` fail and leaves the champion alone; a good retrain becomes champion with the old
one as previous-champion; rollback restores it; `seqops lineage` traces the released file.
"""

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from mlflow import MlflowClient

from seqops.tasks.classification import mcnemar_regression
from tests.conftest import BIN, run

DVC, SEQOPS = str(BIN / "dvc"), str(BIN / "seqops")

GOOD = {"model": {"hidden_size": 16}, "train": {"max_epochs": 12, "patience": 12}}


def _set(project: Path, **sections: dict) -> None:
    params = yaml.safe_load((project / "params.yaml").read_text())
    for name, values in sections.items():
        params[name].update(values)
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def _aliases(client: MlflowClient) -> dict[str, int]:
    model = client.get_registered_model("seqops")
    return {alias: int(version) for alias, version in model.aliases.items()}


@pytest.mark.slow
def test_gate_promotes_refuses_a_regression_and_rolls_back(project: Path) -> None:
    _set(
        project,
        model=GOOD["model"],
        train=GOOD["train"],
        tune={"enabled": False},
        release={"min_metric": 0.5},
    )
    run([DVC, "repro"], project)
    first = json.loads((project / "reports" / "release.json").read_text())
    assert first["passed"] and first["version"] == 1
    assert "no champion yet" in first["checks"]["no_regression_vs_champion"]["detail"]
    client = MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
    assert _aliases(client) == {"candidate": 1, "champion": 1}
    card = (project / "models" / "MODEL_CARD.md").read_text()
    for section in (
        "## Data",
        "## Params",
        "## Tuning",
        "## Test metrics (95 % confidence",
        "## ONNX export and parity",
        "## int8",
        "## Latency",
        "## Release gate",
        "## Intended use and limits",
        "## Lineage",
    ):
        assert section in card, section

    # Clearly worse: one epoch. The gate fails, dvc repro fails, the champion stays v1.
    _set(project, train={"max_epochs": 1})
    proc = run([DVC, "repro"], project, check=False)
    assert proc.returncode != 0
    assert "gate failed" in proc.stderr + proc.stdout
    worse = json.loads((project / "reports" / "release.json").read_text())
    assert not worse["passed"] and worse["version"] == 2
    regression = worse["checks"]["no_regression_vs_champion"]
    assert not regression["passed"] and regression["value"] < 0.05
    assert _aliases(client) == {"candidate": 2, "champion": 1}

    # Back to the good params: v3 reproduces v1 exactly, so it passes and becomes champion.
    _set(project, train=GOOD["train"])
    run([DVC, "repro"], project)
    assert _aliases(client) == {"candidate": 3, "champion": 3, "previous-champion": 1}

    run([SEQOPS, "release", "--rollback"], project)
    assert _aliases(client)["champion"] == 1
    assert "previous-champion" not in _aliases(client)
    assert client.get_model_version("seqops", "3").tags["rolled_back"] == "true"
    again = run([SEQOPS, "release", "--rollback"], project, check=False)
    assert again.returncode == 2 and "no 'previous-champion' alias" in again.stderr

    # Lineage: the released ONNX file traces back to v3's run, commit and data.
    traced = json.loads(run([SEQOPS, "lineage", "models/model.onnx"], project).stdout)
    assert traced["verified"] and traced["version"] == 3
    assert (
        traced["data_hash"] == json.loads((project / "reports/data.json").read_text())["data_hash"]
    )
    assert traced["params"]["train.max_epochs"] == "12"
    (project / "tampered.onnx").write_bytes((project / "models/model.onnx").read_bytes() + b"x")
    bad = run([SEQOPS, "lineage", "tampered.onnx"], project, check=False)
    assert bad.returncode == 2 and "matches no registered version" in bad.stderr


def test_mcnemar_flags_only_a_significant_loss() -> None:
    truth = np.ones(200, dtype=bool)
    champion = truth.copy()
    champion[:10] = False  # champion: 190/200
    worse = truth.copy()
    worse[:60] = False  # candidate: 140/200, loses 50 the champion had
    assert not mcnemar_regression(worse, champion, 0.05).passed
    slightly = truth.copy()
    slightly[:12] = False  # 188/200: within noise
    assert mcnemar_regression(slightly, champion, 0.05).passed
    better = truth.copy()  # significantly better is no regression
    assert mcnemar_regression(better, champion, 0.05).passed
