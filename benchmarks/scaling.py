"""How seqops scales past one CPU process: one markdown table, every row measured in this run.

    .venv/bin/python benchmarks/scaling.py [--only overhead,ddp,size,tune,predict,serve]
        [--epochs 3] [--ddp-epochs 10] [--sizes 1,4,16] [--tune-trials N] [--load 4]
        [--tune-limit 300] [--predict-sizes 1,100,10000] [--requests 50] [--clients 8]

Rows (JapaneseVowels, default params unless a flag says otherwise; a work dir under /tmp):

- `overhead`: training throughput (sequences/s, training epochs only) of `fit` (what `seqops
  train` runs: Lightning) against a plain PyTorch loop over the same `SequenceNet`, data,
  batch size, optimizer and clipping, both on one thread, `--epochs` epochs each.
- `ddp`: `seqops train` on 2 CPU processes (DDP, gloo) against 1, same global batch,
  `--ddp-epochs` epochs (the fit time includes starting rank 1 and the process group).
- `size`: prepare + train + evaluate wall time and peak RSS (largest of the three processes) at
  1x, 4x, 16x the data set (noisy copies of every sequence as a long-format CSV in `data.path`).
- `tune`: the tune stage's wall time idle and with `--load` busy-loop processes, before
  (`train.threads: 0`, PyTorch's default of one thread per core) and after (`train.threads: 1`),
  with `--tune-trials` trials; a run over `--tune-limit` seconds is stopped and shown as `>`.
- `predict`: `seqops predict` from process start to written output (cold) at each
  `--predict-sizes`, and in-process throughput once loaded.
- `serve`: `mlflow models serve` of the exported model on 127.0.0.1: requests/s and p99 latency
  of one-sequence requests from `--clients` concurrent clients (`--requests` each).

Absolute figures depend on the machine and its other load; rows within one section run back
to back, so read the ratios. The defaults take about 15 minutes on 2 idle cores.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SEQOPS = str(BIN / "seqops")
#: Environment of every measured process: no thread override from the caller, so the
#: package's `train.threads` (or PyTorch's default) decides.
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")

Row = tuple[str, str, str]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARS}
    env["DVC_NO_ANALYTICS"] = "1"
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


def _params(root: Path, **sections: dict[str, Any]) -> None:
    base = yaml.safe_load((REPO / "params.yaml").read_text())
    for section, values in sections.items():
        base[section] = {**base.get(section, {}), **values}
    (root / "params.yaml").write_text(yaml.safe_dump(base, sort_keys=False))


def _stage(root: Path, *args: str, limit: float | None = None) -> tuple[float, float]:
    """Run `seqops <args>` in `root`; (wall seconds, peak RSS MiB). inf when over `limit`."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        [SEQOPS, *args], cwd=root, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        out, _ = proc.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return float("inf"), float("nan")
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"seqops {' '.join(args)} failed:\n{out.decode()[-3000:]}")
    peak = _peak_rss_mib(proc.pid)
    return wall, peak


_RSS: dict[int, float] = {}


def _peak_rss_mib(pid: int) -> float:
    return _RSS.get(pid, float("nan"))


def _install_rss_probe() -> None:
    """Record each child's peak RSS (ru_maxrss of wait4) as Popen reaps it."""
    original = os.waitpid

    def waitpid(pid: int, options: int) -> tuple[int, int]:
        if pid > 0 and options == 0:
            got, status, usage = os.wait4(pid, 0)
            _RSS[got] = usage.ru_maxrss / 1024  # KiB on Linux
            return got, status
        return original(pid, options)

    os.waitpid = waitpid


def _prepared(work: Path, name: str, **sections: dict[str, Any]) -> Path:
    root = work / name
    root.mkdir(parents=True, exist_ok=True)
    _params(root, **sections)
    _stage(root, "prepare")
    return root


# --- overhead -----------------------------------------------------------------------------


