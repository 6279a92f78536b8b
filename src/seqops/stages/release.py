"""release: register the exported model, run the gate, move the `champion` alias if it passes.

    seqops release [--params params.yaml]     # the last stage of dvc.yaml
    seqops release --rollback                 # champion ← previous-champion

The model logged by the export stage is registered under `release.model_name` with alias
`candidate`; then the gate checks (design.md §6):

- quality: the task metric on the test set ≥ `release.min_metric`;
- parity: ONNX Runtime matched PyTorch (`reports/export.json`);
- latency: ONNX fp32 batch-1 p95 ≤ `release.max_p95_ms` (`reports/latency.json`);
- no regression: McNemar's exact test on per-example correctness of the candidate and the
  current champion, both served from their registered ONNX bundles on the same test set,
  at `release.alpha` (passes, saying why, when there is no champion yet); for forecasting,
  a one-sided Diebold-Mariano test on both models' forecast errors from the same raw test
  histories;
- forecasting only: the model's test RMSE is below the seasonal-naive forecast's.

For forecasting the quality check is a ceiling on an error (`release.max_metric`).

All pass: `champion` moves to the new version and the old one keeps `previous-champion`.
Any fails: the stage exits non-zero and the champion is untouched. Either way
`reports/release.json` and `models/MODEL_CARD.md` are written and logged to MLflow.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from seqops import onnx_contract as contract
from seqops import outputs
from seqops.config import ReleaseConfig, load_config, metric_direction
from seqops.errors import SeqopsError
from seqops.layout import Layout

CANDIDATE, CHAMPION, PREVIOUS = "candidate", "champion", "previous-champion"


class GateFailed(SeqopsError):
    """At least one release check failed; the champion was left as it was."""


@dataclass(frozen=True)
class Check:
    name: str
    value: float | bool | None
    threshold: float | bool | str | None
    passed: bool
    detail: str = ""


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


#: A paired test of candidate vs champion per-example scores at a significance level.
PairedCheck = Callable[[np.ndarray, np.ndarray, float], "Check"]


def mcnemar_regression(
    candidate_correct: np.ndarray, champion_correct: np.ndarray, alpha: float
) -> Check:
    """Paired exact test: does the candidate get significantly fewer examples right?"""
    from statsmodels.stats.contingency_tables import mcnemar

    cand, champ = candidate_correct.astype(bool), champion_correct.astype(bool)
    only_champion = int(np.sum(champ & ~cand))
    only_candidate = int(np.sum(cand & ~champ))
    table = [
        [int(np.sum(cand & champ)), only_candidate],
        [only_champion, int(np.sum(~cand & ~champ))],
    ]
    p_value = float(mcnemar(table, exact=True).pvalue)
    regressed = only_champion > only_candidate and p_value < alpha
    return Check(
        "no_regression_vs_champion",
        p_value,
        alpha,
        not regressed,
        f"McNemar exact: champion-only correct {only_champion}, candidate-only correct "
        f"{only_candidate}, p={p_value:.4g}",
    )


def diebold_mariano_regression(
    candidate_errors: np.ndarray, champion_errors: np.ndarray, alpha: float
) -> Check:
    """Paired test on forecast errors: are the candidate's squared errors significantly larger?"""
    from seqops.forecasting import diebold_mariano

    if candidate_errors.size < 2:
        return Check(
            "no_regression_vs_champion",
            None,
            alpha,
            True,
            f"{candidate_errors.size} forecast point: too few for a paired test (raise "
            "data.forecast.horizon or test_windows)",
        )
    test = diebold_mariano(candidate_errors, champion_errors)
    rmse = [float(np.sqrt((e**2).mean())) for e in (candidate_errors, champion_errors)]
    return Check(
        "no_regression_vs_champion",
        test.p_value,
        alpha,
        not test.p_value < alpha,
        f"Diebold-Mariano (squared error, HLN) on {test.n} forecast points: RMSE candidate "
        f"{rmse[0]:.4g} vs champion {rmse[1]:.4g}, statistic {test.statistic:.3g}, "
        f"one-sided p={test.p_value:.4g}",
    )


