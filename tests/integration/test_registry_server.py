"""Releases against a persistent MLflow tracking server, as the release workflow runs them.

A real `mlflow server` (PostgreSQL backend store, proxied local artifact root, 127.0.0.1) stands
in for the registry the workflow reads through `MLFLOW_TRACKING_URI`. Two `dvc repro` runs in a
fresh project against it, each released by the release workflow's own steps
(`tests/workflow.py`: register, check the reports, judge, draft, promote, publish, with a
stand-in `gh`): the first is published and promoted; the second's "no regression vs champion"
check is McNemar's test against the first, not "no champion yet", and when publishing it fails
the workflow rolls its promotion back and deletes the draft, so the registry and the GitHub
Releases still agree. Nothing lands in the project's own `mlflow.db`.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from mlflow import MlflowClient

from tests.conftest import BIN, REPO, _free_port, run, run_env, running_server
from tests.workflow import run_release

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

DVC, SEQOPS = str(BIN / "dvc"), str(BIN / "seqops")
GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]


@pytest.fixture
def tracking_server(
    postgres_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Path]]:
    """`mlflow server` on a free 127.0.0.1 port with the PostgreSQL backend store and a proxied
    local artifact root; yields its URL and that root, and kills the server's session after."""
    root = tmp_path_factory.mktemp("mlflow-server")
    artifacts = root / "artifacts"
    port = _free_port()
    env = run_env()
    env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"  # GenAI job workers: not needed here
    cmd = [str(BIN / "mlflow"), "server", "--backend-store-uri", postgres_url,
           "--artifacts-destination", str(artifacts), "--serve-artifacts",
           "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]  # fmt: skip
    with running_server(cmd, root, env, "/health", root / "server.log") as url:
        yield url, artifacts


def _set(project: Path, **sections: dict) -> None:
    params = yaml.safe_load((project / "params.yaml").read_text())
    for name, values in sections.items():
        params[name].update(values)
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def _release(project: Path) -> dict:
    return json.loads((project / "reports" / "release.json").read_text())


def _workflow_ready(project: Path) -> None:
    """What the workflow's checkout and `make install` give: `.ci/` and `.venv/bin/...`."""
    shutil.copytree(REPO / ".ci", project / ".ci")
    (project / ".venv").symlink_to(BIN.parent)


def _commit(project: Path, message: str) -> None:
    run([*GIT, "add", "-A"], project)
    run([*GIT, "commit", "-qm", message], project)


def _aliases(client: MlflowClient) -> dict[str, int]:
    return {a: int(v) for a, v in client.get_registered_model("seqops").aliases.items()}


def test_releases_through_the_workflow_on_the_tracking_server(
    project: Path, tracking_server: tuple[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> None:
    url, artifacts = tracking_server
    env = {"MLFLOW_TRACKING_URI": url}
    client = MlflowClient(tracking_uri=url)
    _workflow_ready(project)
    _set(project, tune={"enabled": False})

    run([DVC, "repro"], project, env=env)
    _commit(project, "first model")  # promote takes the committed model
    first = _release(project)
    assert first["version"] == 1 and first["passed"], first
    assert "no champion yet" in first["checks"]["no_regression_vs_champion"]["detail"]
    released = run_release(project, "v1", env, tmp_path_factory.mktemp("wf1"))
    assert not released.failed, "\n".join(released.output)
    assert released.outcomes["promote"] == "success"
    assert [c.split()[:3] for c in released.gh_calls] == [
        ["release", "create", "v1"], ["release", "upload", "v1"], ["release", "edit", "v1"]
    ]  # fmt: skip
    assert "--draft=false" in released.gh_calls[-1]
    assert _aliases(client) == {"champion": 1, "candidate": 1}
    assert "Status: **champion" in (project / "models" / "MODEL_CARD.md").read_text()
    _commit(project, "v1 promoted, with its card")

    # Another model (a different ONNX file), released into the same server's registry; its
    # GitHub Release fails to publish after the promotion, which the workflow rolls back,
    # deleting the draft.
    _set(project, model={"hidden_size": 9})
    run([DVC, "repro"], project, env=env)
    second = _release(project)
    assert second["version"] == 2 and second["champion"] == 1, second
    check = second["checks"]["no_regression_vs_champion"]
    assert isinstance(check["value"], float) and 0.0 <= check["value"] <= 1.0, check
    assert check["detail"].startswith("vs champion v1: McNemar exact"), check
    _commit(project, "second model")
    broken = run_release(
        project, "v2", env, tmp_path_factory.mktemp("wf2"), gh_fails="release edit"
    )
    assert broken.outcomes["promote"] == "success", "\n".join(broken.output)
    assert broken.outcomes["finish"] == "failure"
    rollback, delete = (k for k in broken.outcomes if k.startswith(("Roll back", "Delete")))
    assert broken.outcomes[rollback] == broken.outcomes[delete] == "success", broken.output
    assert broken.gh_calls[-1] == "release delete v2 --yes"
    assert _aliases(client) == {"champion": 1, "candidate": 2}
    assert client.get_model_version("seqops", "2").tags["rolled_back"] == "true"

    versions = client.search_model_versions("name = 'seqops'")
    assert sorted(int(v.version) for v in versions) == [1, 2]
    # Everything went to the server: its registry, runs and artifact root, not the project.
    run_info = json.loads((project / "models" / "run.json").read_text())
    assert client.get_run(run_info["run_id"]).data.params["model.hidden_size"] == "9"
    assert any(artifacts.rglob("model.onnx"))
    for local in ("mlflow.db", "mlruns", "mlartifacts"):
        assert not (project / local).exists(), local
