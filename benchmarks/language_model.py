"""A character LSTM on the works of Shakespeare within a time budget, against the interpolated
Kneser-Ney baseline on the same split: validation and test bits per character.

    .venv/bin/python benchmarks/language_model.py                      # ~5 min training, 1 thread
    .venv/bin/python benchmarks/language_model.py --budget-s 900 --hidden 512 --no-write

Split by work as `data/raw/shakespeare/README.md` gives it (validation twelfth_night and
julius_caesar, test macbeth and much_ado_about_nothing); the character vocabulary comes from
the training works. The baseline's order is chosen on validation bits per character (orders
2..8). The model is a unidirectional `SequenceNet` over character ids with a per-step head,
trained by stateful truncated BPTT (`language_modeling.stateful`): documents laid out as
`--batch` continuous streams of `--bptt`-step windows, the state carried between windows,
zeroed at each document's start. Adam with a cosine learning-rate decay over the time budget
(the schedule reads the clock, so the run ends at the bottom of the decay whatever the
machine's speed). Both are scored on every character of each validation and test work but its
first, with the work's whole history before it. Prints the result as JSON and writes
`benchmarks/results/language_model.json` unless `--no-write`.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from results_table import commit_line, machine_line, write_result
from seqops.model.network import SequenceNet
from seqops.tasks.language_modeling.batching import StreamBatches
from seqops.tasks.language_modeling.corpus import Corpus
from seqops.tasks.language_modeling.metrics import bits_per_token
from seqops.tasks.language_modeling.ngram import select_order
from seqops.tasks.language_modeling.stateful import NetworkStream, evaluate_nll, train_epoch
from seqops.tasks.language_modeling.vocab import TokenVocabulary

REPO = Path(__file__).resolve().parents[1]
OUTPUT = REPO / "benchmarks" / "results" / "language_model.json"
DATA = REPO / "data" / "raw" / "shakespeare"
VAL = ("twelfth_night", "julius_caesar")
TEST = ("macbeth", "much_ado_about_nothing")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--budget-s", type=float, default=300.0, help="training wall time")
    parser.add_argument("--cell", default="lstm", choices=["lstm", "gru", "rnn"])
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--layers", type=int, default=1)
    parser.add_argument("--embedding", type=int, default=64)
    parser.add_argument("--dropout", type=float, default=0.0)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--bptt", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-2)
    parser.add_argument("--clip", type=float, default=1.0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument(
        "--skip-baseline", action="store_true", help="model only (tuning runs; implies --no-write)"
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)

    splits = Corpus.read(args.data).split(val=list(VAL), test=list(TEST))
    vocab = TokenVocabulary.build(d.text for d in splits.train)
    train, val, test = ([vocab.encode(d.text) for d in docs] for _, docs in splits.items())

    if not args.skip_baseline:
        start = time.perf_counter()
        choice = select_order(train, val, len(vocab), orders=range(2, 9))
        kn_test = bits_per_token(*choice.model.nll(test))
        kn_s = time.perf_counter() - start
        kn_val = choice.val[choice.order] / math.log(2)
        print(f"KN order {choice.order}: val {kn_val:.4f}, test {kn_test:.4f} bpc ({kn_s:.1f} s)")

    net = SequenceNet(
        0, len(vocab), cell=args.cell, hidden_size=args.hidden, num_layers=args.layers,
        bidirectional=False, dropout=args.dropout, vocab_size=len(vocab),
        embedding_dim=args.embedding, per_step=True,
    )  # fmt: skip
    model = NetworkStream(net)
    optimizer = torch.optim.Adam(net.parameters(), lr=args.lr)
    begin = time.perf_counter()

    def elapsed() -> float:
        return (time.perf_counter() - begin) / args.budget_s

    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda _: 0.5 * (1 + math.cos(math.pi * min(elapsed(), 1.0)))
    )
    epochs: list[dict[str, float]] = []
    while elapsed() < 1.0:
        order = rng.permutation(len(train))
        batches = StreamBatches([train[i] for i in order], args.batch, args.bptt, cut=True)
        stats = train_epoch(
            model, batches, optimizer, clip_norm=args.clip, scheduler=scheduler,
            stop=lambda: elapsed() >= 1.0,
        )  # fmt: skip
        epochs.append(
            {"train_bpc": round(stats.loss / math.log(2), 4),
             "fraction": round(stats.n_targets / batches.n_targets, 3)}
        )  # fmt: skip
        print(f"epoch {len(epochs)}: {epochs[-1]} at {time.perf_counter() - begin:.0f} s")
    train_s = time.perf_counter() - begin
    load = os.getloadavg()[0]  # the machine is shared: a busy one trains on fewer characters
    seen = sum(e["fraction"] for e in epochs) * sum(len(d) - 1 for d in train)

    def bpc(docs: list[np.ndarray]) -> float:
        return bits_per_token(*evaluate_nll(model, StreamBatches(docs, len(docs), 1000, cut=False)))

    start = time.perf_counter()
    model_val, model_test = bpc(val), bpc(test)
    eval_s = time.perf_counter() - start
    print(f"model: val {model_val:.4f}, test {model_test:.4f} bpc ({eval_s:.0f} s)")
    if args.skip_baseline:
        return 0
    params = sum(p.numel() for p in net.parameters())
    config = (
        f"{args.cell} {args.layers}x{args.hidden}, embedding {args.embedding}, dropout "
        f"{args.dropout}, batch {args.batch}, bptt {args.bptt}, Adam lr {args.lr} cosine over "
        f"the budget, clip {args.clip}, {args.threads} thread(s), seed {args.seed}"
    )
    orders = ", ".join(f"{k}: {v / math.log(2):.3f}" for k, v in choice.val.items())
    result = {
        "title": "Character language model on Shakespeare (bits per character, lower is better)",
        "command": "python benchmarks/language_model.py "
        + " ".join(argv if argv is not None else sys.argv[1:]),
        "commit": commit_line(),
        "machine": machine_line(),
        "columns": ["predictor", "val bpc", "test bpc", "wall s", "size"],
        "rows": [
            [
                f"KN order {choice.order}",
                round(kn_val, 4),
                round(kn_test, 4),
                round(kn_s, 1),
                f"orders 2..8 on val ({orders})",
            ],
            [
                f"{args.cell.upper()} (stateful TBPTT)",
                round(model_val, 4),
                round(model_test, 4),
                round(train_s, 1),
                f"{params / 1e6:.2f} M parameters, {len(epochs)} epoch(s)",
            ],
        ],
        "notes": [
            f"Model: {config}; epochs {json.dumps(epochs)}; evaluation {eval_s:.0f} s.",
            f"Trained on {seen / 1e6:.2f} M characters ({seen / train_s:,.0f} a second); load "
            f"average {load:.1f} at the end of training on {os.cpu_count()} CPUs.",
            f"Split by work: train {len(train)} works ({sum(map(len, train)):,} characters), "
            f"validation {', '.join(VAL)}, test {', '.join(TEST)} "
            f"({sum(len(d) - 1 for d in test):,} scored test characters, the same for both); "
            f"{len(vocab)} ids ({len(vocab) - 2} characters seen in training, padding, unknown).",
        ],
    }
    print(json.dumps(result, indent=2))
    if not args.no_write:
        write_result(result, OUTPUT)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