def gate(
    cfg: ReleaseConfig,
    metrics: dict[str, Any],
    export_report: dict[str, Any],
    latency: dict[str, Any],
    regression: Check,
) -> list[Check]:
    value = float(metrics["test"][cfg.metric.removeprefix("test/")])
    parity = export_report["parity"]
    p95 = float(latency["onnx_fp32"]["p95_ms"])
    agreement = parity["argmax_agreement"]
    if cfg.max_metric is not None and metric_direction(cfg.metric) == "minimize":
        quality = Check(cfg.metric, value, cfg.max_metric, value <= cfg.max_metric)
    else:
        quality = Check(cfg.metric, value, cfg.min_metric, value >= cfg.min_metric)
    checks = [
        quality,
        Check(
            "onnx_parity",
            bool(parity["passed"]),
            True,
            bool(parity["passed"]),
            f"max |Δoutput| {parity['max_abs_diff']:.2e}"
            + (f", argmax agreement {agreement:.2%}" if agreement is not None else ""),
        ),
        Check("onnx_fp32_p95_ms", p95, cfg.max_p95_ms, p95 <= cfg.max_p95_ms),
    ]
    if "baseline" in metrics:  # forecasting: a model must beat the seasonal-naive forecast
        ours, naive = metrics["test"]["rmse"], metrics["baseline"]["seasonal_naive"]["rmse"]
        checks.append(
            Check(
                "beats_seasonal_naive",
                ours / naive,
                1.0,
                ours < naive,
                f"test RMSE {ours:.4g} vs seasonal naive {naive:.4g}",
            )
        )
    return [*checks, regression]


def _paired_scorer(layout: Layout) -> tuple[Callable[[Any], np.ndarray], PairedCheck]:
    """How to score one loaded pyfunc model on this test set, per example, and the paired test
    that compares two such scores: correctness and McNemar for classifiers, forecast errors
    from the raw test histories and Diebold-Mariano for forecasters."""
    from seqops.data.sequences import SequenceSet
    from seqops.serving import ForecastPreprocessing, TextPreprocessing, load_preprocessing
    from seqops.stages.export import example_frame, text_frame
    from seqops.stages.prepare import TEST_TEXTS_FILE

    pre = load_preprocessing(layout.models / contract.PREPROCESSING_FILE)
    if isinstance(pre, ForecastPreprocessing):
        from seqops.forecasting import ForecastTest

        forecast_test = ForecastTest.load(layout.processed)
        histories = forecast_test.history_frame(pre.id_column, pre.time_column)
        actual, targets = forecast_test.actual(), pre.spec.target_names

        def errors(model: Any) -> np.ndarray:
            forecasts = model.predict(histories)
            return forecasts[targets].to_numpy().reshape(actual.shape) - actual

        return errors, diebold_mariano_regression
    test = SequenceSet.load(layout.processed / "test.npz")
    if isinstance(pre, TextPreprocessing):  # both models read the raw test texts
        frame = text_frame(json.loads((layout.processed / TEST_TEXTS_FILE).read_text()), pre)
    else:
        frame = example_frame(test, pre, n=len(test))
    truth = [pre.label_names[y] for y in test.labels]

    def correct(model: Any) -> np.ndarray:
        predictions = model.predict(frame)
        by_id = dict(zip(predictions[pre.id_column], predictions["label"], strict=True))
        return np.array([by_id[f"seq{i}"] == label for i, label in enumerate(truth)])

    return correct, mcnemar_regression


