"""BasicMotions segments, test scores of the sliding-window baseline for per-step labels of
numeric series (the floor a sequence-labeling model of series has to beat).

    .venv/bin/python benchmarks/labeling_series_baseline.py
    .venv/bin/python benchmarks/labeling_series_baseline.py --no-write

Builds `series.basic_motions_segments(seed)` (16 series of 5 recordings: 8 from sktime's
train recordings, 8 from its test ones), holds 2 train series out for validation, fits
`series.fit_window_baseline` (one classifier per window; window and majority-filter length
chosen on validation segment F1), scores the chosen model once on the test series, prints
the result as JSON and writes `benchmarks/results/labeling_series_baseline.json` for
`benchmarks/results_table.py` unless `--no-write`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from results_table import commit_line, machine_line, write_result
from seqops.tasks.sequence_labeling.scoring import EntityCounts
from seqops.tasks.sequence_labeling.series import (
    BASIC_MOTIONS_FEATURES,
    MIN_IOU,
    basic_motions_segments,
    fit_window_baseline,
    hold_out,
    predict,
    read_step_labels,
    score_series,
)

REPO = Path(__file__).resolve().parents[1]
OUTPUT = REPO / "benchmarks" / "results" / "labeling_series_baseline.json"

#: Train series held out to choose the window and the smoothing.
N_VAL = 2


def row(
    name: str, steps: int, step_score: float, strict: EntityCounts, overlap: EntityCounts
) -> list[str | int | float]:
    """One table row: gold steps and a step score, then segment counts and F1 under both
    matchings, rounded to 4 places."""
    return [
        name,
        steps,
        round(step_score, 4),
        overlap.gold,
        overlap.predicted,
        overlap.correct,
        round(overlap.f1, 4),
        strict.correct,
        round(strict.f1, 4),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0, help="series order, split and classifier")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    frames = basic_motions_segments(seed=args.seed)
    train, test = (
        read_step_labels(frames[split], "id", "time", "label", BASIC_MOTIONS_FEATURES)
        for split in ("train", "test")
    )
    fit, val = hold_out(train, n_val=N_VAL, seed=args.seed)
    start = time.perf_counter()
    model = fit_window_baseline(fit, val, seed=args.seed)
    search_s = time.perf_counter() - start
    chosen = next(
        t for t in model.trials if (t.window, t.smoothing) == (model.window, model.smoothing)
    )
    gold = [labels for _, labels in test]
    scores = score_series(gold, predict(model, [values for values, _ in test]))
    unsmoothed = next(t for t in model.trials if (t.window, t.smoothing) == (model.window, 1))
    n_steps = sum(len(labels) for labels in gold)

    result = {
        "title": "Sequence labeling of series: sliding-window baseline on BasicMotions segments "
        "(test)",
        "command": ".venv/bin/python benchmarks/labeling_series_baseline.py",
        "commit": commit_line(),
        "machine": machine_line(),
        "columns": [
            "label",
            "gold steps",
            "step F1 (all: accuracy)",
            "gold segments",
            "predicted segments",
            f"correct (IoU ≥ {MIN_IOU})",
            f"segment F1 (IoU ≥ {MIN_IOU})",
            "correct (strict)",
            "segment F1 (strict)",
        ],
        "rows": [row("all (micro)", n_steps, scores.step_accuracy, scores.strict, scores.overlap)]
        + [
            row(label, s.steps.gold, s.steps.f1, s.strict, s.overlap)
            for label, s in scores.per_label.items()
        ],
        "notes": [
            f"per-step accuracy {scores.step_accuracy:.4f} over {n_steps} test steps (chance "
            "about 0.25: 4 activities in equal shares)",
            f"headline segment F1 (IoU ≥ {MIN_IOU}) {scores.segment_f1:.4f} (precision "
            f"{scores.overlap.precision:.4f}, recall {scores.overlap.recall:.4f}); strict "
            f"(exact start and end) {scores.strict.f1:.4f}: a boundary a step off fails it, so "
            "strict F1 stays near zero for every window and filter and the headline is IoU",
            f"chosen window {model.window} steps, majority filter {model.smoothing} steps "
            f"(validation segment F1 {chosen.val_segment_f1:.4f}, step accuracy "
            f"{chosen.val_step_accuracy:.4f}; unfiltered {unsmoothed.val_segment_f1:.4f} and "
            f"{unsmoothed.val_step_accuracy:.4f}); validation (segment F1, step accuracy) per "
            "(window, filter): "
            + ", ".join(
                f"({t.window}, {t.smoothing}) {t.val_segment_f1:.3f}/{t.val_step_accuracy:.3f}"
                for t in model.trials
            ),
            f"fit of the chosen window's classifier {chosen.fit_s:.1f} s; the whole search "
            f"({len({t.window for t in model.trials})} fits of HistGradientBoostingClassifier, "
            f"validation scoring included) {search_s:.1f} s, one process",
            f"data: BasicMotions (sktime), seed {args.seed}: {len(fit)} fit / {len(val)} "
            f"validation series from sktime's 40 train recordings, {len(test)} test series "
            "from its 40 test recordings, 5 recordings (500 steps at 10 Hz) a series; fitted "
            "on the fit series only, test scored once",
        ],
    }
    print(json.dumps(result, indent=2))
    if not args.no_write:
        write_result(result, OUTPUT)
    return 0


if __name__ == "__main__":
    sys.exit(main())
