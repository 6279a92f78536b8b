"""Quality on data nobody tuned for: the default params against each task's classical baseline.

    .venv/bin/python benchmarks/quality.py                               # every dataset below
    .venv/bin/python benchmarks/quality.py --only ArrowHead GunPoint     # a subset
    .venv/bin/python benchmarks/quality.py --reports ArrowHead=/tmp/x/reports   # a finished run
    .venv/bin/python benchmarks/quality.py --only SST-2 --set train.ensemble=5  # other params

Each dataset runs `dvc repro evaluate` (prepare, tune, train, evaluate: the default params, or
the preset for SST-2 and CO2) in its own scratch copy of the repo, then reads the run's
`reports/metrics.json` and `reports/predictions.csv`: the model and the baseline the evaluate
stage fitted on the same training split and scored on the same test examples, the difference
with its paired-bootstrap interval and the task's paired test (McNemar / Diebold-Mariano / a
sign test over blocks of text), the published reference and our target. Prints one
markdown table. A scratch copy is kept with `--keep`. Runs take from about a minute
(ItalyPowerDemand) to tens of minutes (SST-2, Shakespeare) on two cores.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from seqops import presets
from seqops.config import apply_overrides
from seqops.tasks.parts.release import get_release

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class Dataset:
    name: str
    preset: str
    """The params file the run starts from (relative to the repo)."""
    overrides: dict[str, Any] = field(default_factory=dict)
    reference: str = "—"
    """The published figure on this split, and whose."""
    target: float | None = None
    """The issue's target for seqops (accuracy: at least; RMSE: at most)."""


DATASETS = (
    Dataset("JapaneseVowels", "params.yaml", {}, "1-NN DTW_D 0.949 (UEA archive)", target=0.98),
    Dataset(
        "ArrowHead",
        "params.yaml",
        {"data": {"dataset": "ArrowHead"}},
        "1-NN DTW 0.703 (UCR archive)",
        target=0.70,
    ),
    Dataset("GunPoint", "params.yaml", {"data": {"dataset": "GunPoint"}}, "1-NN DTW 0.907 (UCR)"),
    Dataset(
        "BasicMotions",
        "params.yaml",
        {"data": {"dataset": "BasicMotions"}},
        "1-NN DTW_D 0.975 (UEA)",
    ),
    Dataset(
        "ItalyPowerDemand",
        "params.yaml",
        {"data": {"dataset": "ItalyPowerDemand"}},
        "1-NN DTW 0.950 (UCR)",
    ),
    Dataset("SST-2", "params/sst2.yaml", {}, "LSTM + pretrained vectors 0.86", target=0.84),
    Dataset("Tecator", "params/tecator.yaml", {}, "ridge 2.07 on this split", target=2.07),
    Dataset("CO2", "params/co2.yaml", {}, "Holt-Winters 0.287 ppm (README)", target=0.30),
    Dataset(
        "WNUT-17",
        "params/wnut17.yaml",
        {},
        "entity F1 0.419, best shared-task system (pretrained vectors)",
        target=0.42,
    ),
    Dataset("BasicMotions segments", "params/basic_motions.yaml", {}, "—"),
    # bits per character (lower is better) against Kneser-Ney on the same test characters
    Dataset("Shakespeare", "params/shakespeare.yaml", {}, "—"),
)


def merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and key in out else value
    return out


