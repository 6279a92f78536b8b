"""Print the README's results table from the pipeline's own reports (run after `make repro`).

    .venv/bin/python benchmarks/results_table.py     # markdown on stdout

Every figure comes from `reports/*.json`; a report that is missing is skipped, not invented.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

REPORTS = Path("reports")


def _load(name: str) -> dict[str, Any] | None:
    path = REPORTS / name
    return json.loads(path.read_text()) if path.is_file() else None


def rows() -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    data = _load("data.json")
    if data:
        out.append(
            (
                "data",
                f"{data['source']}: {data['n_train']} train / {data['n_val']} val / "
                f"{data['n_test']} test, {data['n_features']} channels, "
                f"{data['n_classes']} classes",
            )
        )
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
                f"{train['n_parameters']:,} parameters",
            )
        )
    metrics = _load("metrics.json")
    if metrics:
        test = metrics["test"]
        out.append(("test accuracy", f"**{test['accuracy']:.4f}**"))
        out.append(("test macro-F1", f"{test['f1_macro']:.4f}"))
        out.append(("test ECE (15 bins)", f"{test['ece']:.4f}"))
    export = _load("export.json")
    if export:
        parity = export["parity"]
        out.append(
            (
                "ONNX parity",
                f"max abs diff {parity['max_abs_diff']:.2e}, "
                f"argmax agreement {parity['argmax_agreement']:.2%}",
            )
        )
        int8 = export.get("int8") or {}
        if int8.get("available"):
            out.append(("int8 accuracy drop vs fp32", f"{int8['drop']:+.4f}"))
        else:
            out.append(("int8", f"not available: {int8.get('reason', 'not reported')}"))
    latency = _load("latency.json")
    if latency:
        runtimes = [r for r in ("torch", "onnx_fp32", "onnx_int8") if r in latency]
        p50 = ", ".join(f"{r} {latency[r]['p50_ms']:.3f}" for r in runtimes)
        out.append(("batch-1 p50 latency (ms)", p50))
        if "speedup_p50" in latency:
            out.append(("ONNX fp32 speed-up over PyTorch (p50)", f"{latency['speedup_p50']:.2f}×"))
    return out


def main() -> None:
    print("| | default pipeline (`make repro`) |")
    print("|---|---|")
    for name, value in rows():
        print(f"| {name} | {value} |")


if __name__ == "__main__":
    main()
