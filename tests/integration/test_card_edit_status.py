"""A model card's wording is the release stage's only: with the real `dvc` CLI, in the built
project, a comment added to the classification task's card part (the project's own copy of
`src/`, which its dvc.yaml deps name) leaves prepare, tune, train, evaluate and export up to
date and makes `dvc status` list release, naming the edited file among its changed deps."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import BIN, run

pytestmark = pytest.mark.slow

DVC = str(BIN / "dvc")
CARD = "src/seqops/tasks/classification/card.py"
BEFORE_RELEASE = ("prepare", "tune", "train", "evaluate", "export")


def stale(project: Path) -> dict[str, list[object]]:
    """`dvc status --json`: each stage that is not up to date, with what changed."""
    return dict(json.loads(run([DVC, "status", "--json"], project).stdout))


def test_a_card_edit_makes_only_release_stale(built_project: Path) -> None:
    assert not set(BEFORE_RELEASE) & set(stale(built_project))  # freshly built
    card = built_project / CARD
    card.write_text(card.read_text() + "# a wording change to the model card\n")

    status = stale(built_project)
    assert not set(BEFORE_RELEASE) & set(status), status
    assert "release" in status, status
    changed = json.dumps(status["release"])
    assert CARD in changed, changed