def overhead(work: Path, epochs: int) -> list[Row]:
    import lightning.pytorch as pl
    import torch

    from seqops.config import load_config
    from seqops.data.batches import loader
    from seqops.data.sequences import SequenceSet
    from seqops.layout import PROCESSED_META
    from seqops.model.training import build_model, fit, use_threads
    from seqops.tasks import read_meta

    fixed = {"max_epochs": epochs, "patience": epochs, "threads": 1}
    root = _prepared(work, "overhead", train=fixed)
    cfg = load_config(root / "params.yaml")
    processed = root / "data" / "processed"
    n_train = len(SequenceSet.load(processed / "train.npz"))

    class TrainClock(pl.Callback):
        def __init__(self) -> None:
            self.seconds = 0.0

        def on_train_epoch_start(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
            self.t0 = time.perf_counter()

        def on_validation_start(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
            if not trainer.sanity_checking:
                self.seconds += time.perf_counter() - self.t0

    clock = TrainClock()
    with tempfile.TemporaryDirectory() as tmp:
        fit(cfg, processed, Path(tmp), callbacks=[clock], progress_bar=False)
    lightning_rate = n_train * epochs / clock.seconds

    use_threads(1)
    torch.manual_seed(cfg.seed)
    net = build_model(cfg, read_meta(processed / PROCESSED_META), processed).net
    optimizer = torch.optim.AdamW(net.parameters(), cfg.train.lr, weight_decay=1e-4)
    data = loader(SequenceSet.load(processed / "train.npz"), cfg.train.batch_size, shuffle=True)
    net.train()
    start = time.perf_counter()
    for _ in range(epochs):
        for x, lengths, y in data:
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(net(x, lengths), y)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), cfg.train.gradient_clip_val)
            optimizer.step()
    plain_rate = n_train * epochs / (time.perf_counter() - start)
    ratio = f"Lightning overhead {100 * (plain_rate / lightning_rate - 1):+.1f} %"
    return [
        ("train throughput, plain PyTorch loop", f"{plain_rate:,.0f} seq/s", "1 thread"),
        ("train throughput, `fit` (Lightning)", f"{lightning_rate:,.0f} seq/s", ratio),
    ]


# --- ddp ----------------------------------------------------------------------------------


def ddp(work: Path, epochs: int) -> list[Row]:
    fixed = {"max_epochs": epochs, "patience": epochs, "batch_size": 32}
    root = _prepared(work, "ddp", train=fixed, tune={"enabled": False})
    _stage(root, "tune")
    n_train = json.loads((root / "reports" / "data.json").read_text())["n_train"]
    rows: list[Row] = []
    rates = {}
    for devices in (1, 2):
        strategy = "ddp" if devices > 1 else "auto"
        _params(root, train={**fixed, "devices": devices, "strategy": strategy})
        _stage(root, "train")
        wall = json.loads((root / "reports" / "train.json").read_text())["wall_s"]
        rates[devices] = n_train * epochs / wall
        rows.append(
            (
                f"`seqops train`, {devices} CPU process{'es' if devices > 1 else ''}",
                f"{rates[devices]:,.0f} seq/s",
                f"fit {wall:.1f} s ({epochs} epochs, launch included), global batch 32",
            )
        )
    speed = rates[2] / rates[1]
    verdict = "slower" if speed < 1 else "faster"
    rows[-1] = (*rows[-1][:2], f"{rows[-1][2]}; {speed:.2f}x one process ({verdict})")
    return rows


# --- size ---------------------------------------------------------------------------------


def _long_frame(root: Path, split: str, copies: int, noise: float, seed: int) -> pd.DataFrame:
    from seqops.data.sequences import SequenceSet

    meta = json.loads((root / "data" / "processed" / "preprocessing.json").read_text())
    mean, std = np.asarray(meta["scaler"]["mean"]), np.asarray(meta["scaler"]["std"])
    names = meta["feature_names"]
    labels = meta["label_names"]
    data = SequenceSet.load(root / "data" / "processed" / f"{split}.npz")
    rng = np.random.default_rng(seed)
    parts = []
    for copy in range(copies):
        for i, seq in enumerate(data.sequences):
            values = seq + (noise * rng.standard_normal(seq.shape) if copy else 0.0)
            part = pd.DataFrame(values * std + mean, columns=names)
            part.insert(0, "time", np.arange(len(seq)))
            part.insert(0, "id", f"{split}{copy}_{i}")
            part["label"] = labels[int(data.labels[i])]
            parts.append(part)
    return pd.concat(parts, ignore_index=True)


