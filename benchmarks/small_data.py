"""Evidence for the small-data defaults, from the training split only (never the test split).

    .venv/bin/python benchmarks/small_data.py encoder ArrowHead --seeds 0 1 2 \
        --set model.encoder=conv            # validation accuracy / loss of one setting
    .venv/bin/python benchmarks/small_data.py refit GunPoint --seeds 0 1 2
    .venv/bin/python benchmarks/small_data.py ensemble JapaneseVowels --members 5

Each seed prepares the dataset with `data.val_fraction: 0.4` (a validation split large enough
to compare settings; a different seed is a different split). `encoder` trains the default
params plus `--set` overrides and reports the best epoch's validation accuracy and loss.
`refit` treats that validation split as a pseudo-test, splits the training part again (0.2)
for early stopping, and compares the pseudo-test accuracy of the best validated epoch with the
model refit on train + val (`seqops.model.training.refit`) for the chosen epoch count and
for all `max_epochs` (`full`: no early stopping). `ensemble` uses the same nested split and
compares one model with a `--members`-seed ensemble (`train.ensemble`).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
import yaml

from seqops.config import Config, load_config
from seqops.data.batches import pad_batch
from seqops.data.sequences import SequenceSet
from seqops.data.splits import stratified_split
from seqops.layout import PROCESSED_META, Layout, split_file
from seqops.model.training import fit, fit_final, refit
from seqops.stages import prepare

REPO = Path(__file__).resolve().parents[1]


def prepared(name: str, seed: int, work: Path) -> Path:
    """A project root with `name` prepared at `seed`, 40 % of the training split as val."""
    root = work / f"{name}-{seed}"
    if not (root / "data" / "processed").is_dir():
        root.mkdir(parents=True, exist_ok=True)
        params = yaml.safe_load((REPO / "params.yaml").read_text())
        params["seed"] = seed
        params["data"]["dataset"] = name
        params["data"]["val_fraction"] = 0.4
        (root / "params.yaml").write_text(yaml.safe_dump(params))
        prepare.main(root / "params.yaml", Layout(root))
    return root


def nested(root: Path, seed: int) -> Path:
    """The prepared val split as `test`; train split again into train / val (0.2)."""
    processed = root / "data" / "processed"
    out = root / "nested"
    if not out.is_dir():
        out.mkdir()
        train = SequenceSet.load(processed / split_file("train"))
        names = [str(c) for c in range(int(train.labels.max()) + 1)]
        keep, held = stratified_split(train.labels, 0.2, seed, names=names, what="validation")
        train.subset(keep).save(out / split_file("train"))
        train.subset(held).save(out / split_file("val"))
        shutil.copyfile(processed / split_file("val"), out / split_file("test"))
        shutil.copyfile(processed / PROCESSED_META, out / PROCESSED_META)
    return out


def accuracy(model: torch.nn.Module, data: SequenceSet) -> float:
    x, lengths = pad_batch(data.sequences)
    with torch.no_grad():
        predicted = model(x, lengths).argmax(-1).numpy()
    return float((predicted == data.labels).mean())


def encoder(cfg: Config, root: Path) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        result = fit(cfg, root / "data" / "processed", Path(tmp), progress_bar=False)
    best = result.history[result.best_epoch]
    return {"val/accuracy": best["val/accuracy"], "val/loss": best["val/loss"]}


def refits(cfg: Config, root: Path, seed: int) -> dict[str, float]:
    processed = nested(root, seed)
    pseudo_test = SequenceSet.load(processed / split_file("test"))
    with tempfile.TemporaryDirectory() as tmp:
        chosen = fit(cfg, processed, Path(tmp), progress_bar=False)
        same = refit(cfg, processed, Path(tmp), chosen, anneal=False)
        # No early stopping at all: train + val for every one of `max_epochs` (the cosine
        # schedule runs to its end), the last epoch kept.
        whole = dataclasses.replace(chosen, best_epoch=cfg.train.max_epochs - 1)
        full = refit(cfg, processed, Path(tmp), whole, anneal=False)
    return {
        name: accuracy(result.model, pseudo_test)
        for name, result in (("validated", chosen), ("refit", same), ("full", full))
    }


def ensembles(cfg: Config, root: Path, seed: int, members: int) -> dict[str, float]:
    """Pseudo-test accuracy of one model and of a `members`-seed ensemble (`train.ensemble`)."""
    processed = nested(root, seed)
    pseudo_test = SequenceSet.load(processed / split_file("test"))
    out = {}
    for n in (1, members):
        many = cfg.model_copy(update={"train": cfg.train.model_copy(update={"ensemble": n})})
        with tempfile.TemporaryDirectory() as tmp:
            out[f"ensemble_{n}"] = accuracy(
                fit_final(many, processed, Path(tmp), progress_bar=False).model, pseudo_test
            )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["encoder", "refit", "ensemble"])
    parser.add_argument("--members", type=int, default=5, help="ensemble mode: seeds averaged")
    parser.add_argument("dataset")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--set", nargs="*", default=[], help="dotted.path=yaml-value overrides")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "small_data")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    overrides = {k: yaml.safe_load(v) for k, v in (item.split("=", 1) for item in args.set)}
    rows = []
    for seed in args.seeds:
        root = prepared(args.dataset, seed, args.work)
        cfg = load_config(root / "params.yaml", overrides=overrides)
        if args.mode == "encoder":
            row = encoder(cfg, root)
        elif args.mode == "refit":
            row = refits(cfg, root, seed)
        else:
            row = ensembles(cfg, root, seed, args.members)
        print(args.dataset, seed, {k: round(v, 3) for k, v in row.items()}, flush=True)
        rows.append(row)
    mean = {k: round(float(np.mean([r[k] for r in rows])), 3) for k in rows[0]}
    print(f"mean {args.dataset} {args.mode} {overrides}: {mean}")


if __name__ == "__main__":
    main()
