"""`dvc push` / `dvc pull` through a DVC remote (a local directory standing in for S3 or GCS):
a fresh clone pulls the pipeline's data and models, `dvc repro` runs no stage, and
`seqops predict` serves from the pulled `models/`."""

from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import BIN, run
from tests.integration.test_serving_mlflow import raw_test_frame

pytestmark = pytest.mark.slow

DVC = str(BIN / "dvc")
GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]


def test_push_then_pull_in_a_fresh_clone_runs_no_stage(project: Path, tmp_path: Path) -> None:
    remote = tmp_path / "remote"
    run([DVC, "remote", "add", "-d", "storage", str(remote)], project)
    run([DVC, "repro"], project)
    run([*GIT, "add", "-A"], project)
    run([*GIT, "commit", "-qm", "pipeline results"], project)
    pushed = run([DVC, "push"], project)
    assert "pushed" in pushed.stdout
    assert any(p.is_file() for p in (remote / "files").rglob("*"))

    clone = tmp_path / "clone"
    run(["git", "clone", "-q", str(project), str(clone)], tmp_path)
    assert not (clone / "models" / "model.onnx").exists()  # cached outputs are not in git
    run([DVC, "pull"], clone)
    for out in ("models/model.ckpt", "models/model.onnx", "data/processed"):
        assert (clone / out).exists(), out
    assert (clone / "models" / "model.onnx").read_bytes() == (
        project / "models" / "model.onnx"
    ).read_bytes()

    status = run([DVC, "status"], clone)
    assert "up to date" in status.stdout, status.stdout
    again = run([DVC, "repro"], clone)
    assert "Running stage" not in again.stdout, again.stdout

    raw_test_frame(clone, 5).to_csv(tmp_path / "in.csv", index=False)
    cmd = [str(BIN / "seqops"), "predict", "--model", "models", "--input", str(tmp_path / "in.csv")]
    predicted = run([*cmd, "--output", str(tmp_path / "out.csv")], clone)
    assert predicted.returncode == 0
    out = pd.read_csv(tmp_path / "out.csv", dtype={"id": str, "label": str})
    assert out["id"].tolist() == [f"t{i:03d}" for i in range(5)]
    assert out["label"].notna().all()
