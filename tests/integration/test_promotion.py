"""`seqops promote` decides at promotion time, through the real CLI and MLflow sqlite registry.

On the tiny default project (`built_project`, one `dvc repro` in): the release stage records
its verdict without moving `champion`, a changed param re-runs only the stages after it with
both MLflow training runs comparable, promotion moves `champion` (refusing a model that failed
the gate), rollback restores the previous champion, and a promotion SIGKILLed after any step is
completed by the next command; an older experiment
applied and committed after a better champion exists is judged again against today's champion
and refused; a rolled-back version comes back only when asked; a release-only experiment on
the champion's own ONNX file changes none of its tags, training-run metrics or aliases and
gives a card that agrees with the registry; a workspace model or report that is not the
committed one, or a registry copy that is not the recorded file, is refused with its own
exit status.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from mlflow import MlflowClient

from seqops.promotion import PROMOTION_STEPS
from seqops.registry import PROMOTION_TAG
from tests.conftest import run
from tests.integration.test_default_project import (
    DVC,
    OTHER,
    SEQOPS,
    _aliases,
    _client,
    _commit,
    _release,
    _set,
    assert_reruns_downstream_of_a_changed_param,
)

pytestmark = pytest.mark.slow


def _promote(project: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    return run([SEQOPS, "promote", *flags], project, check=False)


def _assert_refused(done: subprocess.CompletedProcess[str], code: int, *needles: str) -> str:
    """Exit `code`, nothing on stdout, and one line on stderr naming the reason."""
    assert done.returncode == code, (done.returncode, done.stdout, done.stderr)
    assert done.stdout == "", done.stdout
    assert done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith("seqops promote: error: "), done.stderr
    for needle in needles:
        assert needle in done.stderr, (needle, done.stderr)
    return done.stderr


def _gate_runs(client: MlflowClient, version: int, by: str) -> list:
    experiment = client.get_experiment_by_name("seqops")
    query = (
        f"tags.`seqops.stage` = 'gate' and tags.`seqops.gate.version` = '{version}' "
        f"and tags.`seqops.gate.by` = '{by}'"
    )
    return client.search_runs([experiment.experiment_id], query, order_by=["start_time ASC"])


def _history(client: MlflowClient, run_id: str, keys: dict[str, float]) -> dict[str, list]:
    """Every logged value of each metric of a run, with its step and time."""
    return {
        k: [(m.value, m.step, m.timestamp) for m in client.get_metric_history(run_id, k)]
        for k in keys
    }


def _card(project: Path) -> str:
    return (project / "models" / "MODEL_CARD.md").read_text()


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
    # An older, worse experiment (one epoch), released while there is no champion: it passed.
    older = ["-S", "train.max_epochs=1", "-S", "tune.enabled=false"]
    ran = run([DVC, "exp", "run", "--temp", "-n", "older", *older], project).stdout
    (verdict,) = _gate_runs(client, 2, "release")
    assert verdict.data.tags["seqops.gate.champion"] == "none"
    assert verdict.data.tags["seqops.gate.passed"] == "true"

    promoted = run([SEQOPS, "promote"], project)
    assert "v1 is now 'champion'" in promoted.stdout
    assert _aliases(client) == {"candidate": 2, "champion": 1}
    # The same ONNX file again: no new version, and promoting it again changes nothing.
    run([SEQOPS, "release"], project)
    assert len(client.search_model_versions("name = 'seqops'")) == 2
    assert "already is 'champion'" in run([SEQOPS, "promote"], project).stdout

    # The older experiment applied and committed now: its own verdict still says passed
    # (against no champion); the promotion judges it against v1 and refuses it.
    run([DVC, "exp", "apply", "older"], project)
    assert_reruns_downstream_of_a_changed_param(project, ran, "train.max_epochs", "3", "1")
    _commit(project, "the older experiment")
    assert _release(project)["version"] == 2 and _release(project)["passed"]
    assert _release(project).get("champion") is None  # judged when there was none
    _assert_refused(
        _promote(project), 3, "gate failed against champion v1", "no_regression_vs_champion"
    )
    assert _aliases(client) == {"candidate": 2, "champion": 1}
    # The refusal is a record of its own; the earlier verdict is still there, unchanged.
    (refusal,) = _gate_runs(client, 2, "promote")
    assert refusal.data.tags["seqops.gate.champion"] == "1"
    assert refusal.data.tags["seqops.gate.passed"] == "false"
    assert refusal.data.metrics["release/passed"] == 0.0
    v2 = client.get_model_version("seqops", "2")
    verdicts = {k.split(".")[1]: v.split()[0] for k, v in v2.tags.items() if k.startswith("gate.")}
    assert verdicts == {"vs_none": "passed", "vs_1": "failed"}
    assert "promoted" not in v2.tags
    assert _gate_runs(client, 2, "release")[0].data.tags["seqops.gate.passed"] == "true"

    # The same one-epoch model judged against the classical baseline as well (only release
    # runs again): dvc repro succeeds (the experiment is kept) with the verdict recorded;
    # promotion is refused with the gate's own exit code and the champion stays v1.
    _set(project, release={"baseline_alpha": 0.05})
    rerun = run([DVC, "repro"], project)
    assert "Running stage 'release'" in rerun.stdout and "Running stage 'train'" not in rerun.stdout
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
    assert "Status: **champion, promoted under the verdict below" in _card(project)

    run([SEQOPS, "release", "--rollback"], project)
    assert _aliases(client)["champion"] == 1
    assert "previous-champion" not in _aliases(client)
    v1, v3 = (client.get_model_version("seqops", v) for v in ("1", "3"))
    assert v1.tags["onnx.sha256"] != v3.tags["onnx.sha256"]  # a genuinely different model
    assert v3.tags["rolled_back"] == "true"
    again = run([SEQOPS, "release", "--rollback"], project, check=False)
    assert again.returncode == 2 and "no 'previous-champion' alias" in again.stderr

    # The rolled-back v3 comes back only when asked, judged against today's champion v1.
    assert "Status: **rolled back" in _card(project)  # the workspace's model is v3
    _assert_refused(_promote(project), 5, "v3 was rolled back", "--allow-rolled-back")
    _assert_refused(_promote(project, "--dry-run"), 5, "v3 was rolled back")
    assert _aliases(client) == {"candidate": 3, "champion": 1}
    dry = run([SEQOPS, "promote", "--dry-run", "--allow-rolled-back"], project)
    assert "passes the gate against today's champion" in dry.stdout
    assert _aliases(client) == {"candidate": 3, "champion": 1}  # a dry run moves nothing
    assert not _gate_runs(client, 3, "promote")[1:]  # and records nothing (one promotion so far)
    back = run([SEQOPS, "promote", "--allow-rolled-back"], project)
    assert "v3 is now 'champion', judged against champion v1" in back.stdout
    assert _aliases(client) == {"candidate": 3, "champion": 3, "previous-champion": 1}
    v3 = client.get_model_version("seqops", "3")
    assert "rolled_back" not in v3.tags
    first, second = _gate_runs(client, 3, "promote")
    assert v3.tags["promoted.verdict"] == second.info.run_id  # the verdict of this promotion
    assert second.data.tags["seqops.gate.allowed_rolled_back"] == "true"
    assert first.data.tags["seqops.gate.passed"] == second.data.tags["seqops.gate.passed"]
    card = _card(project)
    assert "Status: **champion, promoted under the verdict below (judged against champion v1" in (
        card
    )
    assert f"MLflow run `{second.info.run_id}`" in card
    run([SEQOPS, "release", "--rollback"], project)
    assert _aliases(client) == {"candidate": 3, "champion": 1}

    # Promoting the rolled-back v3 again (as asked), SIGKILLed after each step in turn, each
    # command taking up where the killed one left off: the registry always holds either the
    # old champion or the new one with its records, and the command after the last kill
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
        else:
            assert "previous-champion" not in aliases, step
    assert "completed an interrupted promotion of v3" in run(again, project).stdout
    assert _aliases(client) == {"candidate": 3, "champion": 3, "previous-champion": 1}
    assert PROMOTION_TAG not in client.get_registered_model("seqops").tags
    assert "rolled_back" not in client.get_model_version("seqops", "3").tags

    # Lineage: the ONNX file in models/ traces back to v3's run, commit and data.
    traced = json.loads(run([SEQOPS, "lineage", "models/model.onnx"], project).stdout)
    assert traced["verified"] and traced["version"] == 3
    data = json.loads((project / "reports/data.json").read_text())
    assert traced["data_hash"] == data["data_hash"]
    assert traced["params"]["model.hidden_size"] == "32"
    (project / "tampered.onnx").write_bytes((project / "models/model.onnx").read_bytes() + b"x")
    bad = run([SEQOPS, "lineage", "tampered.onnx"], project, check=False)
    assert bad.returncode == 2 and "matches no registered version" in bad.stderr


def test_judging_the_champion_again_changes_nothing_of_it(built_project: Path) -> None:
    project = built_project
    _commit(project, "the tiny default model")
    run([SEQOPS, "promote"], project)
    client = _client(project)
    v1 = client.get_model_version("seqops", "1")
    aliases, tags = _aliases(client), dict(v1.tags)
    trained = client.get_run(v1.run_id).data
    history = _history(client, v1.run_id, trained.metrics)

    # A release-only experiment on the champion's ONNX file: a floor the tiny model misses.
    shown = run([DVC, "exp", "run", "-n", "strict", "-S", "release.min_metric=0.99"], project)
    assert "Running stage 'release'" in shown.stdout and "Running stage 'train'" not in shown.stdout
    strict = _release(project)
    assert strict["version"] == 1 and not strict["passed"]
    assert not strict["checks"]["test/accuracy"]["passed"]

    v1 = client.get_model_version("seqops", "1")
    assert dict(v1.tags) == tags  # no verdict written onto the champion
    assert _aliases(client) == aliases  # `candidate` did not move onto it, `champion` stayed
    after = client.get_run(v1.run_id).data
    assert after.metrics == trained.metrics and after.tags == trained.tags
    assert _history(client, v1.run_id, after.metrics) == history
    (record,) = _gate_runs(client, 1, "release")[1:]  # the first one judged it before promotion
    assert record.data.tags["seqops.gate.passed"] == "false"
    assert record.data.tags["mlflow.parentRunId"] == v1.run_id
    assert record.data.tags["seqops.gate.params"] != tags["promoted.params"]

    # The card agrees with the registry: champion, under the verdict it was promoted under, with
    # this failed evaluation beside it as what it is.
    card = _card(project)
    status, gate = card.index("Status: **champion, promoted"), card.index("## Release gate (the")
    latest = card.index("### Latest evaluation (changes neither the champion nor the verdict")
    assert status < gate < latest
    promoted_rows = card[gate:latest]
    assert "**no**" not in promoted_rows and "**passed**" in promoted_rows
    assert "**failed**" in card[latest:] and "| test/accuracy |" in card[latest:]

    # Promoting the champion's file again changes nothing either.
    assert "already is 'champion'" in run([SEQOPS, "promote"], project).stdout
    assert _aliases(client) == aliases
    assert dict(client.get_model_version("seqops", "1").tags) == tags


def test_promotion_refuses_what_is_not_the_committed_and_registered_model(
    built_project: Path,
) -> None:
    project = built_project
    _assert_refused(_promote(project), 4, "dvc.lock is not committed at HEAD")
    _commit(project, "the tiny default model")

    onnx = project / "models" / "model.onnx"
    good = onnx.read_bytes()
    onnx.unlink()  # a new file: the cached one may be linked
    onnx.write_bytes(good + b"\0")
    _assert_refused(_promote(project), 4, "models/model.onnx", "dvc.lock at HEAD records")
    onnx.unlink()
    onnx.write_bytes(good)

    metrics = project / "reports" / "metrics.json"
    committed = metrics.read_text()
    inflated = json.loads(committed)
    inflated["test"]["accuracy"] = 1.0
    metrics.write_text(json.dumps(inflated))
    _assert_refused(_promote(project), 4, "reports/metrics.json")
    metrics.write_text(committed)

    # The registry's copy of v1's ONNX file altered: not the file the version records.
    client = _client(project)
    source = client.get_model_version("seqops", "1").source  # models:/m-...
    location = client.get_logged_model(source.split("/")[-1]).artifact_location
    stored = Path(location.removeprefix("file://"))
    registered = next(stored.rglob("model.onnx"))
    kept = registered.read_bytes()
    registered.write_bytes(kept + b"\0")
    _assert_refused(_promote(project), 6, "v1: the registry's model.onnx")
    assert "champion" not in _aliases(client)
    registered.write_bytes(kept)

    assert "v1 is now 'champion'" in run([SEQOPS, "promote"], project).stdout
    assert _aliases(client) == {"candidate": 1, "champion": 1}
