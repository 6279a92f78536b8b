"""MLflow tracking stays with the project: a relative SQLite store resolves to the project root
even inside DVC's temporary experiment workspaces, and runs a killed stage left RUNNING are
marked KILLED by the next stage that opens the store."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient

from seqops import tracking
from seqops.config import TrackingConfig


def test_a_relative_store_resolves_to_the_project_root_in_a_dvc_temp_workspace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    workspace = tmp_path / ".dvc" / "tmp" / "exps" / "tmpabc123"
    workspace.mkdir(parents=True)
    monkeypatch.chdir(workspace)
    assert tracking.project_root() == tmp_path.resolve()
    assert tracking.resolve_uri(TrackingConfig()) == f"sqlite:///{tmp_path.resolve() / 'mlflow.db'}"
    monkeypatch.chdir(tmp_path)
    assert tracking.project_root() == tmp_path.resolve()
    # An absolute store or a server is left alone.
    assert (
        tracking.resolve_uri(TrackingConfig(uri="sqlite:////data/m.db")) == "sqlite:////data/m.db"
    )
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    assert tracking.resolve_uri(TrackingConfig()) == "http://127.0.0.1:5000"


def test_a_run_left_running_by_a_killed_process_is_marked_killed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    script = (
        "import os, signal, mlflow\n"
        "from seqops import tracking\n"
        f"mlflow.set_tracking_uri({uri!r}); mlflow.set_experiment('seqops')\n"
        "run = mlflow.start_run(tags=tracking.owner_tags())\n"
        "print(run.info.run_id, flush=True)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.returncode == -9, proc.stderr
    orphan = proc.stdout.strip()
    client = MlflowClient(uri)
    assert client.get_run(orphan).info.status == "RUNNING"
    # A live run of this process (same host, pid alive) is left alone.
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("seqops")
    with mlflow.start_run(tags=tracking.owner_tags()) as live:
        tracking.use_tracking(TrackingConfig(uri=uri))
        assert client.get_run(live.info.run_id).info.status == "RUNNING"
    assert client.get_run(orphan).info.status == "KILLED"


def test_run_json_records_the_store_as_configured_and_a_copy_writes_into_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`models/run.json` keeps `sqlite:///mlflow.db` relative: a copy of the project adds
    results to its own store, never the original's; one without the run is one error."""
    import shutil

    from mlflow.tracking import _tracking_service, fluent

    from seqops.contracts import RunInfo
    from seqops.errors import DataError

    # MLflow's process-wide state (store, active experiment, the URI it exports to the
    # environment) comes back as it was after the test.
    monkeypatch.setattr(_tracking_service.utils, "_tracking_uri", None)
    monkeypatch.setattr(fluent, "_active_experiment_id", None)
    for variable in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME"):
        monkeypatch.setenv(variable, "")
        monkeypatch.delenv(variable)
    original = tmp_path / "original"
    original.mkdir()
    monkeypatch.chdir(original)
    cfg = TrackingConfig()
    store = tracking.configured_uri(cfg)  # as the train stage records it
    tracking.use_tracking(cfg)
    with mlflow.start_run() as run:
        mlflow.log_metric("train/loss", 1.0)
    run_file = Path("models") / "run.json"
    RunInfo(run_id=run.info.run_id, experiment_id=run.info.experiment_id, tracking_uri=store).write(
        run_file
    )
    assert RunInfo.read(run_file).tracking_uri == "sqlite:///mlflow.db"

    copy = tmp_path / "copy"
    shutil.copytree(original, copy)
    monkeypatch.chdir(copy)
    with tracking.resume_run(run_file):
        mlflow.log_metric("test/accuracy", 0.5)
    assert mlflow.get_tracking_uri() == f"sqlite:///{copy.resolve() / 'mlflow.db'}"
    in_copy = MlflowClient(f"sqlite:///{copy / 'mlflow.db'}").get_run(run.info.run_id)
    in_original = MlflowClient(f"sqlite:///{original / 'mlflow.db'}").get_run(run.info.run_id)
    assert in_copy.data.metrics == {"train/loss": 1.0, "test/accuracy": 0.5}
    assert in_original.data.metrics == {"train/loss": 1.0}

    bare = tmp_path / "bare"
    shutil.copytree(original, bare, ignore=shutil.ignore_patterns("mlflow.db"))
    monkeypatch.chdir(bare)
    message = r"run.json: run \w+ is not in the tracking store"
    with pytest.raises(DataError, match=message), tracking.resume_run(run_file):
        pass
