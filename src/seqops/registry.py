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
- not worse than the baseline: the model is not significantly worse than any of its task's
  classical baselines on the same test examples (`reports/predictions.csv`, the task's paired
  test at `release.baseline_alpha`; `tasks.base.baseline_check`);
- the task's own checks (`Task.extra_checks`, e.g. beating seasonal naive's RMSE).

The release stage records the verdict and never moves `champion`, so every `dvc exp run` is
kept and cheap. `promote` (`seqops promote`, run by the release workflow) moves `champion` to a
candidate whose gate passed, keeps the old one as `previous-champion`, and exits 3 when the
gate failed.
"""

from __future__ import annotations

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
from seqops.outputs import kill_point, sha256
from seqops.tasks import get_task, read_bundle
from seqops.tasks.base import Check

CANDIDATE, CHAMPION, PREVIOUS = "candidate", "champion", "previous-champion"


class GateFailed(SeqopsError):
    """At least one release check failed; the champion was left as it was. The CLI exits with
    its own status (3), apart from bad input (2)."""

    exit_code = 3


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
    baseline: Check | None = None,
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
    if baseline is not None:
        checks.append(baseline)
    return [*checks, *get_task(metrics.task).extra_checks(metrics), regression]


def against_baseline(cfg: ReleaseConfig, metrics: MetricsReport, layout: Layout) -> Check | None:
    """The model against its classical baselines on the same test examples, or None when
    `release.baseline_alpha` is null or the task reported no baseline."""
    import pandas as pd

    from seqops.tasks.base import baseline_check

    if cfg.baseline_alpha is None or not metrics.baseline:
        return None
    if not layout.predictions.is_file():
        raise SeqopsError(f"{layout.predictions}: not found (re-run `seqops evaluate`)")
    scores = get_task(metrics.task).paired_scores(metrics, pd.read_csv(layout.predictions))
    return baseline_check(scores, cfg.baseline_alpha)


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


def find_version(client: Any, name: str, digest: str) -> Any | None:
    """The registered version of `name` whose ONNX file has sha256 `digest` (the first one)."""
    matches = [
        v
        for v in client.search_model_versions(f"name = '{name}'")
        if v.tags.get("onnx.sha256") == digest
    ]
    return min(matches, key=lambda v: int(v.version)) if matches else None


def register(client: Any, cfg: ReleaseConfig, lineage: dict[str, str], model_uri: str) -> Any:
    """The candidate's registry version: registered once per distinct ONNX file (a rerun on
    the same model reuses its version), tagged with its lineage, aliased `candidate`."""
    from mlflow import register_model

    version = find_version(client, cfg.model_name, lineage["onnx.sha256"])
    if version is None:
        version = register_model(model_uri, cfg.model_name)
        for key, value in lineage.items():
            client.set_model_version_tag(cfg.model_name, version.version, key, value)
    client.set_registered_model_alias(cfg.model_name, CANDIDATE, version.version)
    return version


def release(cfg: ReleaseConfig, layout: Layout) -> ReleaseReport:
    """Register the candidate and run the gate against the current champion; the verdict is
    the report. Nothing moves `champion`: that is `promote`'s job."""
    from mlflow import MlflowClient

    metrics = MetricsReport.read(layout.metrics)
    export_report = ExportReport.read(layout.export_report)
    latency = LatencyReport.read(layout.latency_report)
    if export_report.mlflow_model_uri is None:
        raise SeqopsError(f"{layout.export_report}: no MLflow model (re-run `seqops export`)")
    client = MlflowClient()
    recover_promotion(client, cfg.model_name)
    champion = _alias_version(client, cfg.model_name, CHAMPION)
    lineage = lineage_tags(layout)
    version = register(client, cfg, lineage, export_report.mlflow_model_uri)
    is_champion = champion is not None and str(champion.version) == str(version.version)
    if is_champion:
        regression = Check(
            "no_regression_vs_champion",
            None,
            cfg.alpha,
            True,
            f"the candidate is the champion v{version.version} (the same ONNX file)",
        )
    else:
        candidate_uri = f"models:/{cfg.model_name}/{version.version}"
        regression = regression_check(cfg, candidate_uri, champion, layout)
    baseline = against_baseline(cfg, metrics, layout)
    checks = gate(cfg, metrics, export_report, latency, regression, baseline)
    passed = all(c.passed for c in checks)
    client.set_model_version_tag(
        cfg.model_name, version.version, "gate.passed", str(passed).lower()
    )
    aliases = [CANDIDATE] + ([CHAMPION] if is_champion else [])
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
        lineage=lineage,
        champion=int(champion.version) if champion is not None else None,
    )


