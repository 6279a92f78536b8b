"""benchmark: batch-1 latency and throughput of PyTorch eager vs ONNX fp32 vs ONNX int8.

    seqops benchmark [--params params.yaml]

Each runtime is timed in a fresh process of its own (`python -m seqops.latency`) with fixed
intra-op threads (`benchmark.threads`), one inter-op thread and spinning disabled. Writes
`reports/latency.json` (per runtime `p50_ms`, `p95_ms`, `p99_ms`, `throughput`;
`speedup_p50` of ONNX fp32 over torch, and of int8 over fp32), the plot
`reports/plots/latency.png`, and the figures as metrics of the training run. Timings are not
reproducible, so DVC does not cache these outputs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from seqops import onnx_contract as contract
from seqops import outputs
from seqops.config import BenchmarkConfig, load_config
from seqops.contracts import LatencyReport, RuntimeLatency
from seqops.errors import SeqopsError
from seqops.layout import Layout


class BenchmarkError(SeqopsError):
    """A runtime's timing process failed or its model is missing."""


def _worker_env(threads: int) -> dict[str, str]:
    env = dict(os.environ)
    # Pin every threading layer a runtime might use, and stop OpenMP workers spinning
    # between calls (they would steal the core the next call runs on).
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[var] = str(threads)
    env["OMP_WAIT_POLICY"] = "PASSIVE"
    return env


def time_runtime(
    runtime: str, models: Path, processed: Path, cfg: BenchmarkConfig
) -> dict[str, Any]:
    """Run `seqops.latency` for one runtime in its own process; its JSON result."""
    cmd = [
        sys.executable, "-m", "seqops.latency",
        "--runtime", runtime,
        "--models", str(models),
        "--processed", str(processed),
        "--n-calls", str(cfg.n_calls),
        "--warmup", str(cfg.warmup),
        "--threads", str(cfg.threads),
        "--throughput-batch", str(cfg.throughput_batch),
        "--throughput-calls", str(cfg.throughput_calls),
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, env=_worker_env(cfg.threads))
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-5:])
        raise BenchmarkError(f"timing {runtime} failed (exit {proc.returncode}):\n{tail}")
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def benchmark(models: Path, processed: Path, cfg: BenchmarkConfig) -> LatencyReport:
    """Time every runtime whose model exists and return the latency report."""
    for needed in (models / Layout().checkpoint.name, models / contract.MODEL_FILE):
        if not needed.is_file():
            raise BenchmarkError(f"{needed}: not found (run `seqops train` and `seqops export`)")
    names = ["torch", "onnx_fp32"]
    if (models / contract.INT8_FILE).is_file():
        names.append("onnx_int8")
    report: dict[str, Any] = {rt: time_runtime(rt, models, processed, cfg) for rt in names}
    report["speedup_p50"] = report["torch"]["p50_ms"] / report["onnx_fp32"]["p50_ms"]
    if "onnx_int8" in report:
        report["int8_speedup_p50_vs_fp32"] = (
            report["onnx_fp32"]["p50_ms"] / report["onnx_int8"]["p50_ms"]
        )
    report["settings"] = {
        "threads": cfg.threads,
        "n_calls": cfg.n_calls,
        "warmup": cfg.warmup,
        "throughput_batch": cfg.throughput_batch,
        "cpu_count": os.cpu_count(),
    }
    return LatencyReport.model_validate(report)


def latency_png(report: LatencyReport, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    timed = runtimes(report)
    fig, (lat, thr) = plt.subplots(1, 2, figsize=(9, 3.5))
    width = 0.25
    for k, pct in enumerate(("p50_ms", "p95_ms", "p99_ms")):
        xs = [i + (k - 1) * width for i in range(len(timed))]
        lat.bar(xs, [getattr(v, pct) for v in timed.values()], width, label=pct.split("_")[0])
    lat.set_xticks(range(len(timed)), list(timed))
    lat.set_ylabel("ms per call (batch 1)")
    lat.set_title("latency")
    lat.legend()
    thr.bar(list(timed), [v.throughput for v in timed.values()], color="tab:gray")
    thr.set_ylabel(f"sequences/s (batch {report.settings['throughput_batch']})")
    thr.set_title("throughput")
    fig.tight_layout()
    with outputs.atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)


def runtimes(report: LatencyReport) -> dict[str, RuntimeLatency]:
    """The timed runtimes, in the order torch, ONNX fp32, ONNX int8."""
    timed = {"torch": report.torch, "onnx_fp32": report.onnx_fp32, "onnx_int8": report.onnx_int8}
    return {name: v for name, v in timed.items() if v is not None}


def main(params: str | Path = "params.yaml", layout: Layout | None = None) -> LatencyReport:
    import mlflow

    from seqops import tracking

    layout = layout or Layout()
    cfg = load_config(params)
    numbers = layout.stage_metrics("benchmark")
    tracking.preflight_run(layout.run_file)  # before anything is deleted
    outputs.remove(layout.latency_report, layout.latency_plot, numbers)
    report = benchmark(layout.models, layout.processed, cfg.benchmark)
    report.write(layout.latency_report, numbers)
    latency_png(report, layout.latency_plot)
    timed = runtimes(report)
    with tracking.resume_run(layout.run_file):
        metrics = {
            f"latency/{rt}/{key}": getattr(v, key)
            for rt, v in timed.items()
            for key in ("p50_ms", "p95_ms", "p99_ms", "throughput")
        }
        metrics["latency/speedup_p50"] = report.speedup_p50
        mlflow.log_metrics(metrics)
        mlflow.log_artifact(str(layout.latency_report), "reports")
        mlflow.log_artifact(str(layout.latency_plot), "plots")
    summary = ", ".join(f"{rt} p50 {v.p50_ms:.3f} ms" for rt, v in timed.items())
    print(f"benchmark: {summary}; ONNX fp32 {report.speedup_p50:.2f}x faster than torch")
    return report
