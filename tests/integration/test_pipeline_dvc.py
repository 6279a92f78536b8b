"""The real `dvc` CLI on a tiny config: stages chain, cache and re-run; MLflow records the runs."""

import json
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

from tests.conftest import BIN, run

pytestmark = pytest.mark.slow

DVC = str(BIN / "dvc")


def _ran(output: str) -> set[str]:
    return {
        line.split("'")[1] for line in output.splitlines() if line.startswith("Running stage '")
    }


def test_repro_caches_and_reruns_only_downstream_of_a_changed_param(project: Path) -> None:
    first = run([DVC, "repro"], project)
    assert {"prepare", "train", "evaluate"} <= _ran(first.stdout)
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
