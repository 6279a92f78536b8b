"""WNUT-17 test entity F1 of the CRF baseline for text labeling (the floor a sequence-labeling
model has to beat).

    .venv/bin/python benchmarks/labeling_baseline.py               # ~1.5 min on 2 CPUs
    .venv/bin/python benchmarks/labeling_baseline.py --no-write

Fits `crf_baseline.choose_crf` on the train split (one CRF per (c1, c2) of its grid, chosen
on dev entity F1), scores the chosen CRF once on test, prints the result as JSON and writes
`benchmarks/results/labeling_baseline.json` for `benchmarks/results_table.py` unless
`--no-write`. Scores are conlleval's (exact span and type); the shared task's best system had
0.419 test entity F1.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from results_table import commit_line, machine_line, write_result
from seqops.tasks.sequence_labeling.conll import read_conll
from seqops.tasks.sequence_labeling.crf_baseline import MAX_ITERATIONS, choose_crf
from seqops.tasks.sequence_labeling.scoring import EntityCounts, score

REPO = Path(__file__).resolve().parents[1]
OUTPUT = REPO / "benchmarks" / "results" / "labeling_baseline.json"
DATA = REPO / "data" / "raw" / "wnut17"


def row(name: str, counts: EntityCounts) -> list[str | int | float]:
    """One table row: counts, then precision, recall and F1 rounded to 4 places."""
    return [
        name,
        counts.gold,
        counts.predicted,
        counts.correct,
        round(counts.precision, 4),
        round(counts.recall, 4),
        round(counts.f1, 4),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA, help="folder of {train,dev,test}.conll")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    train, dev, test = (
        read_conll(args.data / f"{split}.conll") for split in ("train", "dev", "test")
    )
    start = time.perf_counter()
    search = choose_crf(train, dev)
    search_s = time.perf_counter() - start
    tagger = search.tagger
    chosen = next(t for t in search.trials if (t.c1, t.c2) == (tagger.c1, tagger.c2))
    scores = score([s.tags for s in test], tagger.predict([s.tokens for s in test]))
    n_tokens = sum(len(s.tokens) for s in test)
    all_o = sum(tag == "O" for s in test for tag in s.tags) / n_tokens

    result = {
        "title": "Sequence labeling: CRF baseline on WNUT-17 (test, entity level)",
        "command": ".venv/bin/python benchmarks/labeling_baseline.py",
        "commit": commit_line(),
        "machine": machine_line(),
        "columns": ["entity type", "gold", "predicted", "correct", "precision", "recall", "F1"],
        "rows": [row("all (micro)", scores.entities)]
        + [row(kind, counts) for kind, counts in scores.per_type.items()],
        "notes": [
            f"token accuracy {scores.token_accuracy:.4f} over {n_tokens} test tokens, `O` "
            f"included (tagging every token `O` scores {all_o:.4f})",
            f"chosen c1={tagger.c1}, c2={tagger.c2} (dev entity F1 {chosen.dev_f1:.4f}); "
            "dev F1 per (c1, c2): "
            + ", ".join(f"({t.c1}, {t.c2}) {t.dev_f1:.4f}" for t in search.trials),
            f"fit of the chosen CRF {chosen.fit_s:.1f} s; the whole search "
            f"({len(search.trials)} fits of {MAX_ITERATIONS} L-BFGS iterations, dev scoring "
            f"included) {search_s:.1f} s, one process",
            f"data: WNUT-17 ({len(train)} train / {len(dev)} dev / {len(test)} test sentences); "
            "fitted on train only, c1/c2 chosen on dev, test scored once",
            "scores as conlleval computes them (exact span and type); reference: best "
            "shared-task system 0.419 test entity F1",
        ],
    }
    print(json.dumps(result, indent=2))
    if not args.no_write:
        write_result(result, OUTPUT)
    return 0


if __name__ == "__main__":
    sys.exit(main())