def scratch_run(
    dataset: Dataset, work: Path, extra: dict[str, Any] | None = None, target: str = "evaluate"
) -> Path:
    """`dvc repro <target>` of `dataset` in a fresh git + DVC copy of the repo at `work`;
    `extra`: dotted-path overrides (`train.ensemble`) on top of the dataset's params."""
    shutil.copytree(REPO / "src", work / "src", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "dvc.yaml", work / "dvc.yaml")
    shutil.copytree(REPO / "data" / "raw", work / "data" / "raw")
    base = REPO / "params.yaml"
    start = base if dataset.preset == "params.yaml" else REPO / dataset.preset
    params = merge(presets.merged(base, start), dataset.overrides)
    params = apply_overrides(params, extra or {})
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = {
        "PATH": f"{BIN}:/usr/bin:/bin",
        "PYTHONPATH": str(work / "src"),  # the copy's code, whatever the venv has installed
        "DVC_NO_ANALYTICS": "1",
        "OMP_NUM_THREADS": "1",
        "HOME": str(Path.home()),
    }
    for cmd in (
        ["git", "init", "-q"],
        [str(BIN / "dvc"), "init", "-q"],
        ["git", "-c", "user.name=q", "-c", "user.email=q@q", "add", "-A"],
        ["git", "-c", "user.name=q", "-c", "user.email=q@q", "commit", "-qm", "quality"],
        [str(BIN / "dvc"), "repro", target],
    ):
        subprocess.run(cmd, cwd=work, env=env, check=True, capture_output=cmd[-1] != target)
    return work / "reports"


def row(dataset: Dataset, reports: Path, wall_s: float | None) -> str:
    from seqops.tasks import read_metrics
    from seqops.tasks.parts.release import baseline_check

    metrics = read_metrics(reports / "metrics.json")
    scores = get_release(metrics.task).paired_scores(
        metrics, pd.read_csv(reports / "predictions.csv")
    )
    check = baseline_check(scores, alpha=0.05)
    ours = scores.value(scores.model)
    # The strongest baseline on this test set, the one the table compares with.
    best = (max if scores.kind == "correct" else min)(
        scores.baselines, key=lambda name: scores.value(scores.baselines[name])
    )
    low, high = scores.interval(best)
    if dataset.target is None:
        target = "—"
    elif scores.kind == "correct":
        target = f"≥ {dataset.target:g}: " + ("met" if ours >= dataset.target else "**missed**")
    else:
        target = f"≤ {dataset.target:g}: " + ("met" if ours <= dataset.target else "**missed**")
    verdict = "passes" if check.passed else "**significantly below**"
    p_value = "—" if check.value is None else f"{check.value:.3g}"
    return (
        f"| {dataset.name} | {scores.metric} | {ours:.4f} "
        f"| {best} {scores.value(scores.baselines[best]):.4f} "
        f"| {scores.difference(best):+.4f} [{low:+.4f}, {high:+.4f}] | {p_value} ({verdict}) "
        f"| {dataset.reference} | {target} | {'—' if wall_s is None else f'{wall_s:.0f} s'} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", help="dataset names (default: all)")
    parser.add_argument(
        "--reports", nargs="*", default=[], help="NAME=DIR: read a finished run's reports"
    )
    parser.add_argument("--keep", action="store_true", help="keep the scratch copies")
    parser.add_argument(
        "--set", nargs="*", default=[], help="dotted.key=value over every dataset's params"
    )
    args = parser.parse_args()
    finished = dict(item.split("=", 1) for item in args.reports)
    overrides = {k: yaml.safe_load(v) for k, v in (item.split("=", 1) for item in args.set)}
    chosen = [d for d in DATASETS if not args.only or d.name in args.only]
    lines = [
        "| data | metric | seqops | best baseline (same split) | seqops − baseline [95 % CI] "
        "| paired test p (gate) | published reference | target | wall |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for dataset in chosen:
        if dataset.name in finished:
            lines.append(row(dataset, Path(finished[dataset.name]), None))
            continue
        work = Path(tempfile.mkdtemp(prefix=f"seqops-quality-{dataset.name}."))
        start = time.perf_counter()
        try:
            reports = scratch_run(dataset, work, overrides)
            lines.append(row(dataset, reports, time.perf_counter() - start))
        finally:
            if args.keep:
                print(f"kept {work}", file=sys.stderr)
            else:
                shutil.rmtree(work, ignore_errors=True)
        print(lines[-1], file=sys.stderr, flush=True)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
