"""LSTM, GRU and a transformer encoder on each task's reference data, with the same tuning budget.

    .venv/bin/python benchmarks/alternatives.py                         # the presets' budgets
    .venv/bin/python benchmarks/alternatives.py --budget reduced        # the results page's
    .venv/bin/python benchmarks/alternatives.py --only JapaneseVowels Tecator --cells lstm gru
    .venv/bin/python benchmarks/alternatives.py --only JapaneseVowels --trials 2 \\
        --set tune.max_epochs=3 train.max_epochs=5 --output /tmp/alt.json   # what CI runs

For each dataset and cell, `dvc repro benchmark` (prepare, tune, train, evaluate, export, the
latency benchmark) runs in its own scratch copy of the repository (`quality.scratch_run`),
from the dataset's preset with `model.cell` fixed and `model.cell` taken out of the search
space; every cell gets the same number of tuning trials (`tune.n_trials` of the preset, or
`--trials`) and the same training budget. A transformer searches its own width, heads and
layers (`TRANSFORMER_SPACE`) instead of the recurrent-only keys (`RECURRENT_ONLY`).

Columns: the test metric with a percentile-bootstrap 95 % interval over test examples (the
task's own per-example scores, its release part's `paired_scores`); trained parameters and
training wall time (`reports/train.json`); ONNX Runtime fp32 latency at batch 1 (p50 of the
benchmark stage) and at batch 64 (64 / throughput), one intra-op thread; a model the export
refuses (ONNX parity) keeps its row, without latency. Then, for the dataset with the longest
training sequences, the exported graph's batch-8 latency (median of `--calls`) and peak memory
(the process's peak RSS during the calls over its RSS with the session loaded, each length in
a fresh process) at 1x, 4x and 16x that length, random inputs of the graph's own dtype.

Writes `benchmarks/results/alternatives.json` and `alternatives_scaling.json` beside it for
`benchmarks/results_table.py` (or `--output` and its `_scaling` sibling); `--no-write` only
prints.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from quality import DATASETS as QUALITY_DATASETS
from quality import Dataset, merge, scratch_run
from results_table import commit_line, machine_line, write_result
from seqops import presets
from seqops.tasks.parts.release import get_release

REPO = Path(__file__).resolve().parents[1]
OUTPUT = REPO / "benchmarks" / "results" / "alternatives.json"
CELLS = ("lstm", "gru", "transformer")
#: Search-space keys only a recurrent cell reads.
RECURRENT_ONLY = ("model.recurrent_dropout", "model.locked_dropout", "model.bidirectional")
#: What a transformer searches instead: width (d_model), attention heads, layers.
TRANSFORMER_SPACE: dict[str, dict[str, Any]] = {
    "model.hidden_size": {"type": "categorical", "choices": [32, 64, 128]},
    "model.heads": {"type": "categorical", "choices": [2, 4]},
    "model.num_layers": {"type": "int", "low": 1, "high": 3},
}
#: The reference data of every task, by the names `benchmarks/quality.py` uses.
NAMES = ("JapaneseVowels", "SST-2", "CO2", "Tecator", "WNUT-17", "Shakespeare")
MULTIPLIERS = (1, 4, 16)
#: `--budget reduced`: per dataset, what shrinks (the same for every cell) so the whole table
#: fits in about an hour on two cores; the presets' own budgets take several hours for three
#: cells (Shakespeare alone trains 13 minutes).
REDUCED: dict[str, dict[str, Any]] = {
    "JapaneseVowels": {},
    "SST-2": {"tune.n_trials": 3, "train.max_epochs": 4},
    "CO2": {"tune.n_trials": 4},
    "Tecator": {"tune.n_trials": 3, "tune.max_epochs": 40, "train.max_epochs": 120},
    "WNUT-17": {"tune.n_trials": 1, "tune.max_epochs": 2, "train.max_epochs": 8},
    "Shakespeare": {"model.hidden_size": 256, "train.max_epochs": 1},
}


@dataclass(frozen=True)
class Run:
    dataset: str
    cell: str
    metric: str
    value: float
    low: float
    high: float
    parameters: int
    train_s: float
    p50_ms: float | None
    batch64_ms: float | None
    longest: int
    wall_s: float
    work: Path
    refused: str | None = None
    """Why the export refused the model (ONNX parity, ...): no latency then."""


def datasets() -> dict[str, Dataset]:
    found = {d.name: d for d in QUALITY_DATASETS}
    return {name: found[name] for name in NAMES}


def cell_overrides(dataset: Dataset, cell: str, trials: int | None) -> dict[str, Any]:
    """Dotted overrides of the dataset's params: `model.cell` fixed to `cell` and out of the
    search space (a transformer's space: `TRANSFORMER_SPACE` instead of `RECURRENT_ONLY`), and
    no `tune.choose` (a cross-validated random-kernel path would blur what the cell does)."""
    base = REPO / "params.yaml"
    start = base if dataset.preset == "params.yaml" else REPO / dataset.preset
    params = merge(presets.merged(base, start), dataset.overrides)
    space = {k: v for k, v in (params["tune"].get("space") or {}).items() if k != "model.cell"}
    overrides: dict[str, Any] = {"model.cell": cell, "tune.choose": {}}
    if cell == "transformer":
        space = {k: v for k, v in space.items() if k not in RECURRENT_ONLY}
        space.update(TRANSFORMER_SPACE)
        overrides.update({"model.recurrent_dropout": 0.0, "model.locked_dropout": False})
    overrides["tune.space"] = space
    if trials is not None:
        overrides["tune.n_trials"] = trials
    return overrides


def _json(path: Path) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(path.read_text())
    return found


def metric_interval(reports: Path) -> tuple[str, float, float, float]:
    """The task's test metric and its percentile-bootstrap 95 % interval over test examples."""
    from seqops.tasks import read_metrics

    metrics = read_metrics(reports / "metrics.json")
    predictions = pd.read_csv(reports / "predictions.csv")
    scores = get_release(metrics.task).paired_scores(metrics, predictions)
    model = scores.model
    rng = np.random.default_rng(0)
    values = [scores.value(model[rng.integers(0, len(model), len(model))]) for _ in range(1000)]
    low, high = np.percentile(values, [2.5, 97.5])
    return scores.metric, scores.value(model), float(low), float(high)


def run_one(dataset: Dataset, cell: str, args: argparse.Namespace) -> Run:
    work = Path(tempfile.mkdtemp(prefix=f"seqops-alt-{dataset.name}-{cell}."))
    reduced = REDUCED[dataset.name] if args.budget == "reduced" else {}
    extra = {**reduced, **cell_overrides(dataset, cell, args.trials), **args.overrides}
    start = time.perf_counter()
    reports, refused = work / "reports", None
    try:
        scratch_run(dataset, work, extra, target="benchmark")
    except subprocess.CalledProcessError:
        if not (reports / "metrics.json").is_file():
            raise  # it failed before a test metric: nothing to compare
        # Evaluated, then refused by export (its own message is in the log above).
        refused = "export refused the model (ONNX parity, see the log)"
    wall = time.perf_counter() - start
    metric, value, low, high = metric_interval(reports)
    train = _json(reports / "train.json")
    fp32 = None if refused else _json(reports / "latency.json")["onnx_fp32"]
    return Run(
        dataset=dataset.name,
        cell=cell,
        metric=metric,
        value=value,
        low=low,
        high=high,
        parameters=int(train["n_parameters"]),
        train_s=float(train["wall_s"]),
        p50_ms=None if fp32 is None else float(fp32["p50_ms"]),
        batch64_ms=None if fp32 is None else 1000.0 * fp32["throughput_batch"] / fp32["throughput"],
        longest=int(_json(reports / "data.json")["length"]["train"]["max"]),
        wall_s=wall,
        work=work,
        refused=refused,
    )


#: One length's measurement, in a fresh process: prints `{"ms": ..., "peak_mib": ...}`.
_PROBE = """
import json, sys, time
import numpy as np
import onnxruntime as ort
path, length, calls = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
opts = ort.SessionOptions()
opts.intra_op_num_threads = opts.inter_op_num_threads = 1
session = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
rng = np.random.default_rng(0)
feeds = {}
for node in session.get_inputs():
    if node.name == "lengths":
        feeds[node.name] = np.full(8, length, dtype=np.int64)
    elif "int64" in node.type:
        shape = [8, length] + [1 if not isinstance(d, int) else d for d in node.shape[2:]]
        feeds[node.name] = rng.integers(1, 20, size=shape).astype(np.int64)
    else:
        shape = [8, length] + [d if isinstance(d, int) else 1 for d in node.shape[2:]]
        feeds[node.name] = rng.standard_normal(shape).astype(np.float32)
def status_kib(field):
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(field))
with open("/proc/self/clear_refs", "w") as clear:
    clear.write("5")  # resets the peak (VmHWM) to the current RSS
before = status_kib("VmRSS:")
session.run(None, feeds)
times = []
for _ in range(calls):
    start = time.perf_counter()
    session.run(None, feeds)
    times.append(time.perf_counter() - start)
peak = status_kib("VmHWM:") - before
print(json.dumps({"ms": 1000 * float(np.median(times)), "peak_mib": peak / 1024}))
"""


def scaling(run: Run, calls: int) -> list[list[Any]]:
    rows = []
    for k in MULTIPLIERS:
        length = run.longest * k
        out = subprocess.run(
            [sys.executable, "-c", _PROBE, str(run.work / "models" / "model.onnx"),
             str(length), str(calls)],
            capture_output=True, text=True, check=True, env={"OMP_NUM_THREADS": "1"},
        )  # fmt: skip
        found = json.loads(out.stdout)
        rows.append([run.cell, f"{k}x ({length} steps)", round(found["ms"], 3),
                     round(found["peak_mib"], 1)])  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", help=f"dataset names (default: {', '.join(NAMES)})")
    parser.add_argument("--cells", nargs="*", default=list(CELLS), choices=CELLS)
    parser.add_argument("--trials", type=int, help="tuning trials per cell (default: preset's)")
    parser.add_argument(
        "--budget", choices=["preset", "reduced"], default="preset",
        help="each preset's own training budget, or `REDUCED` (the same for every cell)",
    )  # fmt: skip
    parser.add_argument("--set", nargs="*", default=[], help="dotted.key=value on every run")
    parser.add_argument("--calls", type=int, default=50, help="timed calls per scaling length")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the scratch copies")
    args = parser.parse_args()
    args.overrides = {k: yaml.safe_load(v) for k, v in (s.split("=", 1) for s in args.set)}
    unknown = [name for name in args.only or [] if name not in NAMES]
    if unknown:
        parser.error(f"unknown dataset {unknown[0]!r}; one of {', '.join(NAMES)}")
    chosen = [d for name, d in datasets().items() if not args.only or name in args.only]

    runs: list[Run] = []
    try:
        for dataset in chosen:
            for cell in args.cells:
                print(f"{dataset.name} / {cell} ...", file=sys.stderr, flush=True)
                runs.append(run_one(dataset, cell, args))
                r = runs[-1]
                print(f"  {r.metric} {r.value:.4f} [{r.low:.4f}, {r.high:.4f}], "
                      f"{r.parameters} parameters, {r.wall_s:.0f} s", file=sys.stderr)  # fmt: skip
        exported = [r for r in runs if r.refused is None]
        longest = max(exported, key=lambda r: r.longest).dataset
        scaled = [row for r in exported if r.dataset == longest for row in scaling(r, args.calls)]
    finally:
        for r in runs:
            if args.keep:
                print(f"kept {r.work}", file=sys.stderr)
            else:
                shutil.rmtree(r.work, ignore_errors=True)

    rows: list[list[Any]] = [
        [
            r.dataset,
            r.cell,
            r.metric,
            round(r.value, 4),
            f"[{r.low:.4f}, {r.high:.4f}]",
            r.parameters,
            round(r.train_s, 1),
            None if r.p50_ms is None else round(r.p50_ms, 3),
            None if r.batch64_ms is None else round(r.batch64_ms, 3),
            round(r.wall_s),
            r.refused or "exported",
        ]
        for r in runs
    ]
    budget = f"{args.trials} trials" if args.trials is not None else "each preset's tune.n_trials"
    if args.budget == "reduced":
        budget += (
            ", reduced per dataset (`REDUCED` in the script: "
            + "; ".join(
                f"{name}: {', '.join(f'{k}={v}' for k, v in found.items())}"
                for name, found in REDUCED.items()
                if found and any(r.dataset == name for r in runs)
            )
            + ")"
        )
    command = " ".join([".venv/bin/python", "benchmarks/alternatives.py", *sys.argv[1:]])
    comparison = {
        "title": "LSTM, GRU and transformer on each task's reference data",
        "command": command,
        "commit": commit_line(),
        "machine": machine_line(),
        "columns": [
            "data",
            "cell",
            "metric",
            "test",
            "95 % CI",
            "parameters",
            "train (s)",
            "ONNX batch-1 p50 (ms)",
            "ONNX batch-64 (ms)",
            "wall (s)",
            "export",
        ],
        "rows": rows,
        "notes": [
            f"tuning budget: {budget}, the same for every cell; model.cell fixed per run; a "
            "transformer searches width {32, 64, 128}, heads {2, 4} and 1-3 layers instead of "
            "the recurrent-only keys",
            "test: the task's metric on the test split, percentile-bootstrap 95 % interval "
            "over test examples (sequences, windows, sentences or blocks of text)",
            "train: the train stage's fit; wall: the whole `dvc repro benchmark` run",
        ],
    }
    scaling_result = {
        "title": f"Sequence length: {longest} at 1x, 4x and 16x its longest training sequence",
        "command": command,
        "commit": comparison["commit"],
        "machine": comparison["machine"],
        "columns": ["cell", "length", "batch-8 p50 (ms)", "peak memory (MiB)"],
        "rows": scaled,
        "notes": [
            "the exported fp32 graph of each cell's run above in ONNX Runtime, one thread, "
            f"batch 8, random inputs of the graph's dtype; median of {args.calls} calls; memory: "
            "peak RSS during the calls over the RSS with the session loaded, each length in a "
            "fresh process",
        ],
    }
    print(json.dumps([comparison, scaling_result], indent=1))
    if not args.no_write:
        write_result(comparison, args.output)
        write_result(scaling_result, args.output.with_name(f"{args.output.stem}_scaling.json"))


if __name__ == "__main__":
    main()
