"""The random-kernel path's feature counts, by comparison and by binary search, side by side.

    .venv/bin/python benchmarks/kernels.py                  # median of 20 calls per shape
    .venv/bin/python benchmarks/kernels.py --calls 5 --no-write

`RandomKernels.ppv` counts, per kernel output row, the real steps above each bias
(`seqops.model.kernels.count_above`): an ONNX export compares every step with every bias
(`count_by_comparison`); torch does too, unless a row has many biases for its length, where
it sorts each row once and places the biases by binary search (`count_by_search`). For the
shapes of four UCR/UEA sets (channels, longest length, features as `model.kernel_features:
10000` gives them after the step budget), a batch of 32 random sequences (random lengths
where the set's vary) goes through the kernels both ways, alternating, in one process with
one torch thread; the table gives each way's median time, the way torch uses and its
speed-up over comparison, and checks the features are equal (both are exact counts). Writes
`benchmarks/results/kernels.json` for `benchmarks/results_table.py` unless `--no-write`.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from unittest import mock

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from results_table import commit_line, machine_line, write_result
from seqops.model import kernels

OUTPUT = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "kernels.json"
#: name, channels, longest length (the UCR/UEA set's training split), whether lengths vary
SHAPES = (
    ("JapaneseVowels", 12, 26, True),
    ("Tecator", 1, 100, False),
    ("OSULeaf", 1, 427, False),
    ("ACSF1", 1, 1460, False),
)
BATCH = 32


def timed(
    features: kernels.RandomKernels, x: torch.Tensor, lengths: torch.Tensor, calls: int
) -> dict[bool, tuple[float, torch.Tensor]]:
    """Per way (True: binary search), the median seconds of `calls` feature computations,
    the two ways alternating after one warm-up call each, and the features."""
    times: dict[bool, list[float]] = {True: [], False: []}
    out: dict[bool, torch.Tensor] = {}
    for call in range(calls + 1):
        for search in (True, False):
            with mock.patch.object(kernels, "searches", lambda *_, way=search: way):
                start = time.perf_counter()
                out[search] = features.ppv(x, lengths)
                if call:
                    times[search].append(time.perf_counter() - start)
    return {way: (statistics.median(times[way]), out[way]) for way in (True, False)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20, help="calls per shape and way")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    rows = []
    for name, channels, length, varies in SHAPES:
        generator = torch.Generator().manual_seed(0)
        x = torch.randn(BATCH, length, channels, generator=generator)
        lengths = torch.full((BATCH,), length)
        if varies:
            lengths = torch.randint(length // 2, length + 1, (BATCH,), generator=generator)
            lengths[0] = length
        features = kernels.RandomKernels(channels, 10_000, length, seed=0)
        features.fit(x, lengths)
        ways = timed(features, x, lengths, args.calls)
        (search, by_search), (comparison, by_comparison) = ways[True], ways[False]
        equal = torch.equal(by_search, by_comparison)
        picks = "search" if kernels.searches(features.n_biases, length) else "comparison"
        rows.append(
            [name, channels, length, features.n_out, features.n_biases,
             round(comparison * 1e3, 2), round(search * 1e3, 2), picks,
             round(comparison / min(comparison, search if picks == "search" else comparison), 2),
             equal]
        )  # fmt: skip
        print(" | ".join(str(cell) for cell in rows[-1]))
        if not equal:
            print(f"FAIL: {name}: the two ways gave different features", file=sys.stderr)
            return 1
    result = {
        "title": "Random-kernel features: comparison against binary search",
        "command": ".venv/bin/python benchmarks/kernels.py",
        "commit": commit_line(),
        "machine": machine_line(),
        "columns": ["shape of", "channels", "steps", "features", "biases per kernel",
                    "comparison (ms)", "binary search (ms)", "torch uses",
                    "speed-up over comparison", "features equal"],
        "rows": rows,
        "notes": [
            f"a batch of {BATCH} random sequences (JapaneseVowels: lengths from half the "
            "longest to it; the others all the longest, as in those sets), "
            "kernels fitted on them; median of "
            f"{args.calls} calls each way (alternating, after a warm-up call), one torch "
            "thread, one process",
            "comparison: what the exported ONNX graph computes, and torch with few biases "
            "for the length; binary search: torch's way from 2 log2(steps) biases per kernel "
            "(`seqops.model.kernels.searches`)",
        ],
    }  # fmt: skip
    if not args.no_write:
        write_result(result, OUTPUT)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
