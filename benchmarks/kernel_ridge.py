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
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from seqops.data.batches import pad_batch
from seqops.data.sequences import SequenceSet
from seqops.data.sources import load_bundled
from seqops.model.kernels import RandomKernels, fit_ridge
from seqops.tasks.classification.evaluate import minirocket_baseline


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sets", nargs="+", help="bundled UCR/UEA classification sets")
    parser.add_argument("--features", type=int, default=10_000)
    args = parser.parse_args()
    torch.set_num_threads(1)
    for name in args.sets:
        train, test = load_bundled(name, "train"), load_bundled(name, "test")
        classes = {c: i for i, c in enumerate(sorted(set(train.labels) | set(test.labels)))}
        y_train = np.array([classes[c] for c in train.labels])
        y_test = np.array([classes[c] for c in test.labels])
        steps = np.concatenate([np.asarray(s, np.float32) for s in train.sequences])
        mean, std = steps.mean(axis=0), steps.std(axis=0) + 1e-8
        fitted = [((np.asarray(s, np.float32) - mean) / std) for s in train.sequences]
        scored = [((np.asarray(s, np.float32) - mean) / std) for s in test.sequences]
        start = time.perf_counter()
        x, lengths = pad_batch(fitted)
        kernels = RandomKernels(x.shape[2], args.features, int(lengths.max()), seed=0)
        features = kernels.fit(x, lengths)
        head = torch.nn.Linear(kernels.n_out, len(classes))
        targets = -np.ones((len(y_train), len(classes)))
        targets[np.arange(len(y_train)), y_train] = 1.0
        fit_ridge(features, targets, head)
        x_test, test_lengths = pad_batch(scored)
        with torch.no_grad():
            outputs = torch.cat(
                [
                    head(kernels(x_test[i : i + 256], test_lengths[i : i + 256]))
                    for i in range(0, len(x_test), 256)
                ]
            )
        accuracy = float((outputs.argmax(dim=1).numpy() == y_test).mean())
        wall = time.perf_counter() - start
        baseline = minirocket_baseline(SequenceSet(fitted, y_train), SequenceSet(scored, y_test))
        print(
            f"{name}: {kernels.n_out} features, kernel ridge test accuracy {accuracy:.4f} "
            f"({wall:.0f} s); MiniRocket {float((baseline == y_test).mean()):.4f}"
        )


if __name__ == "__main__":
    main()
