"""Per-token latency of streaming (the step graph, one token per call, the state carried) against
recomputing the whole prefix through the full graph, at prefix lengths 10, 100 and 1000.

    .venv/bin/python benchmarks/streaming_latency.py                 # ~1 min on 2 CPUs
    .venv/bin/python benchmarks/streaming_latency.py --bundle models/ --no-write

Without `--bundle` the model is a per-step LSTM (12 features, 2 layers of 64, 9 outputs:
JapaneseVowels-sized, random weights: latency does not depend on their values), exported here
by the export stage's own functions (`export_onnx`, `export_step`); with `--bundle` a bundle
whose export wrote a step graph (`models/model_step.onnx`). Both graphs run in onnxruntime on
one intra-op thread, spinning off (`serving.session_options(1)`), batch 1.

For each prefix length L the two ways of answering the token at position L are timed side by
side, alternating call by call: one step-graph call on that token from the state after the
first L - 1 (what a stream pays per token), and one full-graph call on all L tokens (what a
stateless server pays). Medians over `--calls` pairs, and their ratio. Prints the result as
JSON and writes `benchmarks/results/streaming_latency.json` for `benchmarks/results_table.py`
unless `--no-write`.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from results_table import commit_line, machine_line, write_result
from seqops import onnx_contract as contract
from seqops.serving import Predictor
from seqops.stream_serving import stream_chunks
from seqops.tasks.parts.serve import get_serve

REPO = Path(__file__).resolve().parents[1]
OUTPUT = REPO / "benchmarks" / "results" / "streaming_latency.json"
PREFIXES = (10, 100, 1000)
COMMAND = ".venv/bin/python benchmarks/streaming_latency.py"
COLUMNS = ["prefix length", "stream p50 (ms/token)", "recompute p50 (ms/token)",
           "recompute / stream", "max |output gap|"]  # fmt: skip
#: The synthetic model: features, hidden size, layers, outputs.
FEATURES, HIDDEN, LAYERS, OUTPUTS = 12, 64, 2, 9


def synthetic_bundle(directory: Path) -> tuple[Predictor, str]:
    """A per-step LSTM exported as the export stage exports it: full graph and step graph."""
    import torch

    from seqops.config import DataConfig
    from seqops.model.network import SequenceNet
    from seqops.onnx_export import export_onnx, export_step, make_bundle
    from seqops.tasks import read_meta

    torch.manual_seed(0)
    net = SequenceNet(
        FEATURES, OUTPUTS, cell="lstm", hidden_size=HIDDEN, num_layers=LAYERS,
        bidirectional=False, encoder="linear", per_step=True,
    ).eval()  # fmt: skip
    names = [f"f{i}" for i in range(FEATURES)]
    path = directory / "meta.json"
    path.write_text(json.dumps({
        "task": "sequence_labeling", "input": "x", "feature_names": names,
        "label_names": [f"l{i}" for i in range(OUTPUTS)], "n_outputs": OUTPUTS,
        "max_train_length": max(PREFIXES), "label_column": "label",
        "scaler": {"mean": [0.0] * FEATURES, "std": [1.0] * FEATURES},
    }))  # fmt: skip
    meta = read_meta(path)  # the task picks its own metadata type
    task = get_serve(meta.task)
    expected = contract.expected_shapes("x", FEATURES, task.output, task.output_shape(meta))
    full, step = directory / contract.MODEL_FILE, directory / contract.STEP_FILE
    export_onnx(net, full, 17, "x", task.output, expected)
    export_step(net, step, 17, task.output, expected)
    bundle = make_bundle(meta, task, DataConfig(), max(PREFIXES))
    label = f"per-step LSTM, {FEATURES} features, {LAYERS} layers of {HIDDEN}, {OUTPUTS} outputs"
    return Predictor(full, bundle, threads=1, step_file=step), label


def time_prefix(predictor: Predictor, length: int, calls: int, rng: np.random.Generator) -> dict:
    """Median seconds of the step-graph call for the token at `length` (from the carried state)
    and of the full-graph call on the whole prefix, alternating; and their outputs' gap."""
    stepper = predictor.stepper
    assert stepper is not None
    if predictor.input_name == "tokens":  # ids drawn from the vocabulary past [PAD] and [UNK]
        x = rng.integers(2, predictor.bundle.data.n_outputs, (1, length), dtype=np.int64)
    else:
        n_features = len(predictor.bundle.data.feature_names)
        x = rng.standard_normal((1, length, n_features)).astype(np.float32)
    lengths = np.array([length], dtype=np.int64)
    # The state after the first L - 1 tokens, streamed one token at a time.
    states = stepper.layout.zeros(1)
    if length > 1:
        _, states = stream_chunks(stepper, x[:, :-1], lengths - 1, 1, states)
    last = np.ascontiguousarray(x[:, -1:])
    streamed, full = [], []
    for _ in range(calls):
        start = time.perf_counter()
        out, _ = stepper(last, states)
        streamed.append(time.perf_counter() - start)
        start = time.perf_counter()
        whole = predictor.run(x, lengths)
        full.append(time.perf_counter() - start)
    expected = whole[:, -1] if whole.ndim == 3 else whole
    return {
        "stream_ms": float(np.median(streamed)) * 1e3,
        "full_ms": float(np.median(full)) * 1e3,
        "gap": float(np.abs(out[:, -1] - expected).max()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, help="a bundle with a step graph (models/)")
    parser.add_argument("--calls", type=int, default=200, help="timed pairs per prefix length")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)

    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        if args.bundle is not None:
            predictor = Predictor.load(args.bundle, threads=1)
            if predictor.stepper is None:
                print(f"{args.bundle}: no step graph ({contract.STEP_FILE})", file=sys.stderr)
                return 2
            label = f"bundle {args.bundle}"
        else:
            predictor, label = synthetic_bundle(Path(tmp))
        for _ in range(20):  # warm-up: first calls allocate
            time_prefix(predictor, 10, 1, rng)
        rows = []
        for length in PREFIXES:
            found = time_prefix(predictor, length, args.calls, rng)
            ratio = found["full_ms"] / found["stream_ms"]
            rows.append([length, round(found["stream_ms"], 4), round(found["full_ms"], 4),
                         round(ratio, 1), f"{found['gap']:.1e}"])  # fmt: skip
    command = COMMAND + (f" --bundle {args.bundle}" if args.bundle else "")
    result = {
        "title": "Streaming: per-token latency, step graph vs recomputing the prefix",
        "command": command + (f" --calls {args.calls}" if args.calls != 200 else ""),
        "commit": commit_line(),
        "machine": machine_line(),
        "columns": COLUMNS,
        "rows": rows,
        "notes": [
            f"model: {label}; onnxruntime, batch 1, 1 intra-op thread, spinning off",
            "stream: one step-graph call on the new token from the carried state; recompute: "
            "one full-graph call on the whole prefix; medians of "
            f"{args.calls} calls each, alternating call by call in one process",
            "max |output gap|: the streamed output for the last token against the full graph's",
        ],
    }
    print(json.dumps(result, indent=2))
    if not args.no_write:
        write_result(result, OUTPUT)
    return 0


if __name__ == "__main__":
    sys.exit(main())
