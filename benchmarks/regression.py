"""Sequence regression (Tecator by default): the seqops model beside classical regressors on the
same split, and published figures for the same official split where we hold them.

    .venv/bin/python benchmarks/regression.py --run .     # after dvc repro with params/tecator.yaml
    .venv/bin/python benchmarks/regression.py --run /tmp/seqops-regression.XXXX   # a scratch copy
    .venv/bin/python benchmarks/regression.py --run . --base   # + the preset's params untuned

Prints a markdown table. The seqops and ridge rows are the run's own `reports/metrics.json`
(evaluate fits `RidgeCV` on the training split, each channel resampled to the median training
length). The training-mean and PLS rows are fitted here on the same prepared training split
(`data/processed`: the same standardised features, the same resampling) and scored on the same
test split. PLS regression (components chosen by 5-fold CV on the training split) is the
chemometrics standard for NIR spectra. `--base` adds the run's `params.yaml` trained as written,
without the tuner's `best_params.yaml`, on the same split (what the validation-picked
configuration gains or loses on the test set). `PUBLISHED` holds reference figures from the
literature for a bundled set's official split, each with its source; a dataset without any is
said so. Errors are in the target's units (Tecator: % fat).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

#: Published test RMSE on a set's official train/test split: dataset → [(method, RMSE, source)].
#: Tan et al. (2021, "Time series extrinsic regression", DMKD 35:1032-1060,
#: doi:10.1007/s10618-021-00745-9) benchmark 19 TSER sets; Tecator is not among them: it joined
#: the archive's 63-problem extension (Guijo-Rubio et al. 2024, "Unsupervised feature based
#: algorithms for time series extrinsic regression", DMKD 38:2141-2185,
#: doi:10.1007/s10618-024-01027-w), whose per-dataset results are published with the paper.
#: An entry goes here only once read from its source; none had been when this script was
#: written, so the table says so rather than quote a figure from memory.
PUBLISHED: dict[str, list[tuple[str, float, str]]] = {
    "Tecator": [],
    "Covid3Month": [],
}

PLS_COMPONENTS = range(1, 21)


def pls_predictions(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray) -> tuple:
    """PLS regression with its number of components chosen by 5-fold CV (unshuffled, so
    deterministic) on the training split; test predictions and the chosen count."""
    from sklearn.cross_decomposition import PLSRegression
    from sklearn.model_selection import GridSearchCV, KFold

    components = [k for k in PLS_COMPONENTS if k <= min(train_x.shape)]
    search = GridSearchCV(
        PLSRegression(scale=False),
        {"n_components": components},
        cv=KFold(5),
        scoring="neg_root_mean_squared_error",
    ).fit(train_x, train_y)
    return np.ravel(search.predict(test_x)), search.best_params_["n_components"]


def base_params_errors(run: Path) -> tuple[dict[str, float], float]:
    """Train the run's params.yaml as written (no tuner overrides) on the same prepared split;
    its test errors and the fit's wall time."""
    import tempfile

    from seqops.config import load_config
    from seqops.model.training import fit
    from seqops.tasks.parts.evaluate import evaluate_checkpoint

    cfg = load_config(run / "params.yaml")
    with tempfile.TemporaryDirectory() as tmp:
        result = fit(cfg, run / "data" / "processed", Path(tmp), progress_bar=False)
        metrics = evaluate_checkpoint(result.best_checkpoint, run / "data" / "processed").metrics
    return dict(metrics.test), result.wall_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, default=Path("."), help="a project after dvc repro")
    parser.add_argument(
        "--base",
        action="store_true",
        help="also train the run's params.yaml without the tuner's overrides (minutes)",
    )
    args = parser.parse_args()

    from seqops.data.sequences import SequenceSet
    from seqops.layout import split_file
    from seqops.tasks import read_meta
    from seqops.tasks.regression.evaluate import regression_errors, resample
    from seqops.tasks.regression.task import RegressionMeta

    processed, reports = args.run / "data" / "processed", args.run / "reports"
    metrics = json.loads((reports / "metrics.json").read_text())
    data = json.loads((reports / "data.json").read_text())
    train_report = json.loads((reports / "train.json").read_text())
    tune_file = reports / "tune.json"
    tune = json.loads(tune_file.read_text()) if tune_file.is_file() else {}
    meta = read_meta(processed / "preprocessing.json")
    assert isinstance(meta, RegressionMeta)
    train = SequenceSet.load(processed / split_file("train"))
    test = SequenceSet.load(processed / split_file("test"))
    mean, std = meta.target.mean, meta.target.std
    train_y = train.labels.astype(np.float64) * std + mean
    actual = test.labels.astype(np.float64) * std + mean
    length = max(round(float(np.median(train.lengths))), 1)
    pls, k = pls_predictions(
        resample(train.sequences, length), train_y, resample(test.sequences, length)
    )

    ridge = metrics["baseline"]["ridge"]
    rows: list[tuple[str, dict[str, Any], str]] = [
        (
            "seqops, tuned (this run)",
            metrics["test"],
            f"tuned over {tune.get('n_trials', 0)} trials; "
            f"{train_report.get('wall_s', 0):.0f} s final fit, {train_report.get('n_parameters')} "
            "parameters",
        ),
        ("ridge (RidgeCV, this run)", ridge, "evaluate's baseline: resampled, flattened"),
        (f"PLS regression, {k} components", regression_errors(actual, pls), "fitted here"),
        (
            "training mean",
            regression_errors(actual, np.full_like(actual, train_y.mean())),
            "predicts the training split's mean",
        ),
    ]
    if args.base:
        base, wall_s = base_params_errors(args.run)
        rows.insert(1, ("seqops, base params (no tuning)", base, f"{wall_s:.0f} s fit"))
    dataset = data["source"].removeprefix("sktime:")
    print(
        f"{data['source']}: {data['n_train']} train / {data['n_val']} val / {data['n_test']} "
        f"test sequences, every row scored on the same {len(actual)} test sequences\n"
    )
    print("| method | RMSE | MAE | R² | RMSE vs ridge | notes |")
    print("|---|---|---|---|---|---|")
    for name, m, notes in rows:
        print(
            f"| {name} | {m['rmse']:.3f} | {m['mae']:.3f} | {m['r2']:.3f} "
            f"| {m['rmse'] / ridge['rmse']:.2f}x | {notes} |"
        )
    published = PUBLISHED.get(dataset) if data["source"].startswith("sktime:") else None
    for method, rmse, source in published or []:
        ratio = rmse / ridge["rmse"]
        print(f"| {method} (published) | {rmse:.3f} | — | — | {ratio:.2f}x | {source} |")
    if published == []:
        print(
            f"\nNo published {dataset} figure is stored in PUBLISHED (see its comment for the "
            "sources that report one on this official split)."
        )


if __name__ == "__main__":
    main()
