"""Export is all or nothing: SIGKILLed at each step, or failing its parity check, it leaves no
bundle `seqops predict` would serve unchecked, and the next `dvc repro` recovers.

One project runs the pipeline up to export once; then each fault is injected in turn.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from seqops.onnx_export import EXPORT_STEPS, STAGING_PREFIX
from seqops.outputs import KILL_AT_ENV
from tests.conftest import BIN, run

pytestmark = pytest.mark.slow

SEQOPS, DVC = str(BIN / "seqops"), str(BIN / "dvc")


def _request(project: Path) -> Path:
    """Three raw sequences with every feature the bundle needs."""
    features = json.loads((project / "models" / "preprocessing.json").read_text())["data"][
        "feature_names"
    ]
    rng, n = np.random.default_rng(0), len(features)
    rows = [
        {"id": f"s{i}", "time": t, **dict(zip(features, rng.normal(size=n), strict=True))}
        for i in range(3)
        for t in range(5 + i)
    ]  # fmt: skip
    path = project / "request.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def _predict(project: Path, request: Path) -> tuple[int, str, str]:
    done = run([SEQOPS, "predict", "--model", "models", "--input", str(request)], project, False)
    return done.returncode, done.stdout, done.stderr


def _assert_refused_or_previous(project: Path, request: Path, before: str, fault: str) -> None:
    """`seqops predict` refuses with one line (exit 2) or answers as the previous bundle did."""
    rc, out, err = _predict(project, request)
    if rc == 0:
        assert out == before, fault
    else:
        assert rc == 2 and out == "", (fault, rc, err)
        assert err.count("\n") == 1 and err.startswith("seqops predict: error: models/"), (
            fault,
            err,
        )


def _assert_recovers(project: Path, request: Path, before: str, fault: str) -> None:
    run([DVC, "repro", "export"], project)
    assert _predict(project, request) == (0, before, ""), fault
    assert not list((project / "models").glob(f"{STAGING_PREFIX}*")), fault


def test_a_killed_or_failed_export_never_leaves_a_servable_unchecked_bundle(
    project: Path,
) -> None:
    run([DVC, "repro", "export"], project)
    request = _request(project)
    rc, before, _ = _predict(project, request)
    assert rc == 0 and len(pd.read_csv(request)["id"].unique()) == before.count("\n") - 1

    for step in EXPORT_STEPS:
        killed = run([SEQOPS, "export"], project, check=False, env={KILL_AT_ENV: step})
        assert killed.returncode == -9, (step, killed.stderr)
        _assert_refused_or_previous(project, request, before, step)
        _assert_recovers(project, request, before, step)

    # A parity failure (an impossible tolerance): the stage fails, leaving no bundle and no
    # export report, and recovers once the tolerance is back.
    params = project / "params.yaml"
    good = params.read_text()
    tight = yaml.safe_load(good)
    tight["export"]["parity_atol"] = 1e-300
    params.write_text(yaml.safe_dump(tight, sort_keys=False))
    failed = run([DVC, "repro", "export"], project, check=False)
    assert failed.returncode != 0 and "ONNX Runtime disagrees with PyTorch" in failed.stderr
    _assert_refused_or_previous(project, request, before, "parity")
    assert not (project / "reports" / "export.json").exists()
    assert not list((project / "models").glob(f"{STAGING_PREFIX}*"))
    params.write_text(good)
    _assert_recovers(project, request, before, "parity")

    # Every output a stage wrote has the mode open() gives it (umask applied), none 0600.
    umask = os.umask(0)
    os.umask(umask)
    written = [
        p
        for folder in ("models", "reports")
        for p in (project / folder).rglob("*")
        if p.is_file() and p.name != ".gitignore"
    ]
    assert written
    modes = {p.name: oct(stat.S_IMODE(p.stat().st_mode)) for p in written}
    assert set(modes.values()) == {oct(0o666 & ~umask)}, modes