# -- promotion ----------------------------------------------------------------------------------

#: Registered-model tag holding a promotion in progress, `<old version or empty>><new version>`:
#: written before the aliases move and removed after, so an interrupted promotion is completed
#: by the next registry command instead of leaving the aliases half moved.
PROMOTION_TAG = "seqops.promotion"
#: The steps after which `promote` SIGKILLs itself when `SEQOPS_KILL_AT` names one (kill tests).
PROMOTION_STEPS = ("records", "intent", "champion", "previous")


def recover_promotion(client: Any, name: str) -> str | None:
    """Complete a promotion a killed process left half done; returns what was completed."""
    from mlflow.exceptions import MlflowException

    try:
        pending = client.get_registered_model(name).tags.get(PROMOTION_TAG)
    except MlflowException:  # no such model yet
        return None
    if not pending:
        return None
    old, _, new = pending.partition(">")
    client.set_registered_model_alias(name, CHAMPION, new)
    if old:
        client.set_registered_model_alias(name, PREVIOUS, old)
    client.delete_registered_model_tag(name, PROMOTION_TAG)
    return f"completed an interrupted promotion of v{new} (champion before: v{old or 'none'})"


def promote(cfg: ReleaseConfig, layout: Layout) -> dict[str, Any]:
    """Move `champion` to the candidate the release stage judged, if its gate passed.

    The order makes a kill at any point safe: the candidate's records (model card, release
    report, tags) are complete before anything moves; an intent tag is written; `champion`
    moves (the alias serving reads, one call); `previous-champion` follows; the tag goes. A
    later `promote`, `release` or rollback completes an interrupted one from the tag."""
    import mlflow
    from mlflow import MlflowClient

    report = ReleaseReport.read(layout.release_report)
    onnx_file = layout.models / contract.MODEL_FILE
    if not onnx_file.is_file() or report.lineage.get("onnx.sha256") != sha256(onnx_file):
        raise SeqopsError(
            f"{onnx_file} is not the model {layout.release_report} judged; run `dvc repro` first"
        )
    if not report.passed:
        failed = [n for n, c in report.checks.items() if not c.passed]
        raise GateFailed(
            f"gate failed ({', '.join(failed)}): {report.model_name} v{report.version} is not "
            "promoted; champion unchanged"
        )
    name, new = report.model_name, str(report.version)
    client = MlflowClient()
    recovered = recover_promotion(client, name)
    champion = _alias_version(client, name, CHAMPION)
    old = str(champion.version) if champion is not None else None
    if old == new:
        return {"model_name": name, "champion": int(new), "changed": False, "recovered": recovered}
    if report.run_id:
        with mlflow.start_run(run_id=report.run_id):
            mlflow.log_artifact(str(layout.release_report), "reports")
            mlflow.log_artifact(str(layout.model_card))
            mlflow.set_tag("seqops.promoted", "true")
    client.set_model_version_tag(name, new, "promoted", "true")
    kill_point("records")
    client.set_registered_model_tag(name, PROMOTION_TAG, f"{old or ''}>{new}")
    kill_point("intent")
    client.set_registered_model_alias(name, CHAMPION, new)
    kill_point("champion")
    if old is not None:
        client.set_registered_model_alias(name, PREVIOUS, old)
    kill_point("previous")
    client.delete_registered_model_tag(name, PROMOTION_TAG)
    return {
        "model_name": name,
        "champion": int(new),
        "previous_champion": int(old) if old is not None else None,
        "changed": True,
        "recovered": recovered,
    }


def rollback(cfg: ReleaseConfig) -> dict[str, Any]:
    """Point `champion` back at `previous-champion`, a genuinely different model (another
    ONNX file); the demoted version is tagged."""
    from mlflow import MlflowClient

    client = MlflowClient()
    recover_promotion(client, cfg.model_name)
    previous = _alias_version(client, cfg.model_name, PREVIOUS)
    current = _alias_version(client, cfg.model_name, CHAMPION)
    if previous is None:
        raise SeqopsError(
            f"{cfg.model_name}: no '{PREVIOUS}' alias to roll back to "
            f"(champion is {f'v{current.version}' if current else 'unset'})"
        )
    if current is not None and previous.tags.get("onnx.sha256") == current.tags.get("onnx.sha256"):
        raise SeqopsError(
            f"{cfg.model_name}: '{PREVIOUS}' v{previous.version} is the same ONNX file as the "
            f"champion v{current.version}; nothing different to roll back to"
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