def size(work: Path, epochs: int, sizes: list[int]) -> list[Row]:
    fixed = {"max_epochs": epochs, "patience": epochs}
    base = _prepared(work, "size-base", train=fixed)
    raw = work / "size-raw"
    raw.mkdir(exist_ok=True)
    rows: list[Row] = []
    first = None
    for k in sizes:
        # Every split copied k times (prepare splits the file again, test set included).
        train = raw / f"data_x{k}.csv"
        frame = pd.concat([_long_frame(base, s, k, 0.1, k) for s in ("train", "val", "test")])
        frame.to_csv(train, index=False)
        root = work / f"size-x{k}"
        root.mkdir(exist_ok=True)
        _params(
            root, data={"dataset": None, "path": str(train)}, train=fixed, tune={"enabled": False}
        )
        walls, peaks = [], []
        for stage in ("prepare", "tune", "train", "evaluate"):
            wall, peak = _stage(root, stage)
            if stage != "tune":
                walls.append(wall)
                peaks.append(peak)
        n = json.loads((root / "reports" / "data.json").read_text())["n_train"]
        fit_s = json.loads((root / "reports" / "train.json").read_text())["wall_s"]
        total = sum(walls)
        first = first or (total, fit_s, k)
        growth = f"{total / first[0]:.2f}x / fit {fit_s / first[1]:.2f}x the {first[2]}x run"
        rows.append(
            (
                f"prepare + train + evaluate, {k}x data ({n:,} train seq, {epochs} epochs)",
                f"{total:.1f} s (fit {fit_s:.1f} s)",
                f"peak RSS {max(peaks):,.0f} MiB; {growth}",
            )
        )
    return rows


# --- tune under load ----------------------------------------------------------------------


def tune(work: Path, trials: int, load: int, limit: float) -> list[Row]:
    root = _prepared(work, "tune", tune={"n_trials": trials})
    rows: list[Row] = []
    idle = {}
    for threads, label in ((0, "before: PyTorch default threads"), (1, "after: train.threads 1")):
        _params(root, tune={"n_trials": trials}, train={"threads": threads})
        for busy in (0, load):
            shutil.rmtree(root / "optuna", ignore_errors=True)
            hogs = [
                subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(busy)
            ]
            try:
                wall, _ = _stage(root, "tune", limit=limit)
            finally:
                for hog in hogs:
                    hog.kill()
                    hog.wait()
            if not busy:
                idle[threads] = wall
            shown = f"> {limit:.0f} s (stopped)" if wall == float("inf") else f"{wall:.1f} s"
            note = f"{wall / idle[threads]:.1f}x idle" if busy and wall < float("inf") else ""
            rows.append(
                (f"tune stage ({trials} trials), {label}, {busy} busy processes", shown, note)
            )
    return rows


# --- predict and serve --------------------------------------------------------------------


def _exported(work: Path) -> Path:
    root = work / "serve"
    if (root / "models" / "model.onnx").is_file():
        return root
    root = _prepared(work, "serve", tune={"enabled": False})
    for stage in ("tune", "train", "export"):
        _stage(root, stage)
    return root


