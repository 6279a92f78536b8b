"""Releases against a persistent MLflow tracking server, as the release workflow runs them.

A real `mlflow server` (PostgreSQL backend store, proxied local artifact root, 127.0.0.1) stands
in for the registry the workflow reads through `MLFLOW_TRACKING_URI`. Two `dvc repro` runs in a
fresh project against it: the second one's "no regression vs champion" check is McNemar's test
against the first (promoted) release, not "no champion yet", and nothing lands in the project's
own `mlflow.db`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from mlflow import MlflowClient

from tests.conftest import BIN, _free_port, run, run_env, running_server

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


def test_second_release_is_compared_with_the_champion_on_the_tracking_server(
    project: Path, tracking_server: tuple[str, Path]
) -> None:
    url, artifacts = tracking_server
    env = {"MLFLOW_TRACKING_URI": url}
    _set(project, tune={"enabled": False})

    run([DVC, "repro"], project, env=env)
    run([*GIT, "add", "-A"], project)
    run([*GIT, "commit", "-qm", "first model"], project)  # promote takes the committed model
    first = _release(project)
    assert first["version"] == 1 and first["passed"], first
    assert "no champion yet" in first["checks"]["no_regression_vs_champion"]["detail"]
    promoted = run([SEQOPS, "promote"], project, env=env)
    assert "v1 is now 'champion'" in promoted.stdout

    # Another model (a different ONNX file), released into the same server's registry.
    _set(project, model={"hidden_size": 9})
    run([DVC, "repro"], project, env=env)
    second = _release(project)
    assert second["version"] == 2 and second["champion"] == 1, second
    check = second["checks"]["no_regression_vs_champion"]
    assert isinstance(check["value"], float) and 0.0 <= check["value"] <= 1.0, check
    assert check["detail"].startswith("vs champion v1: McNemar exact"), check

    client = MlflowClient(tracking_uri=url)
    versions = client.search_model_versions("name = 'seqops'")
    assert sorted(int(v.version) for v in versions) == [1, 2]
    aliases = {a: int(v) for a, v in client.get_registered_model("seqops").aliases.items()}
    assert aliases == {"champion": 1, "candidate": 2}
    # Everything went to the server: its registry, runs and artifact root, not the project.
    run_info = json.loads((project / "models" / "run.json").read_text())
    assert client.get_run(run_info["run_id"]).data.params["model.hidden_size"] == "9"
    assert any(artifacts.rglob("model.onnx"))
    for local in ("mlflow.db", "mlruns", "mlartifacts"):
        assert not (project / local).exists(), local
