"""Lightning DDP on two CPU processes (gloo), through `seqops train` as `dvc repro` runs it.

Rank 1 is a copy of the command Lightning launches; only rank 0 writes the checkpoint, the
reports and the MLflow run, and the result agrees with one process on the same global batch.
"""

import json
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import BIN, run, write_params

pytestmark = pytest.mark.slow

SEQOPS = str(BIN / "seqops")
#: Two processes see the same epochs in another order (DistributedSampler shuffles, and pads
#: the train and validation sets to a multiple of 2), so the weights differ a little: the
#: best validation loss may differ by this fraction of the one-process value, test accuracy
#: by this many points.
VAL_LOSS_RTOL = 0.10
TEST_ACCURACY_ATOL = 0.05

#: A model that learns something in a few epochs, so the comparison means something.
SMALL = {
    "model": {"hidden_size": 16},
    # No augmentation: each rank draws its own changes for its share of the examples, so the
    # draws cannot match one process's, and this compares the training itself.
    "train": {
        "max_epochs": 6, "patience": 6, "batch_size": 32, "augment_noise": 0, "augment_scale": 0
    },
    "tune": {"n_trials": 1, "max_epochs": 1},
}  # fmt: skip
DDP = {"train": {"devices": 2, "strategy": "ddp", "batch_size": 32}}


def _train_runs(project: Path) -> list:
    client = MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("seqops")
    return client.search_runs(
        [experiment.experiment_id], "tags.`seqops.stage` = 'train'", order_by=["start_time ASC"]
    )


def _reports(project: Path) -> dict[str, dict]:
    return {
        name: json.loads((project / "reports" / name).read_text())
        for name in ("train.json", "metrics.json")
    }


def test_ddp_two_cpu_processes_match_one_process(project: Path) -> None:
    params = project / "params.yaml"
    write_params(params, {**SMALL, "train": {**SMALL["train"], **DDP["train"]}})
    run([SEQOPS, "prepare"], project)
    tuned = run([SEQOPS, "tune"], project)
    # Trials are small and run side by side: the tuner trains each in one process.
    assert "each trial runs in one process on one device" in tuned.stdout
    assert "distributed_backend" not in tuned.stdout + tuned.stderr
    assert json.loads((project / "reports" / "tune.json").read_text())["complete"] == 1

    write_params(params, SMALL)
    run([SEQOPS, "train"], project)
    run([SEQOPS, "evaluate"], project)
    one = _reports(project)
    outputs_one = sorted(p.relative_to(project) for p in (project / "reports").rglob("*"))

    write_params(params, {**SMALL, "train": {**SMALL["train"], **DDP["train"]}})
    trained = run([SEQOPS, "train"], project)
    # Lightning's launcher started rank 1 and both joined one gloo process group.
    assert "distributed_backend=gloo" in trained.stdout + trained.stderr
    assert "All distributed processes registered. Starting with 2 processes" in (
        trained.stdout + trained.stderr
    )
    run([SEQOPS, "evaluate"], project)
    two = _reports(project)

    # The same files and report fields as one process (rank 1 wrote nothing of its own).
    assert sorted(p.relative_to(project) for p in (project / "reports").rglob("*")) == outputs_one
    assert set(two["train.json"]) == set(one["train.json"])
    assert (project / "models" / "model.ckpt").is_file()
    assert not list(project.glob("*.ckpt")) and not (project / "lightning_logs").exists()

    # One MLflow run per training, not one per rank.
    runs = _train_runs(project)
    assert len(runs) == 2
    assert json.loads((project / "models" / "run.json").read_text())["run_id"] == (
        runs[-1].info.run_id
    )
    assert runs[-1].data.params["train.devices"] == "2"
    assert runs[-1].data.metrics["test/accuracy"] == two["metrics.json"]["test"]["accuracy"]

    loss_one, loss_two = one["train.json"]["best_score"], two["train.json"]["best_score"]
    assert loss_two == pytest.approx(loss_one, rel=VAL_LOSS_RTOL)
    acc_one = one["metrics.json"]["test"]["accuracy"]
    acc_two = two["metrics.json"]["test"]["accuracy"]
    assert acc_two == pytest.approx(acc_one, abs=TEST_ACCURACY_ATOL)
    print(f"ddp: val/loss {loss_one:.4f} vs {loss_two:.4f}, test accuracy {acc_one} vs {acc_two}")


def test_ddp_needs_a_batch_the_devices_divide(project: Path) -> None:
    ddp = {"train": {**DDP["train"], "batch_size": 33}, "tune": {"enabled": False}}
    write_params(project / "params.yaml", ddp)
    run([SEQOPS, "prepare"], project)
    run([SEQOPS, "tune"], project)
    failed = run([SEQOPS, "train"], project, check=False)
    assert failed.returncode == 2
    assert failed.stderr.strip().splitlines()[-1] == (
        "seqops train: error: train.batch_size: 33 is the global batch: expected a multiple of "
        "the 2 devices"
    )
    assert not (project / "models" / "model.ckpt").exists()
    assert not (project / "reports" / "train.json").exists()
