"""A user's data file is a DVC dependency: files named by params (`data.path`, ...) live under
`data/raw/`, a dep of the stages that read them. With the real `dvc` CLI: after `dvc repro
prepare` the stage is up to date; editing one value of the CSV (params untouched) makes
`dvc status` list prepare, and the next `dvc repro` reruns it into new processed data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from tests.conftest import BIN, run, write_params

pytestmark = pytest.mark.slow

DVC = str(BIN / "dvc")
DATA = "data/raw/sequences.csv"


def long_format(n_sequences: int = 40, seed: int = 0) -> pd.DataFrame:
    """`n_sequences` sequences of 6-12 steps (id, time, f1, f2, label), two classes whose f1
    means differ."""
    rng = np.random.default_rng(seed)
    frames = []
    for i in range(n_sequences):
        label = "up" if i % 2 else "down"
        steps = int(rng.integers(6, 13))
        frames.append(
            pd.DataFrame(
                {
                    "id": i,
                    "time": np.arange(steps),
                    "f1": rng.normal(1.0 if label == "up" else -1.0, 1.0, steps).round(4),
                    "f2": rng.normal(0.0, 1.0, steps).round(4),
                    "label": label,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def changes(project: Path, stage: str) -> list[Any]:
    """What `dvc status --json <stage>` reports for the stage; empty when it is up to date."""
    status = json.loads(run([DVC, "status", "--json", stage], project).stdout)
    return list(status.get(stage, []))


def processed_hash(project: Path) -> str:
    lock = yaml.safe_load((project / "dvc.lock").read_text())
    (out,) = (o for o in lock["stages"]["prepare"]["outs"] if o["path"] == "data/processed")
    return str(out["md5"])


def test_editing_the_data_file_makes_prepare_stale(project: Path) -> None:
    csv = project / DATA
    csv.parent.mkdir(parents=True, exist_ok=True)
    long_format().to_csv(csv, index=False)
    write_params(project / "params.yaml", {"data": {"dataset": None, "path": DATA}})
    run([DVC, "repro", "prepare"], project)
    assert changes(project, "prepare") == []
    before = processed_hash(project)

    *rows, last = csv.read_text().splitlines()
    id_, time, f1, *rest = last.split(",")
    edited = ",".join([id_, time, f"{float(f1) + 0.5:.4f}", *rest])
    csv.write_text("\n".join([*rows, edited]) + "\n")
    assert changes(project, "prepare") == [{"changed deps": {"data/raw": "modified"}}]

    assert "Running stage 'prepare'" in run([DVC, "repro", "prepare"], project).stdout
    assert changes(project, "prepare") == []
    assert processed_hash(project) != before
