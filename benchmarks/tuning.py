"""TPE + pruning (the tune stage's search) against scikit-learn GridSearchCV on JapaneseVowels.

    .venv/bin/python benchmarks/tuning.py [--trials 8]

Both search `model.hidden_size` x training epochs with the same seed. The grid trains every
cell on 3 CV folds (`GridSearchCV(cv=3)`); TPE samples hidden sizes and lets the median pruner
stop poor trials early, epochs capped at the grid's largest. Each method's chosen config is then
retrained on the train split and scored on the validation split, so the two are compared on
one footing; the cost is the total number of training epochs each search spent. Prints a
markdown table.
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.model_selection import GridSearchCV

from seqops.config import Config, parse_config
from seqops.data.batches import loader
from seqops.data.sequences import SequenceSet
from seqops.data.splits import stratified_split
from seqops.layout import Layout
from seqops.model.training import fit
from seqops.stages.prepare import write
from seqops.tasks.parts.prepare import get_prepare
from seqops.tuning import study as studies
from seqops.tuning.trial import Objective

HIDDEN = (16, 32, 64, 128)
EPOCHS = (10, 20, 30)
SEED = 42


def _config(hidden_size: int, max_epochs: int, **tune: Any) -> Config:
    return parse_config(
        {
            "seed": SEED,
            "model": {"hidden_size": hidden_size},
            "train": {"max_epochs": max_epochs},
            "tune": {"max_epochs": max(EPOCHS), **tune} if tune else {"max_epochs": max(EPOCHS)},
        }
    )


def _write_split(train: SequenceSet, val: SequenceSet, preprocessing: Path, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    train.save(out / "train.npz")
    val.save(out / "val.npz")
    val.save(out / "test.npz")
    (out / "preprocessing.json").write_text(preprocessing.read_text())


def _accuracy(model: Any, data: SequenceSet) -> float:
    import torch

    model.eval()
    hits = 0
    with torch.no_grad():
        for x, lengths, y in loader(data, 256, shuffle=False):
            hits += int((model(x, lengths).argmax(-1) == y).sum())
    return hits / len(data)


class SequenceClassifier(ClassifierMixin, BaseEstimator):
    """Minimal sklearn wrapper around `fit` for GridSearchCV: X holds row indices into `data`."""

    #: Epochs trained by every fit of any clone (GridSearchCV clones the estimator).
    epochs_spent: list[int] = []  # noqa: RUF012

    def __init__(
        self, data: Any = None, workdir: str = "", hidden_size: int = 64, max_epochs: int = 10
    ):
        self.data = data
        self.workdir = workdir
        self.hidden_size = hidden_size
        self.max_epochs = max_epochs

    def fit(self, X: np.ndarray, y: np.ndarray) -> SequenceClassifier:
        rows = X.ravel()
        part = self.data["set"].subset(rows)
        names = [str(c) for c in np.unique(part.labels)]
        keep, held = stratified_split(part.labels, 0.2, SEED, names=names, what="validation")
        out = Path(tempfile.mkdtemp(dir=self.workdir))
        _write_split(part.subset(keep), part.subset(held), self.data["preprocessing"], out)
        result = fit(
            _config(self.hidden_size, self.max_epochs), out, out / "ckpt", progress_bar=False
        )
        SequenceClassifier.epochs_spent.append(result.epochs_run)
        self.model_ = result.model
        self.classes_ = np.unique(y)
        return self

    def score(self, X: np.ndarray, y: np.ndarray) -> float:
        return _accuracy(self.model_, self.data["set"].subset(X.ravel()))


def run_grid(processed: Path, workdir: Path) -> dict[str, Any]:
    train = SequenceSet.load(processed / "train.npz")
    data = {"set": train, "preprocessing": processed / "preprocessing.json"}
    grid = GridSearchCV(
        SequenceClassifier(data=data, workdir=str(workdir)),
        {"hidden_size": list(HIDDEN), "max_epochs": list(EPOCHS)},
        cv=3,
        refit=False,
    )
    SequenceClassifier.epochs_spent.clear()
    start = time.perf_counter()
    grid.fit(np.arange(len(train)).reshape(-1, 1), train.labels)
    return {
        "method": "GridSearchCV (cv=3)",
        "configs": len(grid.cv_results_["params"]),
        "epochs": sum(SequenceClassifier.epochs_spent),
        "search_score": float(grid.best_score_),
        "chosen": grid.best_params_,
        "wall_s": time.perf_counter() - start,
    }


def run_tpe(processed: Path, n_trials: int) -> dict[str, Any]:
    space = {
        "model.hidden_size": {"type": "int", "low": min(HIDDEN), "high": max(HIDDEN), "log": True}
    }
    cfg = _config(
        64,
        max(EPOCHS),
        metric="val/accuracy",
        space=space,
        startup_trials=3,
        pruner_startup_trials=2,
        pruner_warmup_epochs=5,
        n_trials=n_trials,
    )
    study = optuna.create_study(
        direction="maximize",
        sampler=studies.sampler(cfg.tune, SEED),
        pruner=studies.pruner(cfg.tune, max(EPOCHS)),
    )
    start = time.perf_counter()
    study.optimize(Objective(cfg, processed, None), n_trials=n_trials, catch=(RuntimeError,))
    best = study.best_trial
    return {
        "method": "TPE + median pruning",
        "configs": len(study.trials),
        "epochs": sum(t.user_attrs["epochs"] for t in study.trials),
        "search_score": float(study.best_value),
        # Epochs of the chosen config: the trial's run length (early stopping included).
        "chosen": {
            "hidden_size": best.params["model.hidden_size"],
            "max_epochs": best.user_attrs["epochs"],
        },
        "pruned": sum(t.state == optuna.trial.TrialState.PRUNED for t in study.trials),
        "wall_s": time.perf_counter() - start,
    }


def holdout_accuracy(processed: Path, chosen: dict[str, int], workdir: Path) -> float:
    """The chosen config retrained on the train split, scored on the validation split."""
    cfg = _config(chosen["hidden_size"], chosen["max_epochs"])
    result = fit(cfg, processed, workdir / f"final-{chosen['hidden_size']}", progress_bar=False)
    return _accuracy(result.model, SequenceSet.load(processed / "val.npz"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=8)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write(get_prepare(Config().data.task).prepare(Config().data, SEED), Layout(root))
        processed = Layout(root).processed
        rows = [run_tpe(processed, args.trials), run_grid(processed, root)]
        for row in rows:
            row["holdout"] = holdout_accuracy(processed, row["chosen"], root)
    print(
        "| method | configs | training epochs | search score | chosen (hidden, epochs) "
        "| val accuracy of chosen | wall s |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['method']} | {r['configs']} | {r['epochs']} | {r['search_score']:.4f} "
            f"| {r['chosen']['hidden_size']}, {r['chosen']['max_epochs']} | {r['holdout']:.4f} "
            f"| {r['wall_s']:.0f} |"
        )
    tpe, grid = rows
    ok = tpe["holdout"] >= grid["holdout"] and tpe["epochs"] <= grid["epochs"] / 2
    print(
        f"\nTPE epochs / grid epochs = {tpe['epochs'] / grid['epochs']:.2f}; "
        f"target (score >= grid, epochs <= 1/2): {'met' if ok else 'NOT met'}"
    )
    print(json.dumps({"tpe_pruned": tpe.get("pruned")}))


if __name__ == "__main__":
    main()
