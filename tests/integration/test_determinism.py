"""A clean run from the same commit gives byte-identical metrics on CPU."""

import shutil
from pathlib import Path

import pytest

from tests.conftest import BIN, run

pytestmark = pytest.mark.slow


def test_a_clean_rerun_gives_byte_identical_metrics(built_project: Path) -> None:
    """The built project's first `dvc repro` against prepare, train and evaluate run again
    from nothing but the raw data and the tuned params (`models/best_params.yaml`)."""
    project = built_project
    first = (project / "reports" / "metrics.json").read_bytes()
    shutil.rmtree(project / "data" / "processed")
    shutil.rmtree(project / "reports")
    for path in (project / "models").iterdir():
        if path.name != "best_params.yaml":
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    for stage in ("prepare", "train", "evaluate"):
        run([str(BIN / "seqops"), stage], project)
    assert (project / "reports" / "predictions.csv").is_file()
    assert (project / "reports" / "metrics.json").read_bytes() == first
