"""Time the default pipeline (`dvc repro` after the install) in fresh scratch copies of the repo.

    .venv/bin/python benchmarks/pipeline_speed.py                 # 3 runs, median per stage
    .venv/bin/python benchmarks/pipeline_speed.py --runs 1 --no-write

Each run copies the committed code, params and data into a new git + DVC project (nothing
cached, no Optuna journal, no MLflow store), runs `dvc repro` once and reads each stage's wall
time from the time between DVC's "Running stage" lines. The table gives the median of each
stage and of the whole `dvc repro` over the runs, the load average before the first run, and
whether each run's test metrics equal the repo's committed `reports/metrics.json` (the
pipeline is deterministic on CPU). Writes `benchmarks/results/pipeline_speed.json` for
`benchmarks/results_table.py` unless `--no-write`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from results_table import commit_line, machine_line, write_result

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
OUTPUT = REPO / "benchmarks" / "results" / "pipeline_speed.json"
STAGES = ("prepare", "tune", "train", "evaluate", "export", "benchmark", "release")


def scratch_copy(work: Path) -> None:
    for name in ("src", "params"):
        shutil.copytree(REPO / name, work / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("dvc.yaml", "params.yaml", ".gitignore"):
        shutil.copy(REPO / name, work / name)
    shutil.copytree(REPO / "data" / "raw", work / "data" / "raw")
    git = ["git", "-c", "user.name=b", "-c", "user.email=b@b"]
    for cmd in (["git", "init", "-q"], [str(BIN / "dvc"), "init", "-q"], [*git, "add", "-A"],
                [*git, "commit", "-qm", "pipeline speed"]):  # fmt: skip
        subprocess.run(cmd, cwd=work, check=True, capture_output=True)


def timed_repro(work: Path, env: dict[str, str]) -> dict[str, float]:
    """Run `dvc repro`, stamping each output line; each stage's wall time and the total."""
    start = time.perf_counter()
    stamps: list[tuple[float, str]] = []
    proc = subprocess.Popen([str(BIN / "dvc"), "repro"], cwd=work, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("Running stage '"):
            stamps.append((time.perf_counter(), line.split("'")[1]))
    if proc.wait() != 0:
        raise SystemExit(f"dvc repro failed in {work}")
    end = time.perf_counter()
    times = {
        name: later - t
        for (t, name), (later, _) in zip(stamps, [*stamps[1:], (end, "")], strict=True)
    }
    times["dvc repro"] = end - start
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env.update(PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}", DVC_NO_ANALYTICS="1")
    committed = json.loads((REPO / "reports" / "metrics.json").read_text())["test"]
    load = os.getloadavg()
    runs, same = [], []
    for i in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="seqops-speed-") as tmp:
            work = Path(tmp)
            scratch_copy(work)
            runs.append(timed_repro(work, env))
            test = json.loads((work / "reports" / "metrics.json").read_text())["test"]
            same.append(test == committed)
            took, accuracy = runs[-1]["dvc repro"], test.get("accuracy")
            print(f"run {i + 1}: {took:.1f} s, test accuracy {accuracy}, "
                  f"equal to the committed metrics: {same[-1]}")  # fmt: skip
    rows = [[name, round(statistics.median(r[name] for r in runs), 1)]
            for name in (*STAGES, "dvc repro") if all(name in r for r in runs)]  # fmt: skip
    result = {
        "title": "Default pipeline speed (`dvc repro` after the install)",
        "command": ".venv/bin/python benchmarks/pipeline_speed.py",
        "commit": commit_line(),
        "machine": machine_line(),
        "columns": ["stage", f"median wall (s), {args.runs} fresh runs"],
        "rows": rows,
        "notes": [
            f"load average before the first run: {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f}",
            "each run in a fresh scratch copy: no DVC cache, Optuna journal or MLflow store",
            f"test metrics equal to the committed reports/metrics.json in {sum(same)} of "
            f"{len(same)} runs (test accuracy {committed.get('accuracy')})",
        ],
    }
    for name, value in rows:
        print(f"{name:>10}: {value:6.1f} s")
    if not args.no_write:
        write_result(result, OUTPUT)
    return 0 if all(same) else 1


if __name__ == "__main__":
    raise SystemExit(main())
