"""Reports name what they were made from: dvc.lock records the params each stage ran with, and
a reader refuses a report made under params `params.yaml` no longer holds, in one line naming
it (`lockfile.verify_fresh`): `seqops promote` against `HEAD`'s lock, the model card against
the workspace's. On the tiny default project (`built_project`); nothing is re-run."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from seqops.contracts import ReleaseReport
from seqops.layout import Layout
from seqops.lockfile import StaleReport
from seqops.model_card import render_model_card
from seqops.registry import Standing, Verdict
from tests.conftest import BIN, run

GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]


def _change_params(project: Path) -> None:
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["train"]["max_epochs"] += 1
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def _card(project: Path) -> str:
    layout = Layout(project)
    verdict = Verdict(ReleaseReport.read(layout.release_report), "digest", None, "release")
    return render_model_card(layout, verdict, {}, Standing(("candidate",)))


def test_the_card_refuses_reports_made_under_other_params(built_project: Path) -> None:
    assert "# Model card" in _card(built_project)  # today's params: dvc.lock agrees
    _change_params(built_project)
    with pytest.raises(StaleReport) as refused:
        _card(built_project)
    message = str(refused.value)
    assert "reports/train.json" in message and "reports/metrics.json" in message
    assert "reports/data.json" not in message  # prepare reads no train params
    assert "params.yaml train.max_epochs: 3 when it ran, 4 now" in message


def test_promote_refuses_stale_reports_naming_them(built_project: Path) -> None:
    project = built_project
    run([*GIT, "add", "-A"], project)
    run([*GIT, "commit", "-qm", "the tiny default model"], project)
    _change_params(project)
    refused = run([str(BIN / "seqops"), "promote"], project, check=False)
    assert refused.returncode == 4, (refused.stdout, refused.stderr)
    assert refused.stderr.count("\n") == 1, refused.stderr
    assert refused.stderr.startswith("seqops promote: error: ")
    assert "reports/metrics.json" in refused.stderr and "stale" in refused.stderr
    assert "train.max_epochs" in refused.stderr
