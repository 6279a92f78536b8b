"""Two configurations compared by k-fold cross-validation on each set's training split only.

    R=benchmarks/results/cv                                        # both may run side by side
    .venv/bin/python benchmarks/cv_choice.py --name recurrent --output $R/recurrent.json
    .venv/bin/python benchmarks/cv_choice.py --name kernels --set model.kernel_features=10000 \\
        --output $R/kernels.json
    .venv/bin/python benchmarks/cv_choice.py --compare $R/recurrent.json $R/kernels.json

A default may only be chosen on figures that never saw a test split, and the validation splits
of small UCR/UEA sets (7 to 54 sequences) rarely separate two configurations: accuracy 1.0 on
both is common. Here every bundled classification set of up to `--max-train` training
sequences (`quality_ucr.classification_sets`) is prepared with the default params (`dvc repro
prepare` in a scratch copy), its train + val splits are pooled and cut into `--folds` seeded
stratified folds (the same folds `tune.folds` trains on), and the params (tuning off, `--set`
on top) train once per fold. Per fold: the kept epoch's validation accuracy and loss. The test
split is never read.

`--compare` writes one table (`benchmarks/results/cv_choice.json` for the results page): per
set the mean cross-validated accuracy and loss of each configuration, and which one the rule
fixed before any run prefers: higher mean accuracy, then lower mean loss (an equal count of
right answers is a tie).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from quality import Dataset, scratch_run
from quality_ucr import classification_sets
from results_table import commit_line, machine_line, write_result

REPO = Path(__file__).resolve().parents[1]
OUTPUT = REPO / "benchmarks" / "results" / "cv_choice.json"


def cross_validate(name: str, overrides: dict[str, Any], folds: int) -> dict[str, Any]:
    """The mean and per-fold kept-epoch validation accuracy / loss of the default params with
    `overrides` (tuning off) over `folds` stratified folds of set `name`'s train + val."""
    from seqops.config import load_config
    from seqops.model.training import fit
    from seqops.tuning.trial import write_folds

    work = Path(tempfile.mkdtemp(prefix=f"seqops-cv-{name}."))
    try:
        dataset = Dataset(name, "params.yaml", {"data": {"dataset": name}})
        scratch_run(dataset, work, None, "prepare")
        cfg = load_config(work / "params.yaml", overrides)
        processed = work / "data" / "processed"
        accuracies, losses, walls = [], [], []
        for i, directory in enumerate(write_folds(processed, work / "folds", folds, cfg.seed)):
            start = time.perf_counter()
            result = fit(cfg, directory, work / f"checkpoints-{i}", progress_bar=False)
            walls.append(time.perf_counter() - start)
            kept = next(row for row in result.history if row.get("epoch") == result.best_epoch)
            accuracies.append(kept["val/accuracy"])
            losses.append(kept["val/loss"])
            print(f"{name} fold {i}: accuracy {accuracies[-1]:.4f} loss {losses[-1]:.4f}",
                  file=sys.stderr, flush=True)  # fmt: skip
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {
        "accuracy": float(np.mean(accuracies)),
        "loss": float(np.mean(losses)),
        "fold_accuracy": accuracies,
        "fold_loss": losses,
        "wall_s": float(np.sum(walls)),
    }


def compare(first: Path, second: Path, output: Path | None) -> dict[str, Any]:
    """One table of two `cross_validate` runs over the same sets and folds."""
    a, b = (json.loads(path.read_text()) for path in (first, second))
    if a["folds"] != b["folds"] or set(a["sets"]) != set(b["sets"]):
        raise SystemExit(f"{first} and {second} cover other sets or folds: not comparable")
    rows, prefers = [], {a["name"]: 0, b["name"]: 0}
    for name in a["sets"]:
        x, y = a["sets"][name], b["sets"][name]
        # Accuracy rounded: equal counts of right answers are a tie, whatever the float sums.
        better = (
            x
            if (round(x["accuracy"], 6), -x["loss"]) >= (round(y["accuracy"], 6), -y["loss"])
            else y
        )
        winner = a["name"] if better is x else b["name"]
        prefers[winner] += 1
        rows.append([
            name, round(x["accuracy"], 4), round(x["loss"], 4), round(y["accuracy"], 4),
            round(y["loss"], 4), winner, round(x["wall_s"]), round(y["wall_s"]),
        ])  # fmt: skip
    result = {
        "title": f"Cross-validated choice on the training splits: {a['name']} or {b['name']}",
        "command": " ".join([".venv/bin/python", "benchmarks/cv_choice.py", *sys.argv[1:]]),
        "commit": commit_line(),
        "machine": machine_line(),
        "columns": [
            "set",
            f"{a['name']}: CV accuracy",
            f"{a['name']}: CV loss",
            f"{b['name']}: CV accuracy",
            f"{b['name']}: CV loss",
            "preferred",
            f"{a['name']}: wall (s)",
            f"{b['name']}: wall (s)",
        ],
        "rows": rows,
        "notes": [
            f"{a['name']}: {a['settings']}; {b['name']}: {b['settings']}; the default params "
            f"otherwise, tuning off",
            f"{a['folds']} seeded stratified folds of train + val pooled; the kept epoch's "
            "validation accuracy and loss, mean over folds; no test split read",
            "preferred: higher mean accuracy, then lower mean loss; "
            + ", ".join(f"{k} on {v} of {len(rows)} sets" for k, v in prefers.items()),
        ],
    }
    print(json.dumps(result, indent=1))
    if output is not None:
        write_result(result, output)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", default="default", help="the configuration's name in tables")
    parser.add_argument("--set", nargs="*", default=[], help="dotted.key=value over the params")
    parser.add_argument("--only", nargs="*", help="set names (default: every bundled set)")
    parser.add_argument("--max-train", type=int, default=500)
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--output", type=Path, help="a run's JSON (the table's with --compare)")
    parser.add_argument("--compare", nargs=2, type=Path, metavar=("FIRST", "SECOND"))
    args = parser.parse_args()
    if args.compare:
        compare(*args.compare, args.output or OUTPUT)
        return
    overrides = {k: yaml.safe_load(v) for k, v in (item.split("=", 1) for item in args.set)}
    overrides["tune.enabled"] = False
    sets = [s for s in classification_sets(args.max_train) if not args.only or s[0] in args.only]
    run: dict[str, Any] = {
        "name": args.name,
        "settings": ", ".join(args.set) or "the default params",
        "folds": args.folds,
        "sets": {},
    }
    for name, _, _ in sets:
        run["sets"][name] = cross_validate(name, overrides, args.folds)
        if args.output:  # after each set, so a long run can be followed and resumed by hand
            args.output.write_text(json.dumps(run, indent=1))
    print(json.dumps(run, indent=1))


if __name__ == "__main__":
    main()
