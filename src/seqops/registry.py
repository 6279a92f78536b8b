"""The release gate and the MLflow Model Registry: register, check, promote, roll back, trace.

    report = release(cfg.release, layout)     # register the candidate, run the gate
    rollback(cfg.release)                     # champion <- previous-champion
    lineage(Path("models/model.onnx"), "seqops")

The gate's checks (see docs/architecture.md, "Release"):

- quality: the task metric on the test set against `release.min_metric` (higher is better)
  or `release.max_metric` (an error);
- parity: ONNX Runtime matched PyTorch (`reports/export.json`);
- latency: ONNX fp32 batch-1 p95 <= `release.max_p95_ms` (`reports/latency.json`);
- no regression: candidate and champion, both served from their registered ONNX bundles,
  scored per example on the same raw test inputs and compared with the task's paired test
  (`Task.scorer`) at `release.alpha`; passes, saying why, when there is no champion yet;
- the task's own checks (`Task.extra_checks`, e.g. beating a classical baseline).

All pass: `champion` moves to the new version and the old one keeps `previous-champion`.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict
from pathlib import Path
from typing import Any

from seqops import onnx_contract as contract
from seqops.config import ReleaseConfig, metric_direction
from seqops.contracts import (
    CheckResult,
    DataReport,
    ExportReport,
    LatencyReport,
    MetricsReport,
    ReleaseReport,
    TuneReport,
)
from seqops.errors import SeqopsError
from seqops.layout import Layout
from seqops.tasks import get_task, read_bundle
from seqops.tasks.base import Check

CANDIDATE, CHAMPION, PREVIOUS = "candidate", "champion", "previous-champion"


class GateFailed(SeqopsError):
    """At least one release check failed; the champion was left as it was."""


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


#: Metrics are computed in float32: 19 of 20 right is stored as 0.949999988. A score within this
#: relative distance of its threshold counts as on it.
FLOAT32_TOLERANCE = 1e-6


def at_most(value: float, limit: float) -> bool:
    """`value <= limit`, with a score equal to the limit up to float32 rounding passing."""
    return value <= limit + FLOAT32_TOLERANCE * max(1.0, abs(limit))


def gate(
    cfg: ReleaseConfig,
    metrics: MetricsReport,
    export_report: ExportReport,
    latency: LatencyReport,
    regression: Check,
) -> list[Check]:
    value = float(metrics.test[cfg.metric.removeprefix("test/")])
    parity = export_report.parity
    p95 = latency.onnx_fp32.p95_ms
    agreement = parity.argmax_agreement
    if cfg.max_metric is not None and metric_direction(cfg.metric) == "minimize":
        quality = Check(cfg.metric, value, cfg.max_metric, at_most(value, cfg.max_metric))
    else:
        quality = Check(cfg.metric, value, cfg.min_metric, at_most(cfg.min_metric, value))
    checks = [
        quality,
        Check(
            "onnx_parity",
            parity.passed,
            True,
            parity.passed,
            f"max |Δoutput| {parity.max_abs_diff:.2e}"
            + (f", argmax agreement {agreement:.2%}" if agreement is not None else ""),
        ),
        Check("onnx_fp32_p95_ms", p95, cfg.max_p95_ms, p95 <= cfg.max_p95_ms),
    ]
    return [*checks, *get_task(metrics.task).extra_checks(metrics), regression]


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

    bundle = read_bundle(layout.models / contract.PREPROCESSING_FILE)
    scorer = get_task(bundle.data.task).scorer(layout.processed, bundle)
    champion_uri = f"models:/{cfg.model_name}/{champion_version.version}"
    try:
        champion = scorer.score(mlflow.pyfunc.load_model(champion_uri))
    except Exception as exc:  # a champion trained on other data or features cannot be compared
        return Check(
            "no_regression_vs_champion",
            None,
            cfg.alpha,
            False,
            f"champion v{champion_version.version} cannot score this test set: {exc}",
        )
    check = scorer.compare(
        scorer.score(mlflow.pyfunc.load_model(candidate_uri)), champion, cfg.alpha
    )
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

    data = DataReport.read(layout.data_report)
    tags = tracking.lineage_tags(layout.root, data.data_hash)
    tags["onnx.sha256"] = sha256(layout.models / contract.MODEL_FILE)
    if layout.tune_report.is_file():
        tune = TuneReport.read(layout.tune_report)
        for key, value in (
            ("study", tune.study),
            ("best_trial", tune.best_trial),
            ("parent_run_id", tune.parent_run_id),
        ):
            if value is not None:
                tags[f"optuna.{key}"] = str(value)
    return tags


def release(cfg: ReleaseConfig, layout: Layout) -> ReleaseReport:
    """Register, gate, promote on success; returns the report (also on failure)."""
    from mlflow import MlflowClient, register_model

    metrics = MetricsReport.read(layout.metrics)
    export_report = ExportReport.read(layout.export_report)
    latency = LatencyReport.read(layout.latency_report)
    if export_report.mlflow_model_uri is None:
        raise SeqopsError(f"{layout.export_report}: no MLflow model (re-run `seqops export`)")
    client = MlflowClient()
    champion = _alias_version(client, cfg.model_name, CHAMPION)
    version = register_model(export_report.mlflow_model_uri, cfg.model_name)
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
    previous = int(champion.version) if champion is not None else None
    return ReleaseReport(
        passed=passed,
        checks={
            c.name: CheckResult(**{k: v for k, v in asdict(c).items() if k != "name"})
            for c in checks
        },
        model_name=cfg.model_name,
        version=int(version.version),
        run_id=version.run_id,
        aliases=aliases,
        previous_champion=previous,
        lineage=lineage,
        champion=int(version.version) if passed else previous,
    )


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
    """What `seqops lineage` prints."""
    from seqops import tracking
    from seqops.config import load_config

    cfg = load_config(params)
    tracking.use_tracking(cfg.tracking)
    return lineage(Path(onnx_file), cfg.release.model_name)
