"""Values fixed before the search by k-fold cross-validation (`tune.choose`).

    chosen, report = choose(cfg, processed, work, pool)   # what `seqops tune` runs first

A validation split of 7 to 54 sequences rarely tells two configurations apart (accuracy 1.0
on both is common), and a random-kernel path that wins on one data set loses on another
(docs/decisions.md). For each `tune.choose` path in turn, every listed value trains with the
base params (the values chosen so far applied, the full `train.max_epochs`) on the
`tune.choose_folds` seeded stratified folds of train + val pooled, the folds `tune.folds`
trains on. The value with the higher mean kept-epoch validation accuracy wins, then the lower
mean validation loss, then the one listed first. A value the values chosen before it rule
out (`model.recurrent: false` after `model.kernel_features: 0`) is not trained, and recorded
as refused; with one value left there is nothing to choose. The test split is never read. The
trainings run side by side on the tuning pool when there is one (each is deterministic, so
the choice is the same whatever the worker count).
"""

from __future__ import annotations

import itertools
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np

from seqops.config import Config, replaced
from seqops.errors import ConfigError
from seqops.tuning.study import TRIAL_DEVICE

#: Mean accuracies closer than this are equal (float sums of the same right answers).
_SAME = 1e-9


def fold_scores(cfg: Config, directory: Path, checkpoints: Path) -> tuple[float, float]:
    """One training on a fold: the kept epoch's validation accuracy and loss."""
    from seqops.model.training import fit

    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)  # a banner per fold
    result = fit(cfg, directory, checkpoints, progress_bar=False)
    kept = next(row for row in result.history if row.get("epoch") == result.best_epoch)
    return float(kept["val/accuracy"]), float(kept["val/loss"])


def preferred(rows: list[dict[str, Any]]) -> int:
    """Index of the row with the highest mean accuracy, then the lowest mean loss (a NaN
    loss never wins), then the first."""

    def key(i: int) -> tuple[float, float, int]:
        loss = rows[i]["loss"]
        return (-round(rows[i]["accuracy"] / _SAME), loss if math.isfinite(loss) else math.inf, i)

    return min(range(len(rows)), key=key)


def choose(
    cfg: Config, processed: Path, work: Path, pool: Any = None, progress: Any = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The `tune.choose` values cross-validation prefers, and what `reports/tune.json` records
    of it: per path, each value's mean and per-fold accuracy and loss, and the chosen one.
    `pool` (from `seqops.tuning.rounds.start_pool`) trains the folds side by side;
    `progress(n)` is called after each path with the trainings it ran or refused."""
    from seqops.tuning.trial import write_folds  # Lightning: only where folds train

    tune = cfg.tune
    # One device and at most one torch thread per training, as a trial has; every epoch.
    device = {**TRIAL_DEVICE, "threads": min(cfg.train.threads, 1)}
    base = cfg.model_copy(update={"train": cfg.train.model_copy(update=device)})
    where = "tune.choose values"
    folds = write_folds(processed, work / "folds", tune.choose_folds, cfg.seed)
    chosen: dict[str, Any] = {}
    report: dict[str, Any] = {}
    # Fold scores by (config, fold): the value kept on one path is the config the next path's
    # value equal to its params' one trains again (kernels kept, then `recurrent: true`).
    scored: dict[tuple[str, int], tuple[float, float]] = {}
    for p, (path, listed) in enumerate(tune.choose.items()):
        values, configs, refused = [], [], []
        for value in listed:
            try:
                configs.append(replaced(base, {**chosen, path: value}, where))
                values.append(value)
            except ConfigError as exc:  # ruled out by the values chosen before it
                refused.append({"value": value, "reason": str(exc)})
        if not values:
            raise ConfigError(f"{where}: no value of {path} fits: {refused}")
        # One value left: nothing to choose, nothing trained.
        rows = _cross_validate(values, configs, folds, work / f"path-{p}", pool, scored)
        chosen[path] = values[preferred(rows)] if rows else values[0]
        report[path] = {"chosen": chosen[path], "folds": len(folds), "candidates": rows}
        if refused:
            report[path]["refused"] = refused
        if progress is not None:
            progress(len(listed) * len(folds))
    return chosen, report


def _cross_validate(
    values: list[Any],
    configs: list[Config],
    folds: list[Path],
    work: Path,
    pool: Any,
    scored: dict[tuple[str, int], tuple[float, float]],
) -> list[dict[str, Any]]:
    """Each value's mean and per-fold kept-epoch validation accuracy and loss, its config
    trained on every fold (side by side on `pool` when given) unless `scored` already holds
    that config's fold (trainings are deterministic), and added to it; none for a single
    value."""
    if len(values) < 2:
        return []
    keys = [(config.model_dump_json(), f) for config in configs for f in range(len(folds))]
    new = [key for key in dict.fromkeys(keys) if key not in scored]
    tasks = [
        (configs[i // len(folds)], folds[f], work / f"checkpoints-{i}")
        for i, (_, f) in ((keys.index(key), key) for key in new)
    ]
    if pool is None:
        trained = list(itertools.starmap(fold_scores, tasks))
    else:
        trained = pool.starmap(fold_scores, tasks, chunksize=1)
    scored.update(zip(new, trained, strict=True))
    rows = []
    for v, value in enumerate(values):
        mine = [scored[key] for key in keys[v * len(folds) : (v + 1) * len(folds)]]
        accuracy = [a for a, _ in mine]
        loss = [x for _, x in mine]
        rows.append(
            {
                "value": value,
                "accuracy": float(np.mean(accuracy)),
                "loss": float(np.mean(loss)),
                "fold_accuracy": accuracy,
                "fold_loss": loss,
            }
        )
    return rows
