"""Shared fixtures: tiny configs and a project directory that runs the real pipeline in seconds."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

#: Overrides that shrink a JapaneseVowels run to a few seconds.
TINY: dict[str, Any] = {
    "model": {"hidden_size": 8, "num_layers": 1},
    "train": {"max_epochs": 3, "batch_size": 64, "patience": 3},
    "tune": {"n_trials": 2, "max_epochs": 2},
    "benchmark": {"n_calls": 100, "warmup": 10, "throughput_calls": 2},
    # A 3-epoch model is not a good model; the gate's own tests set real thresholds.
    "release": {"min_metric": 0.0},
}


def merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and key in out else value
    return out


def write_params(path: Path, extra: dict[str, Any] | None = None) -> Path:
    base = yaml.safe_load((REPO / "params.yaml").read_text())
    path.write_text(yaml.safe_dump(merge(merge(base, TINY), extra or {}), sort_keys=False))
    return path


def run_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["DVC_NO_ANALYTICS"] = "1"
    return env


def run(cmd: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, cwd=cwd, env=run_env(), capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(f"{cmd} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def assert_predict_succeeds_without_torch(args: list[str]) -> None:
    """Run `seqops <args>` in a fresh interpreter: exit 0, torch and Lightning never loaded."""
    script = (
        "import sys\n"
        "from seqops.cli import main\n"
        f"rc = main({args!r})\n"
        "print(rc, 'torch' in sys.modules, 'lightning' in sys.modules)\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.stdout.split() == ["0", "False", "False"], proc.stdout + proc.stderr


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A git + DVC project in a temp dir with this repo's dvc.yaml, code and tiny params."""
    shutil.copytree(REPO / "src", tmp_path / "src", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "dvc.yaml", tmp_path / "dvc.yaml")
    write_params(tmp_path / "params.yaml")
    run(["git", "init", "-q"], tmp_path)
    run([str(BIN / "dvc"), "init", "-q"], tmp_path)
    run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "add", "-A"], tmp_path)
    run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init"], tmp_path)
    return tmp_path
