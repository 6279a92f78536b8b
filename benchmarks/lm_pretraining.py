"""Language-model pretraining of the text classifier's encoder (ULMFiT-style), on SST-2's dev.

    .venv/bin/python benchmarks/lm_pretraining.py            # about 30 min on 2 idle cores
    .venv/bin/python benchmarks/lm_pretraining.py --seeds 0 --variants none lm3

An experiment outside the pipeline, on the validation (dev) split only: does pretraining the
embedding and the bidirectional LSTM as a language model on the training sentences' own text
help the classifier that is then fine-tuned from it? The splits come from the `sst2` preset's
prepare stage, run in a scratch folder (the preset's tokenizer and vocabulary). The network is
the preset's recurrent path (`SequenceNet`: 128-d embedding, a 128-unit BiLSTM, max pooling,
dropout 0.5), without the n-gram path, so the comparison is the recurrent path's alone.

Pretraining is the bidirectional language model of ELMo on the same cells: the forward cell's
state at step t predicts token t + 1, the backward cell's state predicts token t - 1 (neither
has read the token it predicts), through an adaptive softmax (the token ids are in frequency
order). Fine-tuning is cross-entropy on the labels, batch 64, lr 2e-3, 6 epochs with patience
2 on validation loss, as the preset trains; `ulmfit` adds ULMFiT's discriminative learning
rates (each layer group below the head 2.6 times slower) and gradual unfreezing (the head
alone in epoch 1, then the cells, then the embedding). Variants:

- `none`: no pretraining (the preset's start);
- `lm3`, `lm10`: 3 or 10 epochs of language-model pretraining, then plain fine-tuning;
- `lm10-ulmfit`: 10 epochs, then ULMFiT's fine-tuning.

Prints one line per (variant, seed) and writes benchmarks/results/lm_pretraining.json (the
results page's table) unless `--no-write`.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))

from results_table import commit_line, machine_line, write_result
from seqops.data.batches import pad_batch
from seqops.data.sequences import SequenceSet
from seqops.model.network import SequenceNet, step_mask

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "benchmarks" / "results" / "lm_pretraining.json"
VARIANTS = {"none": (0, False), "lm3": (3, False), "lm10": (10, False), "lm10-ulmfit": (10, True)}
BATCH, LR, EPOCHS, PATIENCE, LAYER_FACTOR = 64, 2e-3, 6, 2, 2.6


def prepared_splits(scratch: Path) -> tuple[SequenceSet, SequenceSet, int]:
    """The `sst2` preset's prepared train and val splits, and its vocabulary size."""
    shutil.copy(ROOT / "params.yaml", scratch / "params.yaml")
    shutil.copytree(ROOT / "params", scratch / "params")
    shutil.copytree(ROOT / "data" / "raw" / "sst2", scratch / "data" / "raw" / "sst2")
    seqops = str(Path(sys.executable).with_name("seqops"))
    for command in (["preset", "sst2"], ["prepare"]):
        subprocess.run([seqops, *command], cwd=scratch, check=True, capture_output=True)
    processed = scratch / "data" / "processed"
    meta = json.loads((processed / "preprocessing.json").read_text())
    train, val = (SequenceSet.load(processed / f"{split}.npz") for split in ("train", "val"))
    return train, val, int(meta["vocab_size"])


def batches(sequences: list[np.ndarray], order: np.ndarray):  # type: ignore[no-untyped-def]
    for start in range(0, len(order), BATCH):
        index = order[start : start + BATCH]
        yield index, *pad_batch([sequences[i] for i in index])


def pretrain(net: SequenceNet, train: SequenceSet, vocab: int, epochs: int, seed: int) -> float:
    """The encoder as a bidirectional language model; returns the last epoch's perplexity."""
    hidden = net.hidden_size
    decoder = nn.AdaptiveLogSoftmaxWithLoss(hidden, vocab, cutoffs=[500, 2000], div_value=4.0)
    encoder = [net.embedding, net.forward_cells, net.backward_cells]
    parameters = [p for module in [*encoder, decoder] for p in module.parameters()]  # type: ignore[union-attr]
    optimizer = torch.optim.AdamW(parameters, lr=LR)
    rng = np.random.default_rng(seed)
    net.train()
    perplexity = float("nan")
    for _ in range(epochs):
        losses = []
        for _, x, lengths in batches(train.sequences, rng.permutation(len(train))):
            h = net.dropout(net.encode(x, lengths))  # (B, T, 2H), step order
            real = step_mask(lengths, x.shape[1])[:, 1:]  # pairs (t, t + 1) inside a sentence
            states = torch.cat([h[:, :-1, :hidden][real], h[:, 1:, hidden:][real]])
            targets = torch.cat([x[:, 1:][real], x[:, :-1][real]])
            loss = decoder(states, targets).loss
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(parameters, 1.0)
            optimizer.step()
            losses.append(loss.item())
        perplexity = math.exp(float(np.mean(losses)))
    return perplexity


