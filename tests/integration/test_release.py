"""Release and promotion against the real MLflow registry, through the real `dvc` pipeline.

The release stage records the gate's verdict and never moves `champion`; `seqops promote` does,
only for a candidate that passed (exit 3 otherwise). A rerun on the same ONNX file reuses its
registry version; rollback goes to a genuinely different model; `seqops lineage` traces the
released file. A promotion SIGKILLed after each of its steps leaves either the old champion or
the new one with its records, and the next command completes it.
"""

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from mlflow import MlflowClient

from seqops.registry import PROMOTION_STEPS, PROMOTION_TAG
from seqops.tasks.classification import mcnemar_regression
from tests.conftest import BIN, run

DVC, SEQOPS = str(BIN / "dvc"), str(BIN / "seqops")

GOOD = {"model": {"hidden_size": 16}, "train": {"max_epochs": 12, "patience": 12}}
#: Another good model (a different ONNX file) for promotion and rollback.
OTHER = {"model": {"hidden_size": 17}}


def _set(project: Path, **sections: dict) -> None:
    params = yaml.safe_load((project / "params.yaml").read_text())
    for name, values in sections.items():
        params[name].update(values)
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def _client(project: Path) -> MlflowClient:
    return MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")


def _aliases(client: MlflowClient) -> dict[str, int]:
    model = client.get_registered_model("seqops")
    return {alias: int(version) for alias, version in model.aliases.items()}


def _release(project: Path) -> dict:
    return json.loads((project / "reports" / "release.json").read_text())


def _good_project(project: Path) -> None:
    _set(
        project,
        model=GOOD["model"],
        train=GOOD["train"],
        tune={"enabled": False},
        release={"min_metric": 0.5},
    )


@pytest.mark.slow
def test_release_records_promote_moves_and_rollback_restores(project: Path) -> None:
    _good_project(project)
    run([DVC, "repro"], project)
    first = _release(project)
    assert first["passed"] and first["version"] == 1
    assert "no champion yet" in first["checks"]["no_regression_vs_champion"]["detail"]
    client = _client(project)
    assert _aliases(client) == {"candidate": 1}  # the release stage never moves champion
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
    assert "max \\|Δoutput\\|" in card  # a `|` inside a cell would break the gate table

    promoted = run([SEQOPS, "promote"], project)
    assert "v1 is now 'champion'" in promoted.stdout
    assert _aliases(client) == {"candidate": 1, "champion": 1}
    # The same ONNX file again: no second version, and promoting it again changes nothing.
    run([SEQOPS, "release"], project)
    assert len(client.search_model_versions("name = 'seqops'")) == 1
    assert "already is 'champion'" in run([SEQOPS, "promote"], project).stdout

    # Clearly worse: one epoch. dvc repro succeeds (the experiment is kept) with the verdict
    # recorded; promotion is refused with the gate's own exit code and the champion stays v1.
    _set(project, train={"max_epochs": 1})
    run([DVC, "repro"], project)
    worse = _release(project)
    assert not worse["passed"] and worse["version"] == 2
    regression = worse["checks"]["no_regression_vs_champion"]
    assert not regression["passed"] and regression["value"] < 0.05
    refused = run([SEQOPS, "promote"], project, check=False)
    assert refused.returncode == 3 and "gate failed" in refused.stderr
    assert _aliases(client) == {"candidate": 2, "champion": 1}

    # Another good model becomes champion, v1 previous-champion.
    _set(project, model=OTHER["model"], train=GOOD["train"])
    run([DVC, "repro"], project)
    assert _release(project)["passed"] and _release(project)["version"] == 3
    run([SEQOPS, "promote"], project)
    assert _aliases(client) == {"candidate": 3, "champion": 3, "previous-champion": 1}

    run([SEQOPS, "release", "--rollback"], project)
    assert _aliases(client)["champion"] == 1
    assert "previous-champion" not in _aliases(client)
    v1, v3 = (client.get_model_version("seqops", v) for v in ("1", "3"))
    assert v1.tags["onnx.sha256"] != v3.tags["onnx.sha256"]  # a genuinely different model
    assert v3.tags["rolled_back"] == "true"
    again = run([SEQOPS, "release", "--rollback"], project, check=False)
    assert again.returncode == 2 and "no 'previous-champion' alias" in again.stderr

    # Promoting v3 again, SIGKILLed after each step: the registry holds either the old
    # champion or the new one with its records, and the next command completes the promotion.
    for step in PROMOTION_STEPS:
        killed = run([SEQOPS, "promote"], project, check=False, env={"SEQOPS_KILL_AT": step})
        assert killed.returncode == -9, (step, killed.stderr)
        aliases = _aliases(client)
        assert aliases["champion"] in (1, 3), step
        if aliases["champion"] == 3:
            v3 = client.get_model_version("seqops", "3")
            assert v3.tags["promoted"] == "true"
            assert "MODEL_CARD.md" in {a.path for a in client.list_artifacts(v3.run_id)}, step
        run([SEQOPS, "promote"], project)
        assert _aliases(client) == {"candidate": 3, "champion": 3, "previous-champion": 1}
        assert PROMOTION_TAG not in client.get_registered_model("seqops").tags
        run([SEQOPS, "release", "--rollback"], project)
        assert _aliases(client) == {"candidate": 3, "champion": 1}

    # Lineage: the ONNX file in models/ traces back to v3's run, commit and data.
    traced = json.loads(run([SEQOPS, "lineage", "models/model.onnx"], project).stdout)
    assert traced["verified"] and traced["version"] == 3
    data = json.loads((project / "reports/data.json").read_text())
    assert traced["data_hash"] == data["data_hash"]
    assert traced["params"]["model.hidden_size"] == "17"
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
