"""MLflow tells the story DVC tells, read back from the built tiny project's store
(`built_project`): the training run's headline metrics are the kept epoch's of
`reports/train.json`, beside the test metrics, and so are the logged model's, with the
dataset on it; pruned trials do not end FINISHED and say why; the run and the model card list
only the task's own params, and the card marks as tuned exactly the searched ones."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from mlflow import MlflowClient

from seqops.tasks import TASKS
from tests.conftest import BIN, run, write_params
from tests.integration.test_tune import TINY_TUNE

pytestmark = pytest.mark.slow

SEQOPS = str(BIN / "seqops")

#: Params that only other tasks read (text: tokenizer, embeddings, text files; forecasting:
#: its windows; sequence labeling: its vocabularies and CRF): never on a JapaneseVowels
#: classification run or card. Those classification reads too (the random-kernel path) are
#: its own.
OWN = TASKS["sequence_classification"].reads
OTHER_TASKS = tuple(p for task in TASKS.values() for p in task.reads if p not in OWN)


def _json(project: Path, name: str) -> dict[str, Any]:
    return json.loads((project / "reports" / name).read_text())


def _client(project: Path) -> MlflowClient:
    return MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")


def _train_run(project: Path, client: MlflowClient) -> Any:
    run_id = json.loads((project / "models" / "run.json").read_text())["run_id"]
    return client.get_run(run_id)


def test_the_training_run_headlines_the_kept_epoch_beside_the_test_metrics(
    built_project: Path,
) -> None:
    project = built_project
    client = _client(project)
    trained, tested = _json(project, "train.json"), _json(project, "metrics.json")
    kept = trained["best"]
    assert {"val/loss", "train/loss"} <= set(kept)
    assert kept["val/loss"] == pytest.approx(trained["best_score"])  # monitor: val/loss
    train_run = _train_run(project, client)
    headline = train_run.data.metrics  # each key's value at its latest step: the runs table
    for key, value in kept.items():
        assert headline[key] == pytest.approx(value), key
    assert headline["train/best_epoch"] == trained["best_epoch"]
    for key, value in tested["test"].items():
        if key not in ("n", "n_windows"):
            assert headline[f"test/{key}"] == pytest.approx(value), key

    # The per-epoch curve stays a curve (step = epoch), the kept value its last point.
    history = client.get_metric_history(train_run.info.run_id, "val/loss")
    per_step: dict[int, list[float]] = {}
    for point in history:
        per_step.setdefault(point.step, []).append(point.value)
    epochs = trained["epochs_run"]
    assert sorted(per_step) == list(range(epochs + 1))
    assert per_step[epochs] and all(v == pytest.approx(kept["val/loss"]) for v in per_step[epochs])
    assert pytest.approx(kept["val/loss"]) in per_step[trained["best_epoch"]]
    assert min(v for step, values in per_step.items() if step < epochs for v in values) == (
        pytest.approx(kept["val/loss"])
    )

    # The dataset is an input of the run: prepare's source and hash.
    data = _json(project, "data.json")
    (dataset,) = train_run.inputs.dataset_inputs
    assert dataset.dataset.digest == data["data_hash"][:16]
    assert dataset.dataset.name == data["source"]


def test_the_logged_model_carries_the_kept_epoch_the_test_metrics_and_the_dataset(
    built_project: Path,
) -> None:
    project = built_project
    client = _client(project)
    trained, tested = _json(project, "train.json"), _json(project, "metrics.json")
    data = _json(project, "data.json")
    train_run = _train_run(project, client)
    (model,) = client.search_logged_models(
        [train_run.info.experiment_id], f"source_run_id = '{train_run.info.run_id}'"
    )
    logged: dict[str, list[float]] = {}
    for metric in model.metrics:
        logged.setdefault(metric.key, []).append(metric.value)
    # Every value the model holds for a validation metric is the kept epoch's, no other.
    for key, value in trained["best"].items():
        if key.startswith("val/"):
            assert logged[key] and all(v == pytest.approx(value) for v in logged[key]), key
    for key, value in tested["test"].items():
        if key not in ("n", "n_windows"):
            assert all(v == pytest.approx(value) for v in logged[f"test/{key}"]), key
    # The dataset the model was trained and measured on appears on the model.
    datasets = {(m.dataset_name, m.dataset_digest) for m in model.metrics if m.dataset_name}
    assert (data["source"], data["data_hash"][:16]) in datasets


def test_pruned_trials_end_killed_and_say_at_which_epoch_and_why(built_project: Path) -> None:
    project = built_project
    report = _json(project, "tune.json")
    if not report["pruned"]:
        # The tiny build's study stops trials before the pruner's warm-up; a study that
        # prunes runs on the same prepared data.
        write_params(project / "params.yaml", {"tune": TINY_TUNE})
        run([SEQOPS, "tune"], project)
        report = _json(project, "tune.json")
    assert report["pruned"] > 0 and report["complete"] > 0
    client = _client(project)
    parent = client.get_run(report["parent_run_id"])
    assert parent.info.status == "FINISHED"
    assert parent.data.metrics["tune/pruned"] == report["pruned"]
    assert parent.data.metrics["tune/complete"] == report["complete"]
    trials = client.search_runs(
        [parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'"
    )
    assert len(trials) == report["n_trials"]
    states = [t.data.tags["optuna.trial.state"] for t in trials]
    assert states.count("PRUNED") == report["pruned"]
    assert states.count("COMPLETE") == report["complete"]
    metric = report["metric"]
    for trial in trials:
        tags = trial.data.tags
        if tags["optuna.trial.state"] == "COMPLETE":
            assert trial.info.status == "FINISHED"
            assert "seqops.pruned_at_epoch" not in tags
            continue
        assert trial.info.status == "KILLED"
        epoch = int(tags["seqops.pruned_at_epoch"])
        curve = client.get_metric_history(trial.info.run_id, metric)
        # The pruning epoch is the curve's last: the value the pruner judged.
        assert max(p.step for p in curve) == epoch
        value = next(p.value for p in curve if p.step == epoch)
        reason = tags["seqops.pruned_reason"]
        assert reason.startswith(f"median pruner: {metric} {value:.4g} at epoch {epoch} ")
        assert "median" in reason.removeprefix("median pruner")


def _card_params(card: str) -> dict[str, bool]:
    """The model card's params table: name -> marked tuned."""
    section = card.split("## Params", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([^`]+)`( \*)? \|", section, flags=re.MULTILINE)
    return {name: bool(mark) for name, mark in rows}


def test_run_and_card_list_the_tasks_params_and_mark_only_the_searched_ones(
    built_project: Path,
) -> None:
    project = built_project
    params = set(_train_run(project, _client(project)).data.params)
    assert {"seed", "data.task", "model.hidden_size", "train.lr", *OWN} <= params
    assert not [p for p in params if p.startswith(OTHER_TASKS)]

    card = _card_params((project / "models" / "MODEL_CARD.md").read_text())
    assert set(card) == params  # the same params, the same story
    space = yaml.safe_load((project / "params.yaml").read_text())["tune"]["space"]
    assert {name for name, tuned in card.items() if tuned} == set(space)
