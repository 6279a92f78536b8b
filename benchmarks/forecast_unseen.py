"""The CO2 preset on series nobody tuned it for, against seasonal naive and Holt-Winters.

    .venv/bin/python benchmarks/forecast_unseen.py                 # writes the results page's table
    .venv/bin/python benchmarks/forecast_unseen.py --only lynx --no-write

The README's own-data path for a series: `params/co2.yaml` with `data.path` pointing at a
file. Each series here ships with statsmodels or sktime (nothing is downloaded): monthly airline
passengers (trend and a season growing with it), El Niño sea surface temperatures (season and
cycles), quarterly US real GDP (trend), yearly Nile flow (a level shift), lynx trappings and
sunspots (cycles). Yearly series set `season_length: 1` (the preset infers it from the
frequency, and a year has no season); every other key is the preset's. Each series runs `dvc
repro evaluate` three times in scratch copies of the repository (`quality.scratch_run`): as
the preset was (the network alone), as it is (the weight against the drift forecast fitted on
validation, `train.forecast_shrink`), and with the targets' logarithm as well
(`data.forecast.transform: log`). Per series: test RMSE of each run, of seasonal naive and
Holt-Winters on the same histories, the weight the train stage set, and the model's 90 %
interval coverage.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from quality import Dataset, scratch_run
from results_table import commit_line, machine_line, write_result

REPO = Path(__file__).resolve().parents[1]
OUTPUT = REPO / "benchmarks" / "results" / "forecast_unseen.json"


def _airline() -> pd.DataFrame:
    from sktime.datasets import load_airline

    y = load_airline()
    return pd.DataFrame({"time": y.index.to_timestamp(), "value": y.to_numpy()})


def _elnino() -> pd.DataFrame:
    import statsmodels.api as sm

    d = sm.datasets.elnino.load_pandas().data.set_index("YEAR")
    values = d.to_numpy().ravel()  # a row per year, a column per month
    start = f"{int(d.index[0])}-01-01"
    return pd.DataFrame(
        {"time": pd.date_range(start, periods=values.size, freq="MS"), "value": values}
    )


def _realgdp() -> pd.DataFrame:
    import statsmodels.api as sm

    d = sm.datasets.macrodata.load_pandas().data
    time = pd.PeriodIndex.from_fields(year=d.year.astype(int), quarter=d.quarter.astype(int))
    return pd.DataFrame({"time": time.to_timestamp(), "value": d.realgdp.to_numpy()})


def _yearly(load: Callable[[], pd.DataFrame], year: str, value: str) -> Callable[[], pd.DataFrame]:
    def frame() -> pd.DataFrame:
        d = load()
        return pd.DataFrame({"time": d[year].astype(int), "value": d[value].to_numpy()})

    return frame


def _lynx() -> pd.DataFrame:
    from sktime.datasets import load_lynx

    y = load_lynx()
    return pd.DataFrame({"time": y.index.year, "value": y.to_numpy()})


def _statsmodels(name: str) -> Callable[[], pd.DataFrame]:
    import statsmodels.api as sm

    return lambda: getattr(sm.datasets, name).load_pandas().data


#: name -> (frequency, loader, extra params). Integer years count steps: no season.
SERIES: dict[str, tuple[str, Callable[[], pd.DataFrame], dict[str, Any]]] = {
    "airline": ("monthly", _airline, {}),
    "El Niño sea temperature": ("monthly", _elnino, {}),
    "US real GDP": ("quarterly", _realgdp, {}),
    "Nile": (
        "yearly",
        _yearly(_statsmodels("nile"), "year", "volume"),
        {"data.forecast.season_length": 1},
    ),
    "lynx": ("yearly", _lynx, {"data.forecast.season_length": 1}),
    "sunspots": (
        "yearly",
        _yearly(_statsmodels("sunspots"), "YEAR", "SUNACTIVITY"),
        {"data.forecast.season_length": 1},
    ),
}


def run(
    name: str, csv: Path, extra: dict[str, Any], transform: str, shrink: bool
) -> dict[str, Any]:
    """One `dvc repro evaluate` of the CO2 preset on `csv`; its test figures and weight."""
    from seqops.tasks import read_metrics

    work = Path(tempfile.mkdtemp(prefix="seqops-unseen."))
    overrides = {
        "data.dataset": None,
        "data.path": str(csv),
        "data.time_column": "time",
        "data.forecast.transform": transform,
        "train.forecast_shrink": shrink,
        "release.max_metric": 1.0e9,  # the preset's ppm ceiling means nothing here
        **extra,
    }
    start = time.perf_counter()
    try:
        reports = scratch_run(Dataset(name, "params/co2.yaml", {}), work, overrides)
        metrics = read_metrics(reports / "metrics.json")
        state = torch.load(work / "models" / "model.ckpt", map_location="cpu", weights_only=True)
        weight = float(state["state_dict"]["net.forecast_scale"])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    baseline = metrics.baseline or {}
    return {
        "rmse": metrics.test["rmse"],
        "seasonal_naive": baseline["seasonal_naive"]["rmse"],
        "holt_winters": baseline["holt_winters"]["rmse"],
        "coverage": metrics.test.get("interval_coverage"),
        "weight": weight,
        "wall_s": time.perf_counter() - start,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", help="series names (default: all)")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    rows = []
    beaten = {"before": 0, "now": 0, "log": 0}
    chosen = [s for s in SERIES if not args.only or s in args.only]
    with tempfile.TemporaryDirectory(prefix="seqops-unseen-data.") as tmp:
        for name in chosen:
            freq, load, extra = SERIES[name]
            csv = Path(tmp) / f"{name.replace(' ', '_')}.csv"
            frame = load()
            frame.to_csv(csv, index=False)
            before = run(name, csv, extra, "none", False)
            now = run(name, csv, extra, "none", True)
            # The logarithm of a series with a zero (sunspots) is undefined: prepare refuses it.
            logged = run(name, csv, extra, "log", True) if (frame["value"] > 0).all() else None
            best = min(now["seasonal_naive"], now["holt_winters"])
            beaten["before"] += before["rmse"] < best
            beaten["now"] += now["rmse"] < best
            beaten["log"] += logged is not None and logged["rmse"] < best
            rows.append([
                name, freq, len(frame), round(before["rmse"], 4), round(now["rmse"], 4),
                round(now["weight"], 3),
                None if logged is None else round(logged["rmse"], 4),
                None if logged is None else round(logged["weight"], 3),
                round(now["seasonal_naive"], 4),
                round(now["holt_winters"], 4),
                None if now["coverage"] is None else round(now["coverage"], 3),
                round(before["wall_s"] + now["wall_s"] + (logged or {"wall_s": 0})["wall_s"]),
            ])  # fmt: skip
            print(rows[-1], file=sys.stderr, flush=True)
    result = {
        "title": "The CO2 preset on series nobody tuned it for",
        "command": " ".join([".venv/bin/python", "benchmarks/forecast_unseen.py", *sys.argv[1:]]),
        "commit": commit_line(),
        "machine": machine_line(),
        "columns": [
            "series",
            "frequency",
            "steps",
            "before: network alone",
            "now: with the weight",
            "weight",
            "logarithm, with the weight",
            "its weight",
            "seasonal naive",
            "Holt-Winters",
            "coverage (90 %, now)",
            "wall (s)",
        ],
        "rows": rows,
        "notes": [
            "params/co2.yaml with data.path (and season_length 1 for yearly series); test: the "
            "last 12 steps; test RMSE in the series' units; coverage: the model's 90 % intervals",
            "before: train.forecast_shrink false (the preset as it was); now: shrink true (the "
            "weight against the drift forecast fitted on validation; 1 = the network alone); "
            "logarithm: data.forecast.transform log, with the weight (none for a series with "
            "a value that is not positive)",
            f"below both baselines: before on {beaten['before']} of {len(rows)} series, now on "
            f"{beaten['now']}, with the logarithm on {beaten['log']}",
        ],
    }
    if not args.no_write:
        write_result(result, OUTPUT)
    print(result)


if __name__ == "__main__":
    main()
