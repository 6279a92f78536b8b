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
from seqops.promotion import PROMOTION_STEPS
from seqops.registry import PROMOTION_TAG
from tests.conftest import BIN, built_repro_log, run
from tests.integration.test_serving_mlflow import raw_test_frame

pytestmark = pytest.mark.slow

DVC, SEQOPS = str(BIN / "dvc"), str(BIN / "seqops")
GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]


def _ran(output: str) -> set[str]:
    return {
        line.split("'")[1] for line in output.splitlines() if line.startswith("Running stage '")
    }


def test_repro_caches_and_reruns_only_downstream_of_a_changed_param(built_project: Path) -> None:
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

    params = yaml.safe_load((project / "params.yaml").read_text())
    params["train"]["weight_decay"] = 0.01  # not in tune.space, so it reaches train as set
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    third = run([DVC, "repro"], project)
    ran = _ran(third.stdout)
    assert "prepare" not in ran
    assert {"train", "evaluate"} <= ran

    _assert_mlflow_runs(project)


def _assert_mlflow_runs(project: Path) -> None:
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
    assert first.data.params["train.weight_decay"] == "0.0001"
    assert second.data.params["train.weight_decay"] == "0.01"
    for r in runs:
        assert {"val/loss", "val/accuracy", "train/loss", "test/accuracy", "test/ece"} <= set(
            r.data.metrics
        )
    history = client.get_metric_history(second.info.run_id, "val/loss")
    # One point per epoch, step = epoch (export logs the kept epoch's again, on the model).
    steps = sorted({m.step for m in history})
    assert steps == list(range(len(steps))) and len(steps) >= 2
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

    for step in EXPORT_STEPS:
        killed = run([SEQOPS, "export"], project, check=False, env={KILL_AT_ENV: step})
        assert killed.returncode == -9, (step, killed.stderr)
        _assert_refused_or_previous(project, request, before, step)
        _assert_recovers(project, request, before, step)

    # A parity failure (an impossible tolerance): the stage fails, leaving no bundle and no
    # export report, and recovers once the tolerance is back.
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


def _assert_the_baseline_won(project: Path) -> None:
    """One epoch of a tiny LSTM against MiniRocket on the same JapaneseVowels split: the
    baseline is in every report, and the gate refuses the model saying the baseline won."""
    metrics = json.loads((project / "reports" / "metrics.json").read_text())
    baseline = metrics["baseline"]["minirocket"]
    assert baseline["accuracy"] > 0.9 > metrics["test"]["accuracy"]
    assert metrics["skill"]["accuracy_minus_minirocket"] < 0
    predictions = (project / "reports" / "predictions.csv").read_text().splitlines()
    assert predictions[0].endswith(",minirocket") and len(predictions) == 371

    release = _release(project)
    check = release["checks"]["not_worse_than_baseline"]
    assert not release["passed"] and not check["passed"] and check["value"] < 0.05
    assert "the baseline won: minirocket" in check["detail"]
    card = (project / "models" / "MODEL_CARD.md").read_text()
    assert "## Against the classical baseline" in card and "| minirocket |" in card
    assert "the baseline won" in card
    run_id = json.loads((project / "models" / "run.json").read_text())["run_id"]
    logged = _client(project).get_run(run_id).data.metrics
    assert logged["baseline/minirocket/accuracy"] == pytest.approx(baseline["accuracy"])

    # dvc exp show reads the evaluate stage's numbers, baseline included.
    shown = json.loads(run([DVC, "exp", "show", "--json"], project).stdout)
    workspace = shown[0]["data"]["metrics"]["reports/metrics/evaluate.json"]["data"]
    assert workspace["baseline"]["minirocket"]["accuracy"] == pytest.approx(baseline["accuracy"])


@pytest.mark.slow
def test_release_records_promote_moves_and_rollback_restores(built_project: Path) -> None:
    # The tiny default model (about 0.94 on the test split) was released by its first repro.
    project = built_project
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

    _commit(project, "the tiny default model")
    promoted = run([SEQOPS, "promote"], project)
    assert "v1 is now 'champion'" in promoted.stdout
    assert _aliases(client) == {"candidate": 1, "champion": 1}
    # The same ONNX file again: no second version, and promoting it again changes nothing.
    run([SEQOPS, "release"], project)
    assert len(client.search_model_versions("name = 'seqops'")) == 1
    assert "already is 'champion'" in run([SEQOPS, "promote"], project).stdout

    # Clearly worse: one epoch, judged against the classical baseline as well. dvc repro
    # succeeds (the experiment is kept) with the verdict recorded; promotion is refused with
    # the gate's own exit code and the champion stays v1.
    _set(
        project, train={"max_epochs": 1}, tune={"enabled": False}, release={"baseline_alpha": 0.05}
    )
    run([DVC, "repro"], project)
    worse = _release(project)
    assert not worse["passed"] and worse["version"] == 2
    regression = worse["checks"]["no_regression_vs_champion"]
    assert not regression["passed"] and regression["value"] < 0.05
    _assert_the_baseline_won(project)
    _commit(project, "one epoch")
    refused = run([SEQOPS, "promote"], project, check=False)
    assert refused.returncode == 3 and "gate failed" in refused.stderr
    assert "not_worse_than_baseline" in refused.stderr
    assert _aliases(client) == {"candidate": 2, "champion": 1}

    # Another good model becomes champion, v1 previous-champion.
    _set(project, model=OTHER["model"], train=OTHER["train"], release={"baseline_alpha": None})
    run([DVC, "repro"], project)
    assert _release(project)["passed"] and _release(project)["version"] == 3
    _commit(project, "another good model")
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

    # Promoting the rolled-back v3 again (as asked), SIGKILLed after each step: the registry
    # holds either the old champion or the new one with its records, and the next command
    # completes the promotion.
    again = [SEQOPS, "promote", "--allow-rolled-back"]
    for step in PROMOTION_STEPS:
        killed = run(again, project, check=False, env={"SEQOPS_KILL_AT": step})
        assert killed.returncode == -9, (step, killed.stderr)
        aliases = _aliases(client)
        assert aliases["champion"] in (1, 3), step
        if aliases["champion"] == 3:
            v3 = client.get_model_version("seqops", "3")
            assert v3.tags["promoted"] == "true"
            assert "MODEL_CARD.md" in {a.path for a in client.list_artifacts(v3.run_id)}, step
        run(again, project)
        assert _aliases(client) == {"candidate": 3, "champion": 3, "previous-champion": 1}
        assert PROMOTION_TAG not in client.get_registered_model("seqops").tags
        run([SEQOPS, "release", "--rollback"], project)
        assert _aliases(client) == {"candidate": 3, "champion": 1}

    # Lineage: the ONNX file in models/ traces back to v3's run, commit and data.
    traced = json.loads(run([SEQOPS, "lineage", "models/model.onnx"], project).stdout)
    assert traced["verified"] and traced["version"] == 3
    data = json.loads((project / "reports/data.json").read_text())
    assert traced["data_hash"] == data["data_hash"]
    assert traced["params"]["model.hidden_size"] == "32"
    (project / "tampered.onnx").write_bytes((project / "models/model.onnx").read_bytes() + b"x")
    bad = run([SEQOPS, "lineage", "tampered.onnx"], project, check=False)
    assert bad.returncode == 2 and "matches no registered version" in bad.stderr
