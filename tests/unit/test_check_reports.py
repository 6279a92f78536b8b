"""`.ci/check_reports.py` checks what the params say: on small, consistent report folders
written for the default params, each preset and tuning off it passes; on one with a short
predictions file, a missed floor, a lost split or a silent pruner it fails, naming each."""

from __future__ import annotations

import csv
import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from seqops.config import Config, metric_direction, parse_config
from seqops.contracts import (
    CheckResult,
    ExportReport,
    Int8Report,
    LatencyReport,
    LengthStats,
    Parity,
    ReleaseReport,
    RuntimeLatency,
    TuneReport,
)
from seqops.tasks import get_task
from tests.conftest import REPO, merge, preset_params


def _load_check_reports() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "check_reports", REPO / ".ci" / "check_reports.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


check_reports = _load_check_reports()

#: The params of each project the checks must pass on.
PROJECTS: dict[str, dict[str, Any]] = {
    "default": yaml.safe_load((REPO / "params.yaml").read_text()),
    "tuning_off": merge(yaml.safe_load((REPO / "params.yaml").read_text()),
                        {"tune": {"enabled": False}}),
    **{name: preset_params(name) for name in ("sst2", "co2", "tecator")},
}  # fmt: skip


def _sizes(cfg: Config) -> tuple[int, int]:
    """(n_test, scored test values): a forecast scores every step of each test window."""
    if cfg.data.task == "forecasting":
        return 1, cfg.data.forecast.horizon
    return 12, 12


def _quality(cfg: Config) -> tuple[str, float, float]:
    """The release metric, a value that clears its limit, and the limit."""
    metric = cfg.release.metric
    if metric_direction(metric) == "minimize":
        assert cfg.release.max_metric is not None
        return metric, cfg.release.max_metric / 2, cfg.release.max_metric
    return metric, min(1.0, cfg.release.min_metric + 0.02), cfg.release.min_metric


#: Each task's own fields of a consistent fake `reports/data.json` (classes add up to the splits).
TASK_FIELDS: dict[str, dict[str, Any]] = {
    "sequence_classification": {
        "n_classes": 2,
        "class_counts": {"train": {"a": 20, "b": 20}, "val": {"a": 4, "b": 4},
                         "test": {"a": 6, "b": 6}},
    },
    "sequence_regression": {"target": {"train": {"mean": 1.0, "std": 1.0, "min": 0.0,
                                                 "max": 2.0}}},
    "forecasting": {
        "series": {"n_steps": 100, "start": "0", "end": "99", "train_end": "79",
                   "val": ["80", "89"], "test": ["90", "99"], "gaps_filled": 0, "filled": [],
                   "targets": ["y"], "lookback": 12, "horizon": 3, "differencing": "none",
                   "season_length": 12},
    },
}  # fmt: skip
TASK_FIELDS["text_classification"] = {
    **TASK_FIELDS["sequence_classification"],
    "vocab_size": 50,
    "test_unknown_token_rate": 0.1,
}
#: Each task's own fields of `reports/metrics.json`, where it has any.
METRICS_FIELDS: dict[str, dict[str, Any]] = {"forecasting": {"per_step": {"rmse": [0.1]}}}


def _choice(cfg: Config) -> dict[str, Any] | None:
    """A consistent `tune.choose` record: the last value listed is preferred."""
    if not cfg.tune.enabled or not cfg.tune.choose:
        return None
    k = cfg.tune.choose_folds
    record = {}
    for path, values in cfg.tune.choose.items():
        candidates = [
            {"value": v, "accuracy": 0.5 + 0.1 * i, "loss": 1.0, "fold_accuracy": [0.5] * k,
             "fold_loss": [1.0] * k}
            for i, v in enumerate(values)
        ]  # fmt: skip
        record[path] = {"chosen": values[-1], "folds": k, "candidates": candidates}
    return record


