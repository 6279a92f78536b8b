"""Time `make test` on a fresh clone: the install and the whole suite, with the load average.

    .venv/bin/python benchmarks/test_suite.py              # clone HEAD, make install, make test
    .venv/bin/python benchmarks/test_suite.py --no-write

Clones the committed HEAD into a temporary folder (so nothing installed or cached in this
checkout's `.venv` is reused), runs `make install` and then `make test`, and reads the test
count and the 25 slowest tests from pytest's output. Writes
`benchmarks/results/test_suite.json` for `benchmarks/results_table.py` unless `--no-write`.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from results_table import commit_line, machine_line, write_result

REPO = Path(__file__).resolve().parents[1]
OUTPUT = REPO / "benchmarks" / "results" / "test_suite.json"


def timed(cmd: list[str], cwd: Path) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    took = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-4000:]}")
    return took, proc.stdout


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    load = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="seqops-suite-") as tmp:
        clone = Path(tmp) / "seqops"
        subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
        install_s, _ = timed(["make", "install"], clone)
        test_s, out = timed(["make", "test"], clone)
    log = Path(tempfile.gettempdir()) / "seqops-test-suite.log"
    log.write_text(out)  # pytest's whole output, with the slowest tests
    summary = next(line for line in reversed(out.splitlines()) if " passed" in line)
    slowest = re.findall(r"^\s*([\d.]+)s (call|setup|teardown)\s+(\S+)$", out, re.MULTILINE)
    rows = [
        ["make install (fresh .venv)", round(install_s, 1)],
        ["make test (the whole suite)", round(test_s, 1)],
        ["both", round(install_s + test_s, 1)],
    ]
    result = {
        "title": "Test suite on a fresh clone (`make test`)",
        "command": ".venv/bin/python benchmarks/test_suite.py",
        "commit": commit_line(worktree=False),  # the clone is HEAD
        "machine": machine_line(),
        "columns": ["step", "wall (s)"],
        "rows": rows,
        "notes": [
            f"pytest: {summary.strip('= ')}",
            f"load average before the run: {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f}",
            "slowest: " + "; ".join(f"{name} {kind} {secs} s" for secs, kind, name in slowest[:5]),
        ],
    }
    for step, secs in rows:
        print(f"{step:>30}: {secs:7.1f} s")
    print(summary)
    print(f"pytest's output: {log}")
    if not args.no_write:
        write_result(result, OUTPUT)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
