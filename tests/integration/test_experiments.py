"""DVC experiments as users run them: each `dvc exp run` keeps its results and its MLflow run,
`dvc metrics diff` compares two of them, and no experiment moves `champion`.

Follows DVC's own convention: `dvc.lock` and the small `cache: false` reports are committed,
so an experiment commit holds its metrics (`reports/metrics/<stage>.json`, numbers only).
"""

import json
from pathlib import Path

import pytest
import yaml
from mlflow import MlflowClient

from tests.conftest import BIN, run

pytestmark = pytest.mark.slow

DVC = str(BIN / "dvc")
GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]


def _commit(project: Path, message: str) -> None:
    run([*GIT, "add", "-A"], project)
    run([*GIT, "commit", "-qm", message], project)


def _exp(shown: list[dict], name: str) -> dict:
    """Experiment `name`'s revision in `dvc exp show --json`."""
    for baseline in shown:
        for experiment in baseline.get("experiments") or []:
            if experiment["name"] == name:
                return dict(experiment["revs"][0])
    raise AssertionError(f"experiment {name!r} not in dvc exp show: {json.dumps(shown)[:2000]}")


def _exp_metrics(shown: list[dict], name: str) -> dict:
    """The metrics files of experiment `name` in `dvc exp show --json`."""
    metrics = _exp(shown, name)["data"]["metrics"] or {}
    return {path: found["data"] for path, found in metrics.items() if "data" in found}


def test_experiments_carry_their_metrics_and_never_move_champion(project: Path) -> None:
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["tune"]["enabled"] = False  # seconds per experiment: the search is tested elsewhere
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    _commit(project, "tuning off")

    # train.weight_decay is outside the tuning space, so it reaches the trained model. The
    # second experiment runs in a temporary copy (.dvc/tmp/exps/...), as --queue does.
    run([DVC, "exp", "run", "-n", "decay-a", "-S", "train.weight_decay=0.0"], project)
    run([DVC, "exp", "run", "--temp", "-n", "decay-b", "-S", "train.weight_decay=0.5"], project)
    shown = json.loads(run([DVC, "exp", "show", "--json"], project).stdout)
    for name in ("decay-a", "decay-b"):
        metrics = _exp_metrics(shown, name)
        test = metrics["reports/metrics/evaluate.json"]["test"]
        assert 0.0 <= test["accuracy"] <= 1.0 and test["n"] == 370
        assert metrics["reports/metrics/release.json"]["passed"] in (0, 1)
    # The experiment commits hold the reports: the numbers-only metrics and the whole ones.
    commit = _exp(shown, "decay-a")["rev"]
    tracked = run(["git", "ls-tree", "-r", "--name-only", commit, "reports"], project).stdout
    assert "reports/metrics/evaluate.json" in tracked and "reports/metrics.json" in tracked
    numbers = json.loads((project / "reports/metrics/evaluate.json").read_text())
    assert all(isinstance(v, int | float) for v in numbers["test"].values())

    diff = json.loads(run([DVC, "metrics", "diff", "decay-a", "decay-b", "--json"], project).stdout)
    changed = diff["reports/metrics/train.json"]
    assert changed["best_score"]["old"] != changed["best_score"]["new"], diff

    client = MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
    assert "champion" not in client.get_registered_model("seqops").aliases
    runs = client.search_runs(
        [client.get_experiment_by_name("seqops").experiment_id], "tags.`seqops.stage` = 'train'"
    )
    by_name = {r.info.run_name: r for r in runs}
    assert {"decay-a", "decay-b"} <= set(by_name)  # MLflow runs named after the experiments
    # The temporary workspace recorded into the project's mlflow.db, not one of its own.
    temp = by_name["decay-b"]
    assert temp.info.status == "FINISHED" and temp.data.tags["mlflow.source.git.commit"]
    assert not list((project / ".dvc" / "tmp").rglob("mlflow.db"))