def validation(net: SequenceNet, val: SequenceSet) -> tuple[float, float]:
    net.eval()
    with torch.no_grad():
        log_probs = torch.cat(
            [
                torch.log_softmax(net(x, lengths), dim=-1)
                for _, x, lengths in batches(val.sequences, np.arange(len(val)))
            ]
        )
    labels = torch.as_tensor(np.asarray(val.labels, dtype=np.int64))
    accuracy = (log_probs.argmax(-1) == labels).double().mean().item()
    return accuracy, nn.functional.nll_loss(log_probs, labels).item()


def fine_tune(net: SequenceNet, train: SequenceSet, val: SequenceSet, seed: int, ulmfit: bool):  # type: ignore[no-untyped-def]
    """Train for the labels; returns (val accuracy, val loss, epoch) of the best val loss."""
    groups = [[net.head], [net.forward_cells, net.backward_cells], [net.embedding]]
    params = [[p for m in group for p in m.parameters()] for group in groups]  # type: ignore[union-attr]
    factor = LAYER_FACTOR if ulmfit else 1.0
    optimizer = torch.optim.AdamW(
        [{"params": p, "lr": LR / factor**depth} for depth, p in enumerate(params)]
    )
    labels = np.asarray(train.labels, dtype=np.int64)
    rng = np.random.default_rng(seed)
    best = (float("nan"), float("inf"), -1)
    for epoch in range(EPOCHS):
        for depth, group in enumerate(params):
            for p in group:
                p.requires_grad_(not ulmfit or depth <= epoch)
        net.train()
        for index, x, lengths in batches(train.sequences, rng.permutation(len(train))):
            loss = nn.functional.cross_entropy(net(x, lengths), torch.as_tensor(labels[index]))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        accuracy, loss_value = validation(net, val)
        if loss_value < best[1]:
            best = (accuracy, loss_value, epoch)
        elif epoch - best[2] >= PATIENCE:
            break
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as scratch:
        train, val, vocab = prepared_splits(Path(scratch))
    rows: list[list[Any]] = []
    for variant in args.variants:
        epochs, ulmfit = VARIANTS[variant]
        for seed in args.seeds:
            start = time.perf_counter()
            torch.manual_seed(seed)
            net = SequenceNet(
                0, 2, vocab_size=vocab, embedding_dim=128, hidden_size=128, cell="lstm",
                bidirectional=True, dropout=0.5, pooling="max",
            )  # fmt: skip
            perplexity = pretrain(net, train, vocab, epochs, seed) if epochs else None
            accuracy, loss, epoch = fine_tune(net, train, val, seed, ulmfit)
            rows.append([
                variant, seed, None if perplexity is None else round(perplexity, 1),
                round(accuracy, 4), round(loss, 4), epoch, round(time.perf_counter() - start, 1),
            ])  # fmt: skip
            print(" | ".join(str(cell) for cell in rows[-1]), flush=True)
    means = [
        f"{variant}: mean dev accuracy "
        f"{np.mean([r[3] for r in rows if r[0] == variant]):.4f}, log-loss "
        f"{np.mean([r[4] for r in rows if r[0] == variant]):.4f}"
        for variant in args.variants
    ]
    print("\n".join(means))
    result = {
        "title": "Language-model pretraining of the text encoder (SST-2 dev split)",
        "command": " ".join([".venv/bin/python", "benchmarks/lm_pretraining.py", *sys.argv[1:]]),
        "commit": commit_line(),
        "machine": machine_line(),
        "columns": ["variant", "seed", "LM training perplexity", "dev accuracy", "dev log-loss",
                    "best epoch", "wall (s)"],
        "rows": rows,
        "notes": [
            "none: the preset's random start; lm3 / lm10: epochs of bidirectional "
            "language-model pretraining on the training sentences, then plain fine-tuning; "
            "lm10-ulmfit: then ULMFiT's discriminative rates and gradual unfreezing",
            "the preset's recurrent path without its n-gram path; best epoch by dev log-loss",
            *means,
        ],
    }  # fmt: skip
    if not args.no_write:
        write_result(result, OUTPUT)


if __name__ == "__main__":
    main()