def regression_check(
    cfg: ReleaseConfig, candidate_uri: str, champion_version: Any | None, layout: Layout
) -> Check:
    """Candidate and champion, both served from their registered ONNX bundles, scored on the
    same raw test inputs and compared with the task's paired test."""
    if champion_version is None:
        return Check(
            "no_regression_vs_champion", None, cfg.alpha, True, "no champion yet: first release"
        )
    import mlflow

    score, paired_test = _paired_scorer(layout)
    champion_uri = f"models:/{cfg.model_name}/{champion_version.version}"
    try:
        champion = score(mlflow.pyfunc.load_model(champion_uri))
    except Exception as exc:  # a champion trained on other data or features cannot be compared
        return Check(
            "no_regression_vs_champion",
            None,
            cfg.alpha,
            False,
            f"champion v{champion_version.version} cannot score this test set: {exc}",
        )
    check = paired_test(score(mlflow.pyfunc.load_model(candidate_uri)), champion, cfg.alpha)
    detail = f"vs champion v{champion_version.version}: {check.detail}"
    return Check(check.name, check.value, check.threshold, check.passed, detail)


def _alias_version(client: Any, name: str, alias: str) -> Any | None:
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException:
        return None


def lineage_tags(layout: Layout) -> dict[str, str]:
    from seqops import tracking

    data = json.loads((layout.reports / "data.json").read_text())
    tags = tracking.lineage_tags(layout.root, data["data_hash"])
    tags["onnx.sha256"] = sha256(layout.models / contract.MODEL_FILE)
    tune_file = layout.reports / "tune.json"
    if tune_file.is_file():
        tune = json.loads(tune_file.read_text())
        for key in ("study", "best_trial", "parent_run_id"):
            if tune.get(key) is not None:
                tags[f"optuna.{key}"] = str(tune[key])
    return tags


def release(cfg: ReleaseConfig, layout: Layout) -> dict[str, Any]:
    """Register, gate, promote on success; returns the report (also on failure)."""
    from mlflow import MlflowClient, register_model

    reports = layout.reports
    metrics = json.loads((reports / "metrics.json").read_text())
    export_report = json.loads((reports / "export.json").read_text())
    latency = json.loads((reports / "latency.json").read_text())
    client = MlflowClient()
    champion = _alias_version(client, cfg.model_name, CHAMPION)
    version = register_model(export_report["mlflow_model_uri"], cfg.model_name)
    lineage = lineage_tags(layout)
    for key, value in lineage.items():
        client.set_model_version_tag(cfg.model_name, version.version, key, value)
    client.set_registered_model_alias(cfg.model_name, CANDIDATE, version.version)
    candidate_uri = f"models:/{cfg.model_name}/{version.version}"
    checks = gate(
        cfg,
        metrics,
        export_report,
        latency,
        regression_check(cfg, candidate_uri, champion, layout),
    )
    passed = all(c.passed for c in checks)
    aliases = [CANDIDATE]
    if passed:
        if champion is not None:
            client.set_registered_model_alias(cfg.model_name, PREVIOUS, champion.version)
        client.set_registered_model_alias(cfg.model_name, CHAMPION, version.version)
        aliases.append(CHAMPION)
    client.set_model_version_tag(
        cfg.model_name, version.version, "gate.passed", str(passed).lower()
    )
    return {
        "passed": passed,
        "checks": {c.name: {k: v for k, v in asdict(c).items() if k != "name"} for c in checks},
        "model_name": cfg.model_name,
        "version": int(version.version),
        "run_id": version.run_id,
        "aliases": aliases,
        "previous_champion": int(champion.version) if champion is not None else None,
        "lineage": lineage,
        "champion": int(version.version)
        if passed
        else (int(champion.version) if champion is not None else None),
    }


def rollback(cfg: ReleaseConfig) -> dict[str, Any]:
    """Point `champion` back at `previous-champion`; the demoted version is tagged."""
    from mlflow import MlflowClient

    client = MlflowClient()
    previous = _alias_version(client, cfg.model_name, PREVIOUS)
    current = _alias_version(client, cfg.model_name, CHAMPION)
    if previous is None:
        raise SeqopsError(
            f"{cfg.model_name}: no '{PREVIOUS}' alias to roll back to "
            f"(champion is {f'v{current.version}' if current else 'unset'})"
        )
    client.set_registered_model_alias(cfg.model_name, CHAMPION, previous.version)
    client.delete_registered_model_alias(cfg.model_name, PREVIOUS)
    if current is not None:
        client.set_model_version_tag(cfg.model_name, current.version, "rolled_back", "true")
    return {
        "model_name": cfg.model_name,
        "champion": int(previous.version),
        "demoted": int(current.version) if current is not None else None,
    }


