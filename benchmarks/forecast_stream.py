"""A forecaster following a stream: one new observation answered from the carried state (the
model's window, `seqops-window/1`) against a request that sends the whole history again, at
history lengths 100, 1,000 and 10,000, through the whole serving path (`Predictor.predict_frame`:
parsing and checking the rows, the window, ONNX Runtime, the forecast rows).

    .venv/bin/python benchmarks/forecast_stream.py              # ~1 min on 2 CPUs
    .venv/bin/python benchmarks/forecast_stream.py --no-write

The model is a daily forecaster (1 × 64 LSTM, four weeks read, one week forecast, weekly
seasonal differencing, one series; random weights: latency does not depend on their values),
exported by the export stage's own functions; the rows' times are dates (`2024-01-31`). The
two requests are timed side by side, alternating call by call: the stream update (one row
plus the state of the history before it) and the full request (every row of the history, no
state). Medians over `--calls` pairs, their ratio, and the largest difference between the two
forecasts (0: the window in the state is all the model reads). Prints JSON and writes
`benchmarks/results/forecast_stream.json` unless `--no-write`.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from results_table import commit_line, machine_line, write_result
from seqops.serving import Predictor
from seqops.stream_serving import STATE_COLUMN

REPO = Path(__file__).resolve().parents[1]
OUTPUT = REPO / "benchmarks" / "results" / "forecast_stream.json"
HISTORIES = (100, 1000, 10000)
COMMAND = ".venv/bin/python benchmarks/forecast_stream.py"
COLUMNS = ["history length", "stream update p50 (ms)", "whole history p50 (ms)",
           "whole / stream", "max |forecast gap|"]  # fmt: skip
LOOKBACK, HORIZON, SEASON, HIDDEN = 28, 7, 7, 64


def synthetic_bundle(directory: Path) -> Predictor:
    """A one-series forecaster exported and sealed as the export stage does it."""
    import torch

    from seqops import onnx_contract as contract
    from seqops.config import DataConfig
    from seqops.data.windows import ForecastSpec
    from seqops.model.network import SequenceNet
    from seqops.onnx_export import export_onnx, make_bundle, seal_bundle
    from seqops.tasks.forecasting.task import CutsInfo, ForecastMeta
    from seqops.tasks.parts.serve import get_serve

    spec = ForecastSpec(LOOKBACK, HORIZON, "seasonal", SEASON, ["y"], ["y"], np.zeros(1),
                        np.ones(1))  # fmt: skip
    meta = ForecastMeta(
        feature_names=["y"],
        label_names=[],
        n_outputs=1,
        max_train_length=LOOKBACK,
        forecast=spec.to_dict(),
        freq="D",
        cuts=CutsInfo(val_start=LOOKBACK, test_start=2 * LOOKBACK),
    )
    torch.manual_seed(0)
    net = SequenceNet(1, 1, cell="lstm", hidden_size=HIDDEN, num_layers=1, horizon=HORIZON,
                      bidirectional=False, pooling="last").eval()  # fmt: skip
    task = get_serve(meta.task)
    expected = contract.expected_shapes(contract.INPUT, 1, task.output, task.output_shape(meta))
    export_onnx(net, directory / contract.MODEL_FILE, 17, contract.INPUT, task.output, expected)
    data = DataConfig(task="forecasting", dataset="co2", id_column="id", time_column="t")
    seal_bundle(directory, make_bundle(meta, task, data, LOOKBACK))
    return Predictor.load(directory, threads=1)


def time_history(predictor: Predictor, n: int, calls: int) -> dict[str, float]:
    """Median seconds of the stream update for step n and of the request with all n steps."""
    rng = np.random.default_rng(n)
    times = pd.date_range("1990-01-01", periods=n, freq="D").strftime("%Y-%m-%d")
    history = pd.DataFrame({"id": "s", "t": times, "y": rng.normal(size=n).cumsum()})
    before = predictor.predict_frame(history.iloc[:-1].assign(**{STATE_COLUMN: ""}))
    update = history.iloc[-1:].assign(**{STATE_COLUMN: before[STATE_COLUMN].iloc[0]})
    streamed, whole = [], []
    for _ in range(calls):
        start = time.perf_counter()
        got = predictor.predict_frame(update)
        streamed.append(time.perf_counter() - start)
        start = time.perf_counter()
        want = predictor.predict_frame(history)
        whole.append(time.perf_counter() - start)
    return {
        "stream_ms": float(np.median(streamed)) * 1e3,
        "whole_ms": float(np.median(whole)) * 1e3,
        "gap": float(np.abs(got["y"].to_numpy() - want["y"].to_numpy()).max()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=100, help="timed pairs per history length")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        predictor = synthetic_bundle(Path(tmp))
        time_history(predictor, 100, 10)  # warm-up: first calls allocate
        rows = []
        for n in HISTORIES:
            found = time_history(predictor, n, args.calls)
            ratio = found["whole_ms"] / found["stream_ms"]
            rows.append([n, round(found["stream_ms"], 3), round(found["whole_ms"], 3),
                         round(ratio, 1), f"{found['gap']:.1e}"])  # fmt: skip
    result = {
        "title": "Forecast stream: a new observation from the carried window vs the whole history",
        "command": COMMAND + (f" --calls {args.calls}" if args.calls != 100 else ""),
        "commit": commit_line(),
        "machine": machine_line(),
        "columns": COLUMNS,
        "rows": rows,
        "notes": [
            f"model: 1 x {HIDDEN} LSTM forecaster, lookback {LOOKBACK}, horizon {HORIZON}, "
            f"seasonal differencing ({SEASON}), daily dates; onnxruntime, 1 intra-op thread",
            "both through Predictor.predict_frame (rows checked, window built, forecast rows); "
            f"medians of {args.calls} calls each, alternating call by call in one process",
            "max |forecast gap|: streamed forecast against the whole-history forecast",
        ],
    }
    print(json.dumps(result, indent=2))
    if not args.no_write:
        write_result(result, OUTPUT)
    return 0


if __name__ == "__main__":
    sys.exit(main())
