"""CO2 monthly, last 12 months held out: the seqops forecaster beside statistical baselines.

    .venv/bin/python benchmarks/forecast.py --run .      # after `dvc repro` with params/co2.yaml
    .venv/bin/python benchmarks/forecast.py --run /tmp/seqops-forecast.XXXX   # .ci's scratch copy
    .venv/bin/python benchmarks/forecast.py --run . --base   # + the preset's params untuned

Prints a markdown table. Every row is scored on the same split and test months, from the
run's prepared series (`data/processed/series.csv` and `preprocessing.json`): the seqops row
and the seasonal-naive and Holt-Winters rows are the run's own `reports/metrics.json` (the
evaluate stage fits those baselines); SARIMA(0,1,1)(0,1,1)12 on log values (the airline
model) is fitted here with statsmodels on every step before each test origin. Each baseline
sees only the history before its forecast origin, like the model. `--base` adds the run's
`params.yaml` trained as written, without the tuner's `best_params.yaml`, on the same split
(how much the validation-picked configuration gains or loses on the test months).
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np


def sarima_log(values: np.ndarray, origins: list[int], horizon: int, season: int) -> np.ndarray:
    """SARIMA(0,1,1)(0,1,1)s on log values, back-transformed: `(N, H, K)`."""
    from statsmodels.tsa.statespace.sarimax import SARIMAX

    out = np.empty((len(origins), horizon, values.shape[1]))
    for i, o in enumerate(origins):
        for k in range(values.shape[1]):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fitted = SARIMAX(
                    np.log(values[:o, k]), order=(0, 1, 1), seasonal_order=(0, 1, 1, season)
                ).fit(disp=False)
            out[i, :, k] = np.exp(fitted.forecast(horizon))
    return out


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
        help="also train the run's params.yaml without the tuner's overrides (about 10 s)",
    )
    args = parser.parse_args()

    from seqops.forecasting import forecast_errors
    from seqops.tasks import read_meta
    from seqops.tasks.forecasting.backtest import forecast_test
    from seqops.tasks.forecasting.task import ForecastMeta

    processed, reports = args.run / "data" / "processed", args.run / "reports"
    metrics = json.loads((reports / "metrics.json").read_text())
    train = json.loads((reports / "train.json").read_text())
    tune_file = reports / "tune.json"
    tune = json.loads(tune_file.read_text()) if tune_file.is_file() else {}
    meta = read_meta(processed / "preprocessing.json")
    assert isinstance(meta, ForecastMeta)
    test = forecast_test(processed, meta)
    spec = test.spec
    start = time.perf_counter()
    sarima = sarima_log(test.targets, test.origins, spec.horizon, spec.season_length)
    sarima_s = time.perf_counter() - start
    naive_rmse = metrics["baseline"]["seasonal_naive"]["rmse"]
    rows: list[tuple[str, dict[str, Any], str]] = [
        (
            "seqops, tuned (params/co2.yaml pipeline)",
            metrics["test"],
            f"tuned over {tune.get('n_trials', 0)} trials; "
            f"{train.get('wall_s', 0):.0f} s final fit",
        ),
        ("seasonal naive", metrics["baseline"]["seasonal_naive"], "y[t-12]"),
        (
            "Holt-Winters (statsmodels)",
            metrics["baseline"]["holt_winters"],
            "additive trend and season",
        ),
        (
            "SARIMA(0,1,1)(0,1,1)12, log",
            forecast_errors(test.actual(), sarima, test.mase_scale()),
            f"statsmodels SARIMAX, {sarima_s:.1f} s",
        ),
    ]
    if args.base:
        base, wall_s = base_params_errors(args.run)
        rows.insert(1, ("seqops, base params (no tuning)", base, f"{wall_s:.0f} s fit"))
    first, last = (str(test.series.times[i])[:7] for i in (test.origins[0], -1))
    print(f"CO2 monthly means, test {first} to {last} ({test.actual().size} forecast points)\n")
    print("| method | RMSE (ppm) | MAE | sMAPE % | MASE | RMSE vs seasonal naive | notes |")
    print("|---|---|---|---|---|---|---|")
    for name, m, notes in rows:
        print(
            f"| {name} | {m['rmse']:.3f} | {m['mae']:.3f} | {m['smape']:.3f} | {m['mase']:.3f} "
            f"| {m['rmse'] / naive_rmse:.2f}x | {notes} |"
        )


if __name__ == "__main__":
    main()
