"""dvc.yaml's top-level `plots` draw what the evaluate stage writes: every evaluate plot file it
declares is written by some task, every file a task writes is declared, and each CSV holds the
columns its plot reads. (A project of one task lacks the other tasks' files: `dvc plots show`
warns about them and still exits 0.)"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from seqops.tasks.classifier.evaluate import ClassificationEvaluation
from seqops.tasks.parts.evaluate import Evaluation
from seqops.tasks.regression.evaluate import RegressionEvaluation

REPO = Path(__file__).resolve().parents[2]
EVALUATE = "reports/plots/evaluate/"


def declared() -> dict[str, set[str]]:
    """Each evaluate plot file of dvc.yaml's `plots` -> the columns its plot reads."""
    found: dict[str, set[str]] = {}
    for entry in yaml.safe_load((REPO / "dvc.yaml").read_text())["plots"]:
        if isinstance(entry, str):  # an image, drawn as it is
            found.setdefault(entry, set())
            continue
        ((_, spec),) = entry.items()
        for file, fields in (spec.get("y") or {}).items():
            columns = found.setdefault(file, set())
            columns.update([fields] if isinstance(fields, str) else fields)
            columns.update([spec["x"]] if isinstance(spec.get("x"), str) else [])
    return {f: c for f, c in found.items() if f.startswith(EVALUATE)}


def written_by_tasks() -> set[str]:
    """The plot files the tasks' `write_plots` name (`plots / "<file>"`)."""
    pattern = re.compile(r'plots / "([\w.]+)"')
    sources = (REPO / "src" / "seqops" / "tasks").rglob("*.py")
    return {EVALUATE + name for path in sources for name in pattern.findall(path.read_text())}


def test_declared_plots_are_the_files_the_tasks_write() -> None:
    assert set(declared()) == written_by_tasks()


def _classification() -> Evaluation:
    target = torch.tensor([i % 3 for i in range(30)])
    probs = torch.softmax(torch.randn(30, 3, generator=torch.Generator().manual_seed(0)), 1)
    return ClassificationEvaluation(probs, target, ["a", "b", "c"], "sequence_classification", {})


def _regression() -> Evaluation:
    actual = np.linspace(0, 1, 20)
    return RegressionEvaluation(actual, {"model": actual + 0.1, "ridge": actual - 0.05})


@pytest.mark.parametrize("make", [_classification, _regression])
def test_each_written_csv_has_the_columns_its_plot_reads(make, tmp_path: Path) -> None:
    plots, scratch = tmp_path / "plots", tmp_path / "scratch"
    plots.mkdir()
    scratch.mkdir()
    make().write_plots(plots, scratch)
    wanted = declared()
    written = sorted(plots.iterdir())
    assert written
    for path in written:
        assert EVALUATE + path.name in wanted, f"{path.name}: written, not in dvc.yaml plots"
        if path.suffix == ".csv":
            with path.open(newline="") as fh:
                header = set(next(csv.reader(fh)))
            assert wanted[EVALUATE + path.name] <= header, (path.name, header)