def _requests(root: Path, n: int) -> pd.DataFrame:
    one = _long_frame(root, "test", 1, 0.0, 0).drop(columns=["label"])
    ids = one["id"].unique()
    parts = []
    for i in range(n):
        part = one[one["id"] == ids[i % len(ids)]].copy()
        part["id"] = f"r{i}"
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def predict(work: Path, sizes: list[int]) -> list[Row]:
    from seqops.serving import predict_file

    root = _exported(work)
    rows: list[Row] = []
    for n in sizes:
        path = work / f"predict_{n}.csv"
        _requests(root, n).to_csv(path, index=False)
        cold, _ = _stage(root, "predict", "--input", str(path), "--output", str(work / "out.csv"))
        predict_file(root / "models", path, work / "out.csv")  # warm
        start = time.perf_counter()
        predict_file(root / "models", path, work / "out.csv")
        warm = time.perf_counter() - start
        rows.append(
            (
                f"`seqops predict`, {n:,} sequences",
                f"{cold:.2f} s cold",
                f"{n / warm:,.0f} seq/s once loaded (file in, file out)",
            )
        )
    return rows


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(work: Path, clients: int, requests: int) -> list[Row]:
    root = _exported(work)
    uri = json.loads((root / "reports" / "export.json").read_text())["mlflow_model_uri"]
    port = _free_port()
    env = {**_env(), "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}"}
    cmd = [str(BIN / "mlflow"), "models", "serve", "-m", uri, "--env-manager", "local",
           "-h", "127.0.0.1", "-p", str(port)]  # fmt: skip
    server = subprocess.Popen(
        cmd, cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    frame = _requests(root, 1)
    split = json.loads(frame.to_json(orient="split", index=False))
    body = json.dumps({"dataframe_split": split}).encode()

    def call() -> float:
        request = urllib.request.Request(
            f"{base}/invocations", body, {"Content-Type": "application/json"}
        )
        start = time.perf_counter()
        with urllib.request.urlopen(request, timeout=60) as resp:
            resp.read()
        return time.perf_counter() - start

    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(f"{base}/ping", timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("mlflow models serve did not start") from None
                time.sleep(0.5)
        for _ in range(5):
            call()
        start = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(clients) as pool:
            latencies = list(pool.map(lambda _: call(), range(clients * requests)))
        wall = time.perf_counter() - start
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait()
    p99 = float(np.percentile(latencies, 99)) * 1000
    return [
        (
            f"MLflow scoring server, {clients} concurrent clients, 1 sequence/request",
            f"{len(latencies) / wall:,.1f} requests/s",
            f"p99 {p99:.0f} ms ({len(latencies)} requests)",
        )
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="overhead,ddp,size,tune,predict,serve")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--ddp-epochs", type=int, default=10)
    parser.add_argument("--sizes", default="1,4,16")
    parser.add_argument("--tune-trials", type=int, default=None, help="default: params.yaml")
    parser.add_argument("--load", type=int, default=4)
    parser.add_argument("--tune-limit", type=float, default=300.0)
    parser.add_argument("--predict-sizes", default="1,100,10000")
    parser.add_argument("--requests", type=int, default=50, help="per client")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    _install_rss_probe()
    sections = args.only.split(",")
    trials = (
        args.tune_trials or yaml.safe_load((REPO / "params.yaml").read_text())["tune"]["n_trials"]
    )
    work = args.workdir or Path(tempfile.mkdtemp(prefix="seqops-scaling-"))
    jobs = {
        "overhead": lambda: overhead(work, args.epochs),
        "ddp": lambda: ddp(work, args.ddp_epochs),
        "size": lambda: size(work, args.epochs, [int(s) for s in args.sizes.split(",")]),
        "tune": lambda: tune(work, trials, args.load, args.tune_limit),
        "predict": lambda: predict(work, [int(s) for s in args.predict_sizes.split(",")]),
        "serve": lambda: serve(work, args.clients, args.requests),
    }
    rows: list[Row] = []
    for name in sections:
        started = time.perf_counter()
        done = jobs[name]()
        rows += done
        for row in done:  # as it comes, in case a later section fails
            print("| " + " | ".join(row) + " |", file=sys.stderr, flush=True)
        print(f"[{name}: {time.perf_counter() - started:.0f} s]", file=sys.stderr, flush=True)
    cpu = platform.processor() or platform.machine()
    print(f"Machine: {os.cpu_count()} CPUs ({cpu}), Python {platform.python_version()}\n")
    print("| measurement | result | note |\n|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
