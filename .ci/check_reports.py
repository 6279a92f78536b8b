"""Assertions CI makes on the pipeline's own reports (docs/architecture.md) after `make repro`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

#: JapaneseVowels with default params: published DTW 1-NN 0.949, FCN 0.993.
MIN_TEST_ACCURACY = 0.97


def main() -> int:
    reports = Path("reports")
    failures: list[str] = []
    metrics = json.loads((reports / "metrics.json").read_text())
    accuracy = metrics["test"]["accuracy"]
    print(f"test accuracy {accuracy:.4f} (floor {MIN_TEST_ACCURACY})")
    if accuracy < MIN_TEST_ACCURACY:
        failures.append(f"test accuracy {accuracy:.4f} < {MIN_TEST_ACCURACY}")
    data = json.loads((reports / "data.json").read_text())
    if (data["n_train"], data["n_val"], data["n_test"]) != (216, 54, 370):
        failures.append(f"unexpected split sizes in data.json: {data}")
    for name in ("train.json", "plots/learning_curves.csv", "plots/evaluate/confusion.csv"):
        if not (reports / name).is_file():
            failures.append(f"reports/{name} missing")
    tune = json.loads((reports / "tune.json").read_text())
    print(f"tuning: {tune['complete']} complete, {tune['pruned']} pruned, {tune['wall_s']} s")
    if tune["pruned"] < 1:
        failures.append("tuning pruned no trial")
    export = json.loads((reports / "export.json").read_text())
    if not export["parity"]["passed"] or export["parity"]["max_abs_diff"] > 1e-5:
        failures.append(f"ONNX parity failed: {export['parity']}")
    latency = json.loads((reports / "latency.json").read_text())
    # Reported, not asserted: timings on a shared CI machine are noisy (the gate has a budget).
    print(f"ONNX fp32 p50 speed-up over PyTorch eager: {latency['speedup_p50']:.2f}x")
    release = json.loads((reports / "release.json").read_text())
    if not release["passed"]:
        failures.append(f"release gate failed: {release['checks']}")
    card = Path("models/MODEL_CARD.md").read_text()
    for section in (
        "## Data",
        "## Params",
        "## Tuning",
        "## Test metrics",
        "## Release gate",
        "## Lineage",
    ):
        if section not in card:
            failures.append(f"model card lacks {section!r}")
    for failure in failures:
        print(f"FAIL: {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
