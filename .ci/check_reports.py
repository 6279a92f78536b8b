"""Checks CI makes on a pipeline's reports, against what its own params say.

    .venv/bin/python .ci/check_reports.py [--root DIR] [--allow-failed CHECK ...]

Nothing here knows a dataset: the same checks hold for the default pipeline, each preset
(`seqops preset NAME`) and a project with tuning off.

- quality: `release.metric` from `reports/metrics.json` against `release.min_metric`, or
  `release.max_metric` for an error (the gate's float32 tolerance);
- splits: `reports/data.json`'s sizes are positive and agree with the other reports (class
  counts add up, the evaluated test examples are `n_test`, `reports/predictions.csv` has one
  row per scored test value);
- tuning: with `tune.enabled`, a search ran with the params' metric and direction and finished
  its `tune.n_trials` (unless `tune.timeout_s` stopped it), and pruned at least one trial when
  a pruner had enough trials to prune (`--min-prunable`), and each `tune.choose` path tried
  every listed value on `tune.choose_folds` folds and kept the one its figures prefer; with
  tuning off, no search ran;
- export: ONNX parity passed, checked at the params' `export.parity_atol` and `parity_rtol`;
- release: the verdict agrees with its checks and with the params (model name, the quality
  check's value and threshold), and passed, apart from checks named with `--allow-failed` (a
  preset whose gate is known to refuse its model: tecator's `beats_baseline`, and its
  `test/rmse`, which then also releases the quality check above);
- the stage outputs and the model card's sections exist.

Each check is a function of the project's `Layout` and `Config` returning its failures, so the
tests run them on report folders (tests/unit/test_check_reports.py).
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from seqops.config import Config, load_config, metric_direction
from seqops.contracts import (
    ExportReport,
    LatencyReport,
    ReleaseReport,
    TuneReport,
)
from seqops.errors import SeqopsError
from seqops.gate import at_most
from seqops.layout import Layout
from seqops.tasks import read_data_report, read_metrics
from seqops.tuning.choice import preferred

#: Trials a pruner may stop (those after its start-up trials and the first round of workers)
#: needed before CI expects it to have pruned one.
MIN_PRUNABLE = 3

CARD_SECTIONS = ("## Data", "## Params", "## Tuning", "## Test metrics", "## Release gate",
                 "## Lineage")  # fmt: skip

Check = Callable[[Layout, Config], list[str]]


def _close(a: float, b: float) -> bool:
    """Equal up to float32 rounding (reports hold float32 metrics, params hold decimals)."""
    return abs(a - b) <= 1e-6 * max(1.0, abs(a), abs(b))


def check_quality(layout: Layout, cfg: Config, allow_failed: Sequence[str] = ()) -> list[str]:
    """The release metric within its floor or ceiling, unless the metric is named in
    `allow_failed` (then only its presence is checked)."""
    metrics = read_metrics(layout.metrics)
    metric = cfg.release.metric
    value = metrics.test.get(metric.removeprefix("test/"))
    if value is None:
        return [f"{layout.metrics} has no {metric} (release.metric)"]
    if metric in allow_failed:
        return []
    if metric_direction(metric) == "minimize":
        ceiling = cfg.release.max_metric
        assert ceiling is not None  # ReleaseConfig requires it for an error metric
        if not at_most(float(value), ceiling):
            return [f"{metric} {value:.4g} > release.max_metric {ceiling}"]
    elif not at_most(cfg.release.min_metric, float(value)):
        return [f"{metric} {value:.4g} < release.min_metric {cfg.release.min_metric}"]
    return []


def _rows(path: Path) -> int:
    with path.open(newline="") as fh:
        return max(sum(1 for _ in csv.reader(fh)) - 1, 0)


def check_splits(layout: Layout, cfg: Config) -> list[str]:
    data = read_data_report(layout.data_report)
    failures = [
        f"{layout.data_report}: {name} = {n}"
        for name, n in (("n_train", data.n_train), ("n_val", data.n_val), ("n_test", data.n_test))
        if n < 1
    ]
    if data.task != cfg.data.task:
        failures.append(f"{layout.data_report}: task {data.task}, data.task is {cfg.data.task}")
    sizes = {"train": data.n_train, "val": data.n_val, "test": data.n_test}
    for split, counts in data.examples_per_class().items():
        if split in sizes and sum(counts.values()) != sizes[split]:
            failures.append(
                f"{layout.data_report}: {split} class counts add up to "
                f"{sum(counts.values())}, n_{split} is {sizes[split]}"
            )
    test = read_metrics(layout.metrics).test
    # Forecasting scores every step of every test window: n_windows windows, n values.
    evaluated = test.get("n_windows", test.get("n"))
    if evaluated != data.n_test:
        failures.append(
            f"{layout.metrics} evaluated {evaluated} test examples, {layout.data_report} "
            f"has n_test = {data.n_test}"
        )
    if not layout.predictions.is_file():
        failures.append(f"{layout.predictions} missing")
    elif _rows(layout.predictions) != test.get("n"):
        failures.append(
            f"{layout.predictions} has {_rows(layout.predictions)} rows, {layout.metrics} "
            f"scored n = {test.get('n')}"
        )
    return failures


def prunable_trials(cfg: Config) -> int:
    """Trials the pruner could stop: those after the median pruner's start-up trials and
    after the first round of side-by-side workers (each round is pruned against earlier
    ones), when trials run past the pruner's warm-up."""
    tune = cfg.tune
    epochs = min(tune.max_epochs or cfg.train.max_epochs, cfg.train.max_epochs)
    if tune.pruner == "none" or epochs <= tune.pruner_warmup_epochs:
        return 0
    startup = tune.pruner_startup_trials if tune.pruner == "median" else 0
    return max(tune.n_trials - max(startup, tune.workers), 0)


