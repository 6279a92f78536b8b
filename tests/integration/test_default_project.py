"""The tiny default project through the real `dvc` CLI, built once per test process
(`built_project`) and restored before each test: stages chain, cache and re-run, MLflow
records the runs; `dvc push` / `dvc pull` through a remote (a local directory standing in for
S3 or GCS) gives a fresh clone that runs no stage and serves; export is all or nothing,
SIGKILLed at each step or failing its parity check, and the next `dvc repro` recovers."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from mlflow import MlflowClient

from seqops.onnx_export import EXPORT_STEPS, STAGING_PREFIX
from seqops.outputs import KILL_AT_ENV
from tests.conftest import BIN, built_repro_log, run
from tests.integration.test_serving_mlflow import raw_test_frame

pytestmark = pytest.mark.slow

DVC, SEQOPS = str(BIN / "dvc"), str(BIN / "seqops")
GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]


def _ran(output: str) -> set[str]:
    return {
        line.split("'")[1] for line in output.splitlines() if line.startswith("Running stage '")
    }


def test_repro_runs_every_stage_then_caches(built_project: Path) -> None:
    project = built_project  # after its first `dvc repro`
    assert {"prepare", "train", "evaluate"} <= _ran(built_repro_log(project))
    metrics = json.loads((project / "reports" / "metrics.json").read_text())
    assert 0.0 <= metrics["test"]["accuracy"] <= 1.0 and metrics["test"]["n"] == 370
    for out in (
        "models/model.ckpt",
        "models/run.json",
        "reports/train.json",
        "reports/plots/learning_curves.csv",
        "reports/plots/evaluate/confusion.csv",
    ):
        assert (project / out).is_file(), out

    again = run([DVC, "repro"], project)
    assert _ran(again.stdout) == set()
    # A changed param re-runs only what depends on it, and MLflow records both training runs
    # side by side: test_promotion's first repro after a param change checks both
    # (`assert_reruns_downstream_of_a_changed_param`), sparing this module a second pipeline.


def assert_reruns_downstream_of_a_changed_param(
    project: Path, output: str, param: str, was: str, now: str
) -> None:
    """What `dvc repro` printed (`output`) after `param` changed from `was` to `now` in the
    built project (tuning on or off): prepare stayed cached, train and evaluate ran again, and
    MLflow holds the first run and this one with the same param and metric names."""
    ran = _ran(output)
    assert "prepare" not in ran
    assert {"train", "evaluate"} <= ran
    _assert_mlflow_runs(project, param, was, now)


def _assert_mlflow_runs(project: Path, param: str, was: str, now: str) -> None:
    client = MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("seqops")
    runs = client.search_runs(
        [experiment.experiment_id], "tags.`seqops.stage` = 'train'", order_by=["start_time ASC"]
    )
    assert len(runs) == 2
    first, second = runs
    # Same param and metric names in both runs, so the UI compares them side by side.
    assert set(first.data.params) == set(second.data.params)
    assert {"model.hidden_size", "train.lr", "seed", "data.dataset"} <= set(first.data.params)
    assert (first.data.params[param], second.data.params[param]) == (was, now)
    for r in runs:
        assert {"val/loss", "val/accuracy", "train/loss", "test/accuracy", "test/ece"} <= set(
            r.data.metrics
        )
    # One point per epoch, step = epoch (export logs the kept epoch's again, on the model).
    for r in (first, second):
        steps = sorted({m.step for m in client.get_metric_history(r.info.run_id, "val/loss")})
        assert steps == list(range(len(steps))) and len(steps) >= (2 if r is first else 1)
    tags = second.data.tags
    assert len(tags["git.commit"]) == 40 and tags["git.dirty"] == "true"  # params.yaml was edited
    data_hash = json.loads((project / "reports" / "data.json").read_text())["data_hash"]
    assert tags["data.hash"] == data_hash
    assert "dvc.stage.prepare" in tags
    assert tags["mlflow.source.git.commit"] == tags["git.commit"]  # the UI's Version column
    artifacts = {a.path for a in client.list_artifacts(second.info.run_id, "plots")}
    assert {"plots/learning_curves.png", "plots/confusion_matrix.png", "plots/roc.png"} <= artifacts
    # The dataset is an input of the run, and the logged model carries the kept epoch's
    # validation scores and the test metrics (not the first epoch's).
    (dataset,) = client.get_run(second.info.run_id).inputs.dataset_inputs
    assert (
        dataset.dataset.digest == data_hash[:16] and dataset.dataset.name == "sktime:JapaneseVowels"
    )
    (model,) = client.search_logged_models(
        [experiment.experiment_id], f"source_run_id = '{second.info.run_id}'"
    )
    logged = {m.key: m.value for m in model.metrics}
    trained = json.loads((project / "reports" / "train.json").read_text())
    tested = json.loads((project / "reports" / "metrics.json").read_text())
    assert logged["val/loss"] == pytest.approx(trained["best"]["val/loss"])
    assert logged["test/accuracy"] == pytest.approx(tested["test"]["accuracy"])
    # Params that do not apply to the task stay out of the run.
    assert not [
        p for p in second.data.params if p.startswith(("data.forecast.", "data.tokenizer."))
    ]
    run_file = json.loads((project / "models" / "run.json").read_text())
    assert run_file["run_id"] == second.info.run_id


def test_push_then_pull_in_a_fresh_clone_runs_no_stage(built_project: Path, tmp_path: Path) -> None:
    project = built_project  # after its first `dvc repro`
    remote = tmp_path / "remote"
    run([DVC, "remote", "add", "-d", "storage", str(remote)], project)
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

    # Bytecode a stage leaves beside the sources it imported changes no dependency.
    cache = clone / "src" / "seqops" / "tasks" / "__pycache__"
    cache.mkdir()
    (cache / "base.cpython-311.pyc").write_bytes(b"bytecode")
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


def _request(project: Path) -> Path:
    """Three raw sequences with every feature the bundle needs."""
    features = json.loads((project / "models" / "preprocessing.json").read_text())["data"][
        "feature_names"
    ]
    rng, n = np.random.default_rng(0), len(features)
    rows = [
        {"id": f"s{i}", "time": t, **dict(zip(features, rng.normal(size=n), strict=True))}
        for i in range(3)
        for t in range(5 + i)
    ]  # fmt: skip
    path = project / "request.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def _predict(project: Path, request: Path) -> tuple[int, str, str]:
    done = run([SEQOPS, "predict", "--model", "models", "--input", str(request)], project, False)
    return done.returncode, done.stdout, done.stderr


def _assert_refused_or_previous(project: Path, request: Path, before: str, fault: str) -> None:
    """`seqops predict` refuses with one line (exit 2) or answers as the previous bundle did."""
    rc, out, err = _predict(project, request)
    if rc == 0:
        assert out == before, fault
    else:
        assert rc == 2 and out == "", (fault, rc, err)
        assert err.count("\n") == 1 and err.startswith("seqops predict: error: models/"), (
            fault,
            err,
        )


def _assert_recovers(project: Path, request: Path, before: str, fault: str) -> None:
    run([DVC, "repro", "export"], project)
    assert _predict(project, request) == (0, before, ""), fault
    assert not list((project / "models").glob(f"{STAGING_PREFIX}*")), fault


def test_a_killed_or_failed_export_never_leaves_a_servable_unchecked_bundle(
    built_project: Path,
) -> None:
    project = built_project  # after its first `dvc repro`
    request = _request(project)
    rc, before, _ = _predict(project, request)
    assert rc == 0 and len(pd.read_csv(request)["id"].unique()) == before.count("\n") - 1

    # Killed after each step in turn, each run starting from what the killed one left behind
    # (it must get past its own earlier steps to be killed at the next one).
    for step in EXPORT_STEPS:
        killed = run([SEQOPS, "export"], project, check=False, env={KILL_AT_ENV: step})
        assert killed.returncode == -9, (step, killed.stderr)
        _assert_refused_or_previous(project, request, before, step)

    # Then a parity failure (an impossible tolerance) on top: the stage fails, leaving no bundle
    # and no export report, and one clean run recovers from all of it.
    params = project / "params.yaml"
    good = params.read_text()
    tight = yaml.safe_load(good)
    tight["export"]["parity_atol"] = 1e-300
    tight["export"]["parity_rtol"] = 0.0
    params.write_text(yaml.safe_dump(tight, sort_keys=False))
    failed = run([DVC, "repro", "export"], project, check=False)
    assert failed.returncode != 0 and "ONNX Runtime disagrees with PyTorch" in failed.stderr
    _assert_refused_or_previous(project, request, before, "parity")
    assert not (project / "reports" / "export.json").exists()
    assert not list((project / "models").glob(f"{STAGING_PREFIX}*"))
    params.write_text(good)
    _assert_recovers(project, request, before, "parity")

    # Every output a stage wrote has the mode open() gives it (umask applied), none 0600.
    umask = os.umask(0)
    os.umask(umask)
    written = [
        p
        for folder in ("models", "reports")
        for p in (project / folder).rglob("*")
        if p.is_file() and p.name != ".gitignore"
    ]
    assert written
    modes = {p.name: oct(stat.S_IMODE(p.stat().st_mode)) for p in written}
    assert set(modes.values()) == {oct(0o666 & ~umask)}, modes


#: Another good model (a different ONNX file, better trained than the tiny default) for
#: promotion and rollback.
OTHER = {
    "model": {"hidden_size": 32},
    "train": {"max_epochs": 8, "patience": 8, "epoch_examples": 1024},
}


def _set(project: Path, **sections: dict) -> None:
    params = yaml.safe_load((project / "params.yaml").read_text())
    for name, values in sections.items():
        params[name].update(values)
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def _commit(project: Path, message: str) -> None:
    """Commit the pipeline's results: `seqops promote` promotes only the committed model."""
    run([*GIT, "add", "-A"], project)
    run([*GIT, "commit", "-qm", message], project)


def _client(project: Path) -> MlflowClient:
    return MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")


def _aliases(client: MlflowClient) -> dict[str, int]:
    model = client.get_registered_model("seqops")
    return {alias: int(version) for alias, version in model.aliases.items()}


def _release(project: Path) -> dict:
    return json.loads((project / "reports" / "release.json").read_text())