def write_project(root: Path, params: dict[str, Any], **changes: Any) -> Path:
    """A project folder whose reports agree with `params` and with each other; `changes`
    (`pruned`, `rows`, `value`, `n_test`, `failed_check`) break one thing each."""
    (root / "reports" / "plots" / "evaluate").mkdir(parents=True)
    (root / "models").mkdir()
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    cfg = parse_config(params)
    reports = root / "reports"
    n_test, scored = _sizes(cfg)
    metric, value, limit = _quality(cfg)
    value = changes.get("value", value)
    length = LengthStats(min=3, median=5.0, max=9)
    task = get_task(cfg.data.task)
    task.parse_data_report(
        {
            "task": cfg.data.task,
            "n_train": 40,
            "n_val": 8,
            "n_test": changes.get("n_test", n_test),
            "n_features": 2,
            "source": "fake",
            "data_hash": "0" * 64,
            "length": {"train": length, "val": length, "test": length},
            **TASK_FIELDS[cfg.data.task],
        },
        "fake",
    ).write(reports / "data.json")
    test: dict[str, float | int] = {metric.removeprefix("test/"): value, "n": scored}
    if cfg.data.task == "forecasting":
        test["n_windows"] = n_test
    task.parse_metrics(
        {"task": cfg.data.task, "test": test, **METRICS_FIELDS.get(cfg.data.task, {})}, "fake"
    ).write(reports / "metrics.json")
    with (reports / "predictions.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["index", "actual", "model"])
        writer.writerows([i, 0, 0] for i in range(changes.get("rows", scored)))
    tune = cfg.tune
    pruned = changes.get("pruned", 1 if tune.enabled else 0)
    TuneReport(
        n_trials=tune.n_trials if tune.enabled else 0,
        complete=tune.n_trials - pruned if tune.enabled else 0,
        pruned=pruned,
        failed=0,
        metric=tune.metric,
        direction=tune.goal,
        wall_s=1.0,
        epochs=10,
        enabled=tune.enabled,
        choice=changes.get("choice", _choice(cfg)),
    ).write(reports / "tune.json")
    ExportReport(
        opset=17,
        dynamic_axes={},
        parity=Parity(max_abs_diff=1e-7, atol=cfg.export.parity_atol,
                      rtol=cfg.export.parity_rtol, shapes_checked=[[1, 5]], passed=True),
        int8=Int8Report(available=False, metric=metric, fp32=value, reason="GRU"),
    ).write(reports / "export.json")  # fmt: skip
    timing = RuntimeLatency(
        p50_ms=0.1, p95_ms=0.2, p99_ms=0.3, mean_ms=0.1, throughput=1e4, n_calls=100,
        threads=1, throughput_batch=64, model="model.onnx",
    )  # fmt: skip
    LatencyReport(torch=timing, onnx_fp32=timing, speedup_p50=1.0, settings={}).write(
        reports / "latency.json"
    )
    checks = {
        metric: CheckResult(value=value, threshold=limit, passed=True),
        "onnx_parity": CheckResult(value=True, threshold=True, passed=True),
        "no_regression_vs_champion": CheckResult(threshold=0.05, passed=True),
    }
    failed = changes.get("failed_check")
    if failed == metric:
        checks[metric] = CheckResult(value=value, threshold=limit, passed=False)
    elif failed is not None:
        checks[failed] = CheckResult(value=1.2, threshold=1.0, passed=False)
    ReleaseReport(
        passed=all(c.passed for c in checks.values()),
        checks=checks,
        model_name=cfg.release.model_name,
        version=1,
        aliases=["candidate"],
        lineage={"onnx.sha256": "0" * 64},
    ).write(reports / "release.json")
    (reports / "train.json").write_text("{}")
    (reports / "plots" / "learning_curves.csv").write_text("epoch,train/loss\n0,1.0\n")
    (reports / "plots" / "evaluate" / "plot.csv").write_text("x,y\n")
    sections = "\n\n".join(check_reports.CARD_SECTIONS)
    (root / "models" / "MODEL_CARD.md").write_text(f"# Model card\n\n{sections}\n")
    return root


@pytest.mark.parametrize("name", sorted(PROJECTS))
def test_passes_on_the_default_pipeline_each_preset_and_tuning_off(
    name: str, tmp_path: Path
) -> None:
    allow = ("beats_baseline",) if name == "tecator" else ()
    root = write_project(tmp_path, PROJECTS[name])
    assert check_reports.check_all(root, allow) == []
    if name == "tecator":  # its gate refuses its model (beats_baseline): allowed when named
        other = write_project(tmp_path / "t", PROJECTS[name], failed_check="beats_baseline")
        assert check_reports.check_all(other, allow) == []
        assert check_reports.main(["--root", str(other), "--allow-failed", "beats_baseline"]) == 0


def test_fails_naming_each_inconsistency(tmp_path: Path) -> None:
    root = write_project(
        tmp_path, PROJECTS["default"], rows=11, value=0.9, n_test=13, pruned=0,
        failed_check="onnx_fp32_p95_ms",
    )  # fmt: skip
    failures = check_reports.check_all(root)
    joined = "\n".join(failures)
    assert "test/accuracy 0.9 < release.min_metric 0.95" in joined
    assert "evaluated 12 test examples" in joined and "n_test = 13" in joined
    assert "test class counts add up to 12, n_test is 13" in joined
    assert "predictions.csv has 11 rows" in joined and "scored n = 12" in joined
    assert "the median pruner pruned no trial of 3 it could have stopped" in joined
    assert "release gate failed (onnx_fp32_p95_ms" in joined
    assert len(failures) == 6, failures
    assert check_reports.main(["--root", str(root)]) == 1


def test_a_failed_release_check_fails_unless_it_is_allowed(tmp_path: Path) -> None:
    root = write_project(tmp_path, PROJECTS["tecator"], failed_check="beats_baseline")
    (failure,) = check_reports.check_all(root)
    assert failure.startswith("release gate failed (beats_baseline")
    # Tecator's measured model also misses its RMSE ceiling (6.63 against 6.0): naming the
    # release metric lets the quality check and the gate's row fail too.
    missed = write_project(tmp_path / "missed", PROJECTS["tecator"], value=6.63,
                           failed_check="test/rmse")  # fmt: skip
    quality, gate = check_reports.check_all(missed, ("beats_baseline",))
    assert quality == "test/rmse 6.63 > release.max_metric 6.0"
    assert gate.startswith("release gate failed (test/rmse: 6.63")
    assert check_reports.check_all(missed, ("beats_baseline", "test/rmse")) == []


def test_pruning_is_required_only_when_the_pruner_could_prune(tmp_path: Path) -> None:
    few = merge(PROJECTS["sst2"], {"tune": {"n_trials": 2}})  # CI's reduced SST-2 budget
    assert check_reports.prunable_trials(parse_config(few)) == 0
    assert check_reports.check_all(write_project(tmp_path / "few", few, pruned=0)) == []
    off = merge(PROJECTS["default"], {"tune": {"pruner": "none"}})
    assert check_reports.check_all(write_project(tmp_path / "off", off, pruned=0)) == []
    many = PROJECTS["default"]  # 6 trials, 3 start-up, rounds of 2: 3 prunable
    assert check_reports.prunable_trials(parse_config(many)) == 3
    (failure,) = check_reports.check_all(write_project(tmp_path / "many", many, pruned=0))
    assert "pruned no trial" in failure


def test_tuning_off_must_mean_no_search(tmp_path: Path) -> None:
    root = write_project(tmp_path, PROJECTS["tuning_off"])
    searched = TuneReport(
        n_trials=6, complete=6, pruned=0, failed=0, metric="val/loss", direction="minimize",
        wall_s=1.0, epochs=60, enabled=True,
    )  # fmt: skip
    searched.write(root / "reports" / "tune.json")
    (failure,) = check_reports.check_all(root)
    assert "tune.enabled is false" in failure


def test_a_choice_must_try_every_value_on_every_fold_and_keep_the_preferred(
    tmp_path: Path,
) -> None:
    cfg = parse_config(PROJECTS["default"])
    good = _choice(cfg)
    assert good is not None and cfg.tune.choose == {
        "model.kernel_features": [0, 10000], "model.recurrent": [True, False]
    }  # fmt: skip
    row, recurrent = good["model.kernel_features"], good["model.recurrent"]
    # After kernel_features 0, recurrent false is refused, nothing trained, true kept.
    untried = {"chosen": True, "folds": 3, "candidates": [],
               "refused": [{"value": False, "reason": "leaves no path"}]}  # fmt: skip
    zero_wins = [{**c, "accuracy": 0.9 - 0.1 * i} for i, c in enumerate(row["candidates"])]
    kernels_off = {
        "model.kernel_features": {**row, "chosen": 0, "candidates": zero_wins},
        "model.recurrent": untried,
    }
    ok = write_project(tmp_path / "untried", PROJECTS["default"], choice=kernels_off)
    assert check_reports.check_all(ok) == []
    broken = {
        "missing": ({}, "chose [], tune.choose lists ['model.kernel_features', 'model.recurrent']"),
        "worse": (
            {**good, "model.kernel_features": {**row, "chosen": 0}},
            "model.kernel_features = 0 chosen, the figures prefer 10000",
        ),
        "fewer folds": (
            {**good, "model.kernel_features": {**row, "folds": 2}},
            "tried [0, 10000] (refused []) on [2, 3] folds, tune.choose lists [0, 10000] on 3",
        ),
        "refused yet kept": (
            {**good, "model.recurrent": {**untried, "chosen": False}},
            "model.recurrent tried [] (refused [False]) on [3] folds",
        ),
        "neither tried nor refused": (
            {**good, "model.recurrent": {**recurrent, "candidates": recurrent["candidates"][:1]}},
            "model.recurrent tried [True] (refused []) on [3] folds",
        ),
    }
    for name, (choice, message) in broken.items():
        root = write_project(tmp_path / name.replace(" ", "_"), PROJECTS["default"], choice=choice)
        (failure,) = check_reports.check_all(root)
        assert message in failure, failure


def test_a_missing_report_is_a_failure_naming_it(tmp_path: Path) -> None:
    root = write_project(tmp_path, PROJECTS["default"])
    (root / "reports" / "latency.json").unlink()
    (failure,) = check_reports.check_all(root)
    assert "reports/latency.json: not found" in failure
