"""The random-kernel path's ridge model alone against MiniRocket, on bundled UCR/UEA sets.

    .venv/bin/python benchmarks/kernel_ridge.py ItalyPowerDemand OSULeaf ACSF1

A diagnostic, outside the pipeline: what `model.recurrent: false` starts from. For each set,
the official training split (standardised per channel with its own mean and std) fits
`seqops.model.kernels.RandomKernels` (`model.kernel_features: 10000`, after the step budget)
and its closed-form ridge head (`fit_ridge`, one-vs-rest targets of -1 / +1), as
`fit_kernel_path` does before training; the official test split is scored by the head's
argmax. MiniRocket (`minirocket_baseline`, the evaluate stage's baseline) is fitted on the same
training split. These are test figures: they explain a gap, they choose nothing (the pipeline
chooses by cross-validation on train + val, `tune.choose`). Prints one line per set.

    .venv/bin/python benchmarks/kernel_ridge.py OSULeaf GunPoint ArrowHead --refit-check

`--refit-check` asks, on the official training split alone (no test figure), whether the
kernel-only model should refit its ridge on train + val once the scale is kept: over five
stratified folds of the training split, the ridge is fitted on the other four folds' first 80 %
(what the pipeline's train split is, `data.val_fraction: 0.2`) and on all of them, and scored
on the held-out fold. Prints the mean held-out accuracy of each, and the folds where they differ.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from seqops.data.batches import pad_batch
from seqops.data.sequences import SequenceSet
from seqops.data.sources import load_bundled
from seqops.data.splits import stratified_folds
from seqops.model.kernels import RandomKernels, fit_ridge
from seqops.tasks.classification.evaluate import minirocket_baseline


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sets", nargs="+", help="bundled UCR/UEA classification sets")
    parser.add_argument("--features", type=int, default=10_000)
    parser.add_argument("--refit-check", action="store_true", help="train-split folds only")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.refit_check:
        for name in args.sets:
            refit_check(name, args.features)
        return
    for name in args.sets:
        train, test = load_bundled(name, "train"), load_bundled(name, "test")
        classes = {c: i for i, c in enumerate(sorted(set(train.labels) | set(test.labels)))}
        y_train = np.array([classes[c] for c in train.labels])
        y_test = np.array([classes[c] for c in test.labels])
        fitted, scored = standardised(
            [np.asarray(s, np.float32) for s in train.sequences],
            [np.asarray(s, np.float32) for s in test.sequences],
        )
        start = time.perf_counter()
        accuracy, n_out = ridge_accuracy(
            fitted, y_train, scored, y_test, len(classes), args.features
        )
        wall = time.perf_counter() - start
        baseline = minirocket_baseline(SequenceSet(fitted, y_train), SequenceSet(scored, y_test))
        print(
            f"{name}: {n_out} features, kernel ridge test accuracy {accuracy:.4f} "
            f"({wall:.0f} s); MiniRocket {float((baseline == y_test).mean()):.4f}"
        )


def standardised(
    fitted: list[np.ndarray], scored: list[np.ndarray]
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Both sets standardised per channel by the mean and std of `fitted`'s steps, as the
    prepare stage scales by the training split."""
    steps = np.concatenate(fitted)
    mean, std = steps.mean(axis=0), steps.std(axis=0) + 1e-8
    return [(s - mean) / std for s in fitted], [(s - mean) / std for s in scored]


def ridge_accuracy(
    fitted: list[np.ndarray],
    y: np.ndarray,
    scored: list[np.ndarray],
    y_scored: np.ndarray,
    n_classes: int,
    features: int,
) -> tuple[float, int]:
    """Accuracy on `scored` of the kernel path's ridge model fitted on `fitted` (as
    `fit_kernel_path` fits it), and its number of features."""
    x, lengths = pad_batch(fitted)
    kernels = RandomKernels(x.shape[2], features, int(lengths.max()), seed=0)
    head = torch.nn.Linear(kernels.n_out, n_classes)
    targets = -np.ones((len(y), n_classes))
    targets[np.arange(len(y)), y] = 1.0
    fit_ridge(kernels.fit(x, lengths), targets, head)
    x_scored, scored_lengths = pad_batch(scored)
    with torch.no_grad():
        outputs = torch.cat([
            head(kernels(x_scored[i : i + 256], scored_lengths[i : i + 256]))
            for i in range(0, len(x_scored), 256)
        ])  # fmt: skip
    return float((outputs.argmax(dim=1).numpy() == y_scored).mean()), kernels.n_out


def refit_check(name: str, features: int) -> None:
    """Ridge on 80 % of the other folds (the pipeline's train split) against all of them."""
    train = load_bundled(name, "train")
    classes = {c: i for i, c in enumerate(sorted(set(train.labels)))}
    y = np.array([classes[c] for c in train.labels])
    sequences = [np.asarray(s, np.float32) for s in train.sequences]
    rng = np.random.default_rng(0)
    results: dict[str, list[float]] = {"train": [], "train + val": []}
    for held in stratified_folds(y, 5, seed=0):
        rest = rng.permutation(np.setdiff1d(np.arange(len(y)), held))
        for label, fitted in (("train", rest[: int(0.8 * len(rest))]), ("train + val", rest)):
            on, scored = standardised([sequences[i] for i in fitted], [sequences[i] for i in held])
            accuracy, _ = ridge_accuracy(on, y[fitted], scored, y[held], len(classes), features)
            results[label].append(accuracy)
    print(
        f"{name}: held-out accuracy over 5 folds of the training split, ridge on the train "
        f"share {np.mean(results['train']):.4f}, on train + val "
        f"{np.mean(results['train + val']):.4f} (per fold: "
        + ", ".join(f"{a:.3f} -> {b:.3f}" for a, b in zip(*results.values(), strict=True))
        + ")",
        flush=True,
    )


if __name__ == "__main__":
    main()