def check_tuning(layout: Layout, cfg: Config, min_prunable: int = MIN_PRUNABLE) -> list[str]:
    tune = TuneReport.read(layout.tune_report)
    if not cfg.tune.enabled:
        if tune.enabled or tune.n_trials:
            return [f"tune.enabled is false, yet {layout.tune_report} reports a search"]
        return []
    if not tune.enabled:
        return [f"tune.enabled is true, yet {layout.tune_report} reports no search"]
    failures = []
    if (tune.metric, tune.direction) != (cfg.tune.metric, cfg.tune.goal):
        failures.append(
            f"{layout.tune_report}: {tune.direction} {tune.metric}, params say "
            f"{cfg.tune.goal} {cfg.tune.metric}"
        )
    if tune.complete < 1:
        failures.append(f"{layout.tune_report}: no trial completed")
    finished = tune.complete + tune.pruned
    if cfg.tune.timeout_s is None and finished < cfg.tune.n_trials:
        failures.append(f"tuning finished {finished} trials of tune.n_trials {cfg.tune.n_trials}")
    failures += check_choice(layout, cfg, tune)
    prunable = prunable_trials(cfg)
    if prunable >= min_prunable and tune.pruned < 1:
        failures.append(
            f"the {cfg.tune.pruner} pruner pruned no trial of {prunable} it could have stopped"
        )
    return failures


def check_choice(layout: Layout, cfg: Config, tune: TuneReport) -> list[str]:
    """Each `tune.choose` path was cross-validated on `tune.choose_folds` folds with every
    listed value, and the value kept is one of them, the one the figures prefer."""
    choice = tune.choice or {}
    if set(choice) != set(cfg.tune.choose):
        return [
            f"{layout.tune_report}: chose {sorted(choice)}, tune.choose lists "
            f"{sorted(cfg.tune.choose)}"
        ]
    failures = []
    for path, values in cfg.tune.choose.items():
        row = choice[path]
        tried = [c["value"] for c in row["candidates"]]
        refused = [r["value"] for r in row.get("refused", [])]
        folds = {len(c["fold_accuracy"]) for c in row["candidates"]} | {row["folds"]}
        # Every listed value tried, or refused as the earlier choices rule it out; with one
        # value left, nothing is trained and that value is kept.
        kept = [] if tried else [row["chosen"]]
        accounted = sorted(map(repr, tried + refused + kept)) == sorted(map(repr, values))
        if not accounted or folds != {cfg.tune.choose_folds} or len(tried) == 1:
            failures.append(
                f"{layout.tune_report}: {path} tried {tried} (refused {refused}) on "
                f"{sorted(folds)} folds, tune.choose lists {values} on {cfg.tune.choose_folds}"
            )
            continue
        if not tried:
            continue
        best = row["candidates"][preferred(row["candidates"])]
        if row["chosen"] != best["value"]:
            failures.append(
                f"{layout.tune_report}: {path} = {row['chosen']} chosen, the figures prefer "
                f"{best['value']}"
            )
    return failures


def check_export(layout: Layout, cfg: Config) -> list[str]:
    parity = ExportReport.read(layout.export_report).parity
    failures = []
    if not parity.passed:
        failures.append(f"ONNX parity failed: {parity}")
    checked = (parity.atol, parity.rtol)
    wanted = (cfg.export.parity_atol, cfg.export.parity_rtol)
    if not all(_close(a, b) for a, b in zip(checked, wanted, strict=True)):
        failures.append(
            f"{layout.export_report}: parity checked at atol {parity.atol}, rtol "
            f"{parity.rtol}; export.parity_atol / parity_rtol are {wanted[0]} / {wanted[1]}"
        )
    LatencyReport.read(layout.latency_report)  # present and well-formed; timings are noisy
    return failures


