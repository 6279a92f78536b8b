"""Two clean runs from the same commit give byte-identical metrics on CPU."""

import shutil
from pathlib import Path

import pytest

from tests.conftest import BIN, run

pytestmark = pytest.mark.slow


def test_two_clean_runs_give_identical_metrics(project: Path) -> None:
    results = []
    for _ in range(2):
        for stage in ("prepare", "train", "evaluate"):
            run([str(BIN / "seqops"), stage], project)
        results.append((project / "reports" / "metrics.json").read_bytes())
        assert (project / "reports" / "predictions.csv").is_file()
        shutil.rmtree(project / "models")
        shutil.rmtree(project / "data")
        shutil.rmtree(project / "reports")
    assert results[0] == results[1]
