"""Generate docs/results.md from the pipeline's reports and the benchmarks' result files.

    .venv/bin/python benchmarks/results_table.py            # markdown on stdout
    .venv/bin/python benchmarks/results_table.py --write    # (re)write docs/results.md

Run it from the repository root after `make repro` (and after any benchmark that writes a
result file). It only reads files: nothing is measured here, and a missing report or result
file is skipped, never invented. The page states the git commit (short hash, "dirty" when
tracked files differ from it; docs/results.md itself does not count) and the machine
(platform, CPU count, memory from /proc/meminfo) this script ran on.

Sections:

1. **Default pipeline**: one table from `reports/*.json` (what `dvc repro` wrote: data, tuning,
   training, test metrics and baselines, ONNX parity, int8, latency, the release verdict), with
   the commit the pipeline ran at as recorded in `reports/release.json`'s lineage.
2. **Benchmarks**: one titled table per file `benchmarks/results/*.json` (sorted by file name).
   A benchmark script that wants its output on the page writes such a file, a JSON object with
   exactly these keys:

       {
         "title":   "Pipeline speed",                      # str: the section's heading
         "command": ".venv/bin/python benchmarks/x.py",    # str: what produced it
         "commit":  "325bf13",                             # str: git commit it ran at
         "machine": "x86_64, 2 CPUs, 7.8 GiB",             # str: where it ran
         "columns": ["stage", "wall (s)"],                 # [str]: the table's header
         "rows":    [["tune", 213.4], ["train", 33.5]],    # [[str | int | float | bool | null]]
         "notes":   ["each stage in its own process"]      # [str]: printed under the table
       }

   Every row has one cell per column; `null` prints as "—"; numbers print as written (round
   them in the benchmark). A file that breaks this schema stops the script with a message
   naming the file and the key. The folder may be absent: the section then says so.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

REPORTS = Path("reports")
BENCHMARK_RESULTS = Path("benchmarks/results")
OUTPUT = Path("docs/results.md")
COMMAND = ".venv/bin/python benchmarks/results_table.py --write"

RESULT_KEYS = {
    "title": str,
    "command": str,
    "commit": str,
    "machine": str,
    "columns": list,
    "rows": list,
    "notes": list,
}

METRIC_LABELS = {
    "accuracy": "accuracy",
    "f1_macro": "macro-F1",
    "ece": "ECE (15 bins)",
    "roc_auc": "ROC AUC",
    "rmse": "RMSE",
    "mae": "MAE",
    "smape": "sMAPE",
    "mase": "MASE",
    "r2": "R²",
}


class ResultFileError(ValueError):
    """A benchmark result file that does not follow the schema in this module's docstring."""