def check_release(layout: Layout, cfg: Config, allow_failed: Sequence[str] = ()) -> list[str]:
    release = ReleaseReport.read(layout.release_report)
    failures = []
    if release.model_name != cfg.release.model_name:
        failures.append(
            f"{layout.release_report} is about {release.model_name}, release.model_name is "
            f"{cfg.release.model_name}"
        )
    failed = [name for name, check in release.checks.items() if not check.passed]
    if release.passed == bool(failed):
        failures.append(f"{layout.release_report}: passed={release.passed}, failed {failed}")
    metric = cfg.release.metric
    quality = release.checks.get(metric)
    value = read_metrics(layout.metrics).test.get(metric.removeprefix("test/"))
    limit = cfg.release.max_metric if metric_direction(metric) == "minimize" else None
    limit = cfg.release.min_metric if limit is None else limit
    if quality is None:
        failures.append(f"{layout.release_report} has no {metric} check (release.metric)")
    elif not (
        isinstance(quality.value, float | int)
        and value is not None
        and _close(float(quality.value), float(value))
        and isinstance(quality.threshold, float | int)
        and _close(float(quality.threshold), limit)
    ):
        failures.append(
            f"{layout.release_report}: {metric} {quality.value} against {quality.threshold}, "
            f"the reports and params say {value} against {limit}"
        )
    refused = [name for name in failed if name not in allow_failed]
    if refused:
        details = "; ".join(f"{n}: {release.checks[n].detail or release.checks[n].value}"
                            for n in refused)  # fmt: skip
        failures.append(f"release gate failed ({details})")
    return failures


def check_outputs(layout: Layout, cfg: Config) -> list[str]:
    failures = [
        f"{path} missing"
        for path in (layout.train_report, layout.learning_curves)
        if not path.is_file()
    ]
    plots = layout.evaluation_plots
    if not plots.is_dir() or not any(p.is_file() for p in plots.iterdir()):
        failures.append(f"{plots}: the task's evaluation plots are missing")
    if not layout.model_card.is_file():
        return [*failures, f"{layout.model_card} missing"]
    card = layout.model_card.read_text()
    failures += [f"model card lacks {s!r}" for s in CARD_SECTIONS if s not in card]
    return failures


def check_all(
    root: Path, allow_failed: Sequence[str] = (), min_prunable: int = MIN_PRUNABLE
) -> list[str]:
    """Every check on the project at `root`; a missing or malformed report is a failure."""
    layout, failures = Layout(root), []
    cfg = load_config(root / "params.yaml")
    checks: dict[str, Check] = {
        "quality": lambda lay, c: check_quality(lay, c, allow_failed),
        "splits": check_splits,
        "tuning": lambda lay, c: check_tuning(lay, c, min_prunable),
        "export": check_export,
        "release": lambda lay, c: check_release(lay, c, allow_failed),
        "outputs": check_outputs,
    }
    for name, check in checks.items():
        try:
            found = check(layout, cfg)
        except SeqopsError as exc:
            found = [str(exc)]
        print(f"{name}: {'ok' if not found else 'FAIL'}")
        failures += found
    return failures


def headline(root: Path) -> str:
    """The numbers worth a glance in a CI log."""
    layout, cfg = Layout(root), load_config(root / "params.yaml")
    metric = cfg.release.metric
    value = read_metrics(layout.metrics).test.get(metric.removeprefix("test/"))
    data = read_data_report(layout.data_report)
    line = f"{data.task}: {metric} {value} on {data.n_test} test examples"
    if layout.tune_report.is_file():
        tune = TuneReport.read(layout.tune_report)
        line += f"; tuning {tune.complete} complete, {tune.pruned} pruned, {tune.wall_s} s"
    if layout.latency_report.is_file():
        speedup = LatencyReport.read(layout.latency_report).speedup_p50
        line += f"; ONNX fp32 p50 {speedup:.2f}x PyTorch eager"
    return line


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path("."), help="project (default: .)")
    parser.add_argument(
        "--allow-failed",
        action="append",
        default=[],
        metavar="CHECK",
        help="a release check allowed to fail (repeatable), e.g. beats_baseline; naming "
        "release.metric also lets it miss its floor or ceiling",
    )
    parser.add_argument(
        "--min-prunable",
        type=int,
        default=MIN_PRUNABLE,
        help="prunable trials from which a pruned one is required (default: %(default)s)",
    )
    args = parser.parse_args(argv)
    failures = check_all(args.root, args.allow_failed, args.min_prunable)
    try:
        print(headline(args.root))
    except SeqopsError as exc:
        print(f"(no headline: {exc})")
    for failure in failures:
        print(f"FAIL: {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
