"""One runtime's latency, measured in a process of its own (the benchmark stage starts one each).

    python -m seqops.latency --runtime onnx_fp32 --models models --processed data/processed \
        --n-calls 1000 --warmup 100 --threads 1 --throughput-batch 64 --throughput-calls 20

Runtimes: `torch` (eager, `inference_mode`), `onnx_fp32`, `onnx_int8`. Every runtime sees the
same inputs: batch-1 calls cycle through the real test sequences in order; throughput uses
padded batches of `throughput_batch` test sequences. Prints one JSON object on stdout:
`p50_ms`, `p95_ms`, `p99_ms`, `mean_ms`, `throughput` (sequences/s) and the settings.

A separate process per runtime keeps one runtime's thread pools, allocator state and
imports (torch's OpenMP pool spins) from perturbing another's timings.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from seqops import onnx_contract as contract
from seqops.data.sequences import SequenceSet
from seqops.layout import Layout, split_file
from seqops.serving import Predictor, pad

CHECKPOINT_FILE = Layout().checkpoint.name

RUNTIMES = ("torch", "onnx_fp32", "onnx_int8")

Call = Callable[[np.ndarray, np.ndarray], object]


def _torch_call(models: Path, threads: int) -> Call:
    import torch

    from seqops.model.runtime import load_network

    torch.set_num_threads(threads)
    torch.set_num_interop_threads(1)
    net, _ = load_network(models / CHECKPOINT_FILE)

    def call(x: np.ndarray, lengths: np.ndarray) -> object:
        with torch.inference_mode():
            return net(torch.from_numpy(x), torch.from_numpy(lengths))

    return call


def _onnx_call(models: Path, threads: int, int8: bool) -> Call:
    predictor = Predictor.load(models, int8=int8, threads=threads)
    return predictor.run


def runtime_call(runtime: str, models: Path, threads: int) -> Call:
    if runtime == "torch":
        return _torch_call(models, threads)
    if runtime in ("onnx_fp32", "onnx_int8"):
        return _onnx_call(models, threads, int8=runtime == "onnx_int8")
    raise ValueError(f"unknown runtime {runtime!r}; one of {RUNTIMES}")


def measure(
    call: Call,
    sequences: Sequence[np.ndarray],
    *,
    n_calls: int,
    warmup: int,
    throughput_batch: int,
    throughput_calls: int,
) -> dict[str, float]:
    """Batch-1 latency percentiles (ms) and batch throughput (sequences/s) of `call`."""
    singles = [pad([s]) for s in sequences]  # each (1, T_i, F), (1,)
    for i in range(warmup):
        call(*singles[i % len(singles)])
    times = np.empty(n_calls)
    for i in range(n_calls):
        x, lengths = singles[i % len(singles)]
        start = time.perf_counter()
        call(x, lengths)
        times[i] = time.perf_counter() - start
    batches = [
        pad(
            [
                sequences[(b * throughput_batch + j) % len(sequences)]
                for j in range(throughput_batch)
            ]
        )
        for b in range(throughput_calls)
    ]
    call(*batches[0])
    start = time.perf_counter()
    for x, lengths in batches:
        call(x, lengths)
    elapsed = time.perf_counter() - start
    p50, p95, p99 = np.percentile(times, [50, 95, 99]) * 1e3
    return {
        "p50_ms": float(p50),
        "p95_ms": float(p95),
        "p99_ms": float(p99),
        "mean_ms": float(times.mean() * 1e3),
        "throughput": throughput_batch * throughput_calls / elapsed,
    }


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runtime", choices=RUNTIMES, required=True)
    parser.add_argument("--models", type=Path, required=True)
    parser.add_argument("--processed", type=Path, required=True)
    parser.add_argument("--n-calls", type=int, required=True)
    parser.add_argument("--warmup", type=int, required=True)
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--throughput-batch", type=int, required=True)
    parser.add_argument("--throughput-calls", type=int, required=True)
    args = parser.parse_args(argv)
    test = SequenceSet.load(args.processed / split_file("test"))
    call = runtime_call(args.runtime, args.models, args.threads)
    result: dict[str, Any] = measure(
        call,
        test.sequences,
        n_calls=args.n_calls,
        warmup=args.warmup,
        throughput_batch=args.throughput_batch,
        throughput_calls=args.throughput_calls,
    )
    result.update(
        n_calls=args.n_calls,
        threads=args.threads,
        throughput_batch=args.throughput_batch,
        model=str(
            args.models
            / (
                CHECKPOINT_FILE
                if args.runtime == "torch"
                else (contract.INT8_FILE if args.runtime == "onnx_int8" else contract.MODEL_FILE)
            )
        ),
    )
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
