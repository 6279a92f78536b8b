"""Every bundled UCR/UEA classification set against MiniRocket: win / tie / loss, mean rank, time.

    .venv/bin/python benchmarks/quality_ucr.py                      # the default params
    .venv/bin/python benchmarks/quality_ucr.py --set 'tune.choose={}' \\
        --output benchmarks/results/quality_ucr_recurrent.json      # the recurrent path alone
    .venv/bin/python benchmarks/quality_ucr.py --only GunPoint ArrowHead --no-write

The sets are those sktime's wheel ships (`seqops.data.sources.bundled_datasets`) whose labels
are classes and whose official training split holds at most `--max-train` (500) sequences:
data nobody tuned the defaults for, beside the README's five. Each runs `dvc repro evaluate`
with the default params (`data.dataset` set, `--set` on top) in a scratch copy of the
repository (`quality.scratch_run`); the evaluate stage fits MiniRocket on the same training
split and scores it on the same official test split.

Per set: test accuracy of seqops and MiniRocket; McNemar's exact test on the paired test
predictions (the release gate's test; a loss is significant at p < 0.05, a win likewise); the
validation accuracy and loss of the trained model (`reports/train.json`: what a choice between
configurations may look at); the wall time. Summary: wins / ties / losses by test accuracy,
significant wins / losses, mean rank of the two (1 = better; a tie 1.5 each). Writes
`benchmarks/results/quality_ucr.json` for `benchmarks/results_table.py` unless `--no-write`.
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
import pandas as pd
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from quality import Dataset, scratch_run
from results_table import commit_line, machine_line, write_result

REPO = Path(__file__).resolve().parents[1]
OUTPUT = REPO / "benchmarks" / "results" / "quality_ucr.json"


def classification_sets(max_train: int) -> list[tuple[str, int, int]]:
    """(name, training sequences, longest) of each bundled set with class labels and at most
    `max_train` training sequences (a regression set's targets are mostly distinct numbers)."""
    from seqops.data.sources import bundled_datasets, load_bundled

    found = []
    for name in bundled_datasets():
        train = load_bundled(name, "train")
        if len(train.labels) > max_train or len(set(train.labels)) > len(train.labels) / 2:
            continue
        found.append((name, len(train.labels), max(len(s) for s in train.sequences)))
    return found


def score(reports: Path) -> dict[str, Any]:
    from seqops.tasks import read_metrics
    from seqops.tasks.parts.release import get_release

    metrics = read_metrics(reports / "metrics.json")
    predictions = pd.read_csv(reports / "predictions.csv")
    scores = get_release(metrics.task).paired_scores(metrics, predictions)
    ours, theirs = scores.model, scores.baselines["minirocket"]
    p_worse, worse, _ = scores.worse_than("minirocket")
    train = json.loads((reports / "train.json").read_text())
    choice = json.loads((reports / "tune.json").read_text()).get("choice") or {}
    return {
        "seqops": scores.value(ours),
        "minirocket": scores.value(theirs),
        "p": p_worse,
        "significant": p_worse < 0.05,
        "worse": worse,
        "val_accuracy": train["best"].get("val/accuracy"),
        "val_loss": train["best"].get("val/loss"),
        "chosen": ", ".join(f"{path.split('.')[-1]}={c['chosen']}" for path, c in choice.items()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--only", nargs="+", help="set names, run in this order (default: every bundled set)"
    )
    parser.add_argument("--max-train", type=int, default=500)
    parser.add_argument("--set", nargs="*", default=[], help="dotted.key=value over the params")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the scratch copies")
    parser.add_argument(
        "--merge",
        type=Path,
        help="an earlier results file: its rows of sets this run does not run are kept (and "
        "named in the notes with that file's commit); the summary counts them",
    )
    args = parser.parse_args()
    overrides = {k: yaml.safe_load(v) for k, v in (item.split("=", 1) for item in args.set)}
    sets = classification_sets(args.max_train)
    if args.only:  # in the order given
        by_name = {s[0]: s for s in sets}
        unknown = [name for name in args.only if name not in by_name]
        if unknown:
            parser.error(f"--only {' '.join(unknown)}: not among {', '.join(by_name)}")
        sets = [by_name[name] for name in args.only]

    rows: list[list[Any]] = []
    kept = _kept_rows(args.merge, [s[0] for s in sets])
    for name, n_train, longest in sets:
        work = Path(tempfile.mkdtemp(prefix=f"seqops-ucr-{name}."))
        start = time.perf_counter()
        try:
            dataset = Dataset(name, "params.yaml", {"data": {"dataset": name}})
            found = score(scratch_run(dataset, work, overrides))
        finally:
            if args.keep:
                print(f"kept {work}", file=sys.stderr)
            else:
                shutil.rmtree(work, ignore_errors=True)
        wall = time.perf_counter() - start
        gap = found["seqops"] - found["minirocket"]
        verdict = "tie" if gap == 0 else ("win" if gap > 0 else "loss")
        if found["significant"]:
            verdict += " (significant)"
        rows.append([
            name, n_train, longest, round(found["seqops"], 4), round(found["minirocket"], 4),
            round(gap, 4), float(f"{found['p']:.3g}"), verdict,
            None if found["val_accuracy"] is None else round(found["val_accuracy"], 4),
            found["chosen"] or "—", round(wall),
        ])  # fmt: skip
        print(rows[-1], file=sys.stderr, flush=True)
        # Written after each set: a run stopped part-way keeps what it measured.
        result = summary(args, rows, kept, [s[0] for s in sets[len(rows) :]])
        if not args.no_write:
            write_result(result, args.output)
    print(json.dumps(result, indent=1))


def _kept_rows(path: Path | None, running: list[str]) -> tuple[list[list[Any]], str]:
    """The rows of `path` (a results file of this benchmark) for sets not in `running`, and
    the commit that file names; none without `path`."""
    if path is None:
        return [], ""
    earlier = json.loads(path.read_text())
    return [row for row in earlier["rows"] if row[0] not in running], earlier["commit"]


def summary(
    args: argparse.Namespace,
    run: list[list[Any]],
    kept: tuple[list[list[Any]], str],
    left: list[str],
) -> dict[str, Any]:
    """The results file for the sets run so far (`left`: those not run yet), with `kept`
    rows of an earlier run (`--merge`) after them."""
    rows = [*run, *kept[0]]
    gaps = np.array([row[3] - row[4] for row in rows])
    wins, ties, losses = int((gaps > 0).sum()), int((gaps == 0).sum()), int((gaps < 0).sum())
    significant = ["(significant)" in row[7] for row in rows]
    significant_losses = sum(s and g < 0 for s, g in zip(significant, gaps, strict=True))
    significant_wins = sum(s and g > 0 for s, g in zip(significant, gaps, strict=True))
    rank = float(np.mean(np.where(gaps > 0, 1.0, np.where(gaps == 0, 1.5, 2.0))))
    settings = ", ".join(args.set) or "the default params"
    notes = [
        f"{settings}; official splits, the validation split carved from the training one",
        f"seqops against MiniRocket: {wins} wins / {ties} ties / {losses} losses by test "
        f"accuracy; significant (McNemar exact, p < 0.05): {significant_wins} wins, "
        f"{significant_losses} losses of {len(rows)} sets; mean rank of seqops "
        f"{rank:.2f} (MiniRocket {3 - rank:.2f})",
        "chosen (CV): the values `tune.choose` fixed by cross-validation on train + val",
    ]
    if kept[0]:
        names = ", ".join(row[0] for row in kept[0])
        notes.append(f"rows kept from {args.merge} (commit {kept[1]}), not run again: {names}")
    if left:
        notes.append(f"not run yet (the run was stopped or is going on): {', '.join(left)}")
    return {
        "title": "Every bundled UCR/UEA classification set against MiniRocket",
        "command": " ".join([".venv/bin/python", "benchmarks/quality_ucr.py", *sys.argv[1:]]),
        "commit": commit_line(),
        "machine": machine_line(),
        "columns": [
            "set",
            "train",
            "longest",
            "seqops",
            "MiniRocket",
            "difference",
            "McNemar p",
            "verdict",
            "val accuracy",
            "chosen (CV)",
            "wall (s)",
        ],
        "rows": rows,
        "notes": notes,
    }


if __name__ == "__main__":
    main()
