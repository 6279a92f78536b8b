"""Assertions CI makes on the pipeline's own reports (design.md §8) after `make repro`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

#: JapaneseVowels with default params (issue 2): published DTW 1-NN 0.949, FCN 0.993.
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
    for name in ("train.json", "plots/learning_curves.csv", "plots/confusion.csv"):
        if not (reports / name).is_file():
            failures.append(f"reports/{name} missing")
    for failure in failures:
        print(f"FAIL: {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