def main(
    params: str | Path = "params.yaml", layout: Layout | None = None, *, rollback_: bool = False
) -> dict[str, Any]:
    import mlflow

    from seqops import tracking
    from seqops.model_card import render_model_card
    from seqops.stages.train import load_merged_config

    layout = layout or Layout()
    cfg = load_config(params)
    tracking.use_tracking(cfg.tracking)
    if rollback_:
        result = rollback(cfg.release)
        print(
            f"release: rolled back {result['model_name']}: champion is v{result['champion']}"
            + (f" (v{result['demoted']} demoted)" if result["demoted"] else "")
        )
        return result
    report_file, card_file = layout.reports / "release.json", layout.models / "MODEL_CARD.md"
    outputs.remove(report_file, card_file)
    report = release(cfg.release, layout)
    outputs.write_json(report_file, report)
    merged = load_merged_config(params, layout.best_params)
    flat = merged.to_flat_dict(("seed", "data", "model", "train"))
    outputs.write_text(card_file, render_model_card(layout, report, flat))
    with tracking.resume_run(layout.run_file):
        mlflow.log_artifact(str(report_file), "reports")
        mlflow.log_artifact(str(card_file))
        mlflow.log_metric("release/passed", float(report["passed"]))
    for name, check in report["checks"].items():
        mark = "pass" if check["passed"] else "FAIL"
        value, threshold = check["value"], check["threshold"]
        print(f"  [{mark}] {name}: {value} (threshold {threshold}) {check['detail']}")
    if not report["passed"]:
        failed = [n for n, c in report["checks"].items() if not c["passed"]]
        raise GateFailed(
            f"gate failed ({', '.join(failed)}): {cfg.release.model_name} v{report['version']} "
            f"stays '{CANDIDATE}'; champion unchanged (v{report['champion']})"
        )
    print(f"release: {cfg.release.model_name} v{report['version']} is now '{CHAMPION}'")
    return report


def lineage(onnx_file: Path, model_name: str) -> dict[str, Any]:
    """The registered version whose ONNX hash matches `onnx_file`, with what produced it."""
    from mlflow import MlflowClient

    if not onnx_file.is_file():
        raise SeqopsError(f"{onnx_file}: no such file")
    digest = sha256(onnx_file)
    client = MlflowClient()
    matches = [
        v
        for v in client.search_model_versions(f"name = '{model_name}'")
        if v.tags.get("onnx.sha256") == digest
    ]
    if not matches:
        raise SeqopsError(
            f"{onnx_file} (sha256 {digest[:16]}…) matches no registered version of "
            f"{model_name!r}: it was not released by this project, or it was modified"
        )
    version = max(matches, key=lambda v: int(v.version))
    params = dict(client.get_run(version.run_id).data.params) if version.run_id else {}
    return {
        "file": str(onnx_file),
        "sha256": digest,
        "verified": True,
        "model": model_name,
        "version": int(version.version),
        "aliases": list(version.aliases),
        "run_id": version.run_id,
        "git_commit": version.tags.get("git.commit"),
        "git_dirty": version.tags.get("git.dirty"),
        "data_hash": version.tags.get("data.hash"),
        "optuna_study": version.tags.get("optuna.study"),
        "optuna_trial": version.tags.get("optuna.best_trial"),
        "dvc_stages": {
            k.removeprefix("dvc.stage."): v
            for k, v in version.tags.items()
            if k.startswith("dvc.stage.")
        },
        "params": params,
    }


def lineage_main(onnx_file: Path, params: str | Path = "params.yaml") -> dict[str, Any]:
    from seqops import tracking

    cfg = load_config(params)
    tracking.use_tracking(cfg.tracking)
    return lineage(Path(onnx_file), cfg.release.model_name)