# --- where it came from -------------------------------------------------------------------


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(["git", *args], capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return done.stdout.strip()


def commit_line(worktree: bool = True) -> str:
    """HEAD's short hash and date; with `worktree`, whether this checkout's tracked files
    differ from it (a benchmark that clones HEAD measures HEAD itself). The results files
    do not count: a benchmark rewriting its own (after each set, say) measured the commit."""
    short = _git("rev-parse", "--short", "HEAD")
    if short is None:
        return "unknown (not a git checkout)"
    date = _git("log", "-1", "--format=%cd", "--date=short") or "?"
    changed = worktree and _git(
        "status",
        "--porcelain",
        "--untracked-files=no",
        "--",
        ".",
        f":(exclude){OUTPUT}",
        f":(exclude){BENCHMARK_RESULTS}",
    )
    dirty = ", dirty (tracked files differ from the commit)" if changed else ""
    return f"`{short}` ({date}){dirty}"


def _memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024**2
    except (OSError, ValueError, IndexError):
        return None
    return None


def _cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        return None
    return None


def machine_line() -> str:
    parts = [f"{platform.system()} {platform.release()} {platform.machine()}"]
    cpu = _cpu_model()
    parts.append(f"{os.cpu_count()} CPUs" + (f" ({cpu})" if cpu else ""))
    memory = _memory_gib()
    if memory is not None:
        parts.append(f"{memory:.1f} GiB memory")
    parts.append(f"Python {platform.python_version()}")
    return ", ".join(parts)


# --- section 1: the default pipeline ------------------------------------------------------


def _load(name: str) -> dict[str, Any] | None:
    path = REPORTS / name
    return json.loads(path.read_text()) if path.is_file() else None


def _metric_label(name: str) -> str:
    return METRIC_LABELS.get(name, name)


def rows() -> list[tuple[str, str]]:
    """(what, value) pairs for the default pipeline's table, from whichever reports exist."""
    out: list[tuple[str, str]] = []
    data = _load("data.json")
    if data:
        described = (
            f"{data['source']}: {data['n_train']} train / {data['n_val']} val / "
            f"{data['n_test']} test, {data['n_features']} channels"
        )
        if data.get("n_classes"):
            described += f", {data['n_classes']} classes"
        out.append(("data", described))
    tune = _load("tune.json")
    if tune:
        out.append(
            (
                "tuning",
                f"{tune['n_trials']} trials ({tune['complete']} complete, "
                f"{tune['pruned']} pruned), best {tune['metric']} "
                f"{tune['best_value']:.4f}, {tune['wall_s']:.0f} s",
            )
        )
    train = _load("train.json")
    if train:
        out.append(
            (
                "training",
                f"best {train['monitor']} {train['best_score']:.4f} at epoch "
                f"{train['best_epoch']} of {train['epochs_run']}, "
                f"{train['n_parameters']:,} parameters, {train['wall_s']:.0f} s",
            )
        )
    release = _load("release.json")
    headline = (release or {}).get("checks", {})
    metrics = _load("metrics.json")
    if metrics:
        for name, value in metrics["test"].items():
            if name == "n":
                continue
            shown = f"{value:.4f}"
            if f"test/{name}" in headline:
                shown = f"**{shown}**"
            out.append((f"test {_metric_label(name)}", shown))
        if "n" in metrics["test"]:
            out.append(("test examples", f"{metrics['test']['n']}"))
        for baseline, scores in (metrics.get("baseline") or {}).items():
            listed = ", ".join(f"{_metric_label(k)} {v:.4f}" for k, v in scores.items())
            out.append((f"baseline {baseline} (same split)", listed))
    export = _load("export.json")
    if export:
        parity = export["parity"]
        shown = f"max abs diff {parity['max_abs_diff']:.2e}"
        if parity.get("argmax_agreement") is not None:
            shown += f", argmax agreement {parity['argmax_agreement']:.2%}"
        out.append(("ONNX parity", shown))
        int8 = export.get("int8") or {}
        if int8.get("available"):
            out.append(
                (
                    f"int8 {int8.get('metric', 'metric')} drop vs fp32",
                    f"{int8['drop'] + 0.0:+.4f} (fp32 {int8['fp32']:.4f}, int8 {int8['int8']:.4f})",
                )
            )
        else:
            out.append(("int8", f"not available: {int8.get('reason', 'not reported')}"))
    latency = _load("latency.json")
    if latency:
        runtimes = [r for r in ("torch", "onnx_fp32", "onnx_int8") if latency.get(r)]
        for quantile in ("p50", "p95"):
            shown = ", ".join(f"{r} {latency[r][f'{quantile}_ms']:.3f}" for r in runtimes)
            out.append((f"batch-1 {quantile} latency (ms)", shown))
        batch = latency[runtimes[0]].get("throughput_batch")
        shown = ", ".join(f"{r} {latency[r]['throughput']:,.0f}" for r in runtimes)
        out.append((f"throughput at batch {batch} (sequences/s)", shown))
        if "speedup_p50" in latency:
            out.append(("ONNX fp32 speed-up over PyTorch (p50)", f"{latency['speedup_p50']:.2f}×"))
        settings = latency.get("settings") or {}
        if settings:
            method = (
                f"each runtime in its own process, {settings.get('threads')} thread(s), "
                f"{settings.get('n_calls')} batch-1 calls after {settings.get('warmup')} warm-up"
            )
            if settings.get("cpu_count"):
                method += f", on a {settings['cpu_count']}-CPU machine"
            out.append(("latency method", method))
    if release:
        failed = [n for n, c in release["checks"].items() if not c["passed"]]
        verdict = "passed" if release["passed"] else f"failed ({', '.join(failed)})"
        out.append(
            (
                "release gate",
                f"{verdict}: {', '.join(release['checks'])}; "
                f"{release['model_name']} v{release['version']}",
            )
        )
    return out


def pipeline_section() -> list[str]:
    lines = ["## Default pipeline (`make repro`)", ""]
    found = rows()
    if not found:
        return [*lines, "No `reports/*.json` found: run `make repro` first.", ""]
    release = _load("release.json") or {}
    lineage = release.get("lineage", {})
    ran_at = lineage.get("git.commit")
    if ran_at:
        dirty = " with uncommitted changes" if lineage.get("git.dirty") == "true" else ""
        lines += [
            f"From `reports/*.json` as committed. The pipeline ran at commit `{ran_at[:7]}`"
            f"{dirty} (`reports/release.json`, lineage); of the machine, the reports record "
            "only its CPU count (latency method below).",
            "",
        ]
    lines += ["| | default pipeline |", "|---|---|"]
    lines += [f"| {name} | {value} |" for name, value in found]
    return [*lines, ""]


# --- section 2: benchmark result files ----------------------------------------------------


def write_result(result: dict[str, Any], path: Path) -> None:
    """Write a benchmark's result (`title`, `command`, `commit`, `machine`, `columns`, `rows`,
    `notes`) where `benchmarks_section` reads it, and say so on stderr."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {path}", file=sys.stderr)


def load_result(path: Path) -> dict[str, Any]:
    """One benchmark result file, checked against the schema in the module docstring."""
    try:
        found = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ResultFileError(f"{path}: not readable JSON ({exc})") from exc
    if not isinstance(found, dict):
        raise ResultFileError(f"{path}: expected a JSON object")
    missing = sorted(set(RESULT_KEYS) - set(found))
    extra = sorted(set(found) - set(RESULT_KEYS))
    if missing or extra:
        raise ResultFileError(f"{path}: missing keys {missing}, unknown keys {extra}")
    for key, kind in RESULT_KEYS.items():
        if not isinstance(found[key], kind):
            raise ResultFileError(f"{path}: '{key}' must be a {kind.__name__}")
    if not all(isinstance(c, str) for c in found["columns"]):
        raise ResultFileError(f"{path}: 'columns' must be strings")
    if not all(isinstance(n, str) for n in found["notes"]):
        raise ResultFileError(f"{path}: 'notes' must be strings")
    width = len(found["columns"])
    for i, row in enumerate(found["rows"]):
        if not isinstance(row, list) or len(row) != width:
            raise ResultFileError(f"{path}: rows[{i}] must be a list of {width} cells")
        for cell in row:
            if cell is not None and not isinstance(cell, str | int | float | bool):
                raise ResultFileError(f"{path}: rows[{i}] holds a {type(cell).__name__}")
    return found


def _cell(value: Any) -> str:
    if value is None:
        return "—"
    return str(value).replace("|", "\\|").replace("\n", " ")


def result_table(result: dict[str, Any], source: Path) -> list[str]:
    lines = [
        f"### {result['title']}",
        "",
        f"`{result['command']}` at commit {result['commit']} on {result['machine']} "
        f"(`{source.as_posix()}`).",
        "",
        "| " + " | ".join(_cell(c) for c in result["columns"]) + " |",
        "|" + "---|" * len(result["columns"]),
    ]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in result["rows"]]
    if result["notes"]:
        lines += ["", *(f"- {note}" for note in result["notes"])]
    return [*lines, ""]


def benchmarks_section() -> list[str]:
    lines = ["## Benchmarks", ""]
    files = sorted(BENCHMARK_RESULTS.glob("*.json")) if BENCHMARK_RESULTS.is_dir() else []
    if not files:
        return [
            *lines,
            f"No benchmark result files under `{BENCHMARK_RESULTS.as_posix()}/` yet; a benchmark "
            "that writes one (schema in `benchmarks/results_table.py`) adds a table here.",
            "",
        ]
    for path in files:
        lines += result_table(load_result(path), path)
    return lines


# --- the page -----------------------------------------------------------------------------


def page() -> str:
    lines = [
        "# Results",
        "",
        "<!-- Generated by benchmarks/results_table.py: do not edit by hand. -->",
        "",
        f"Generated by `{COMMAND}` from `reports/*.json` and "
        f"`{BENCHMARK_RESULTS.as_posix()}/*.json`; run that command to regenerate it.",
        "",
        f"- commit: {commit_line()}",
        f"- machine: {machine_line()}",
        "",
        "How the defaults behind these figures were chosen, and figures that can no longer be "
        "regenerated from this commit, are in [decisions.md](decisions.md).",
        "",
    ]
    lines += pipeline_section()
    lines += benchmarks_section()
    return "\n".join(lines).rstrip("\n") + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help=f"write {OUTPUT} instead of stdout")
    args = parser.parse_args(argv)
    try:
        text = page()
    except ResultFileError as exc:
        print(f"results_table: error: {exc}", file=sys.stderr)
        return 2
    if args.write:
        OUTPUT.parent.mkdir(parents=True, exist_ok=True)
        OUTPUT.write_text(text)
        print(f"wrote {OUTPUT}")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
