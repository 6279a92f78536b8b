"""The release gate: the checks a candidate must pass, judged against one champion.

    checks = evaluate(cfg.release, layout, regression)   # regression: against_champion(...)

The checks (see docs/architecture.md, "Release"):

- quality: the task metric on the test set against `release.min_metric` (higher is better)
  or `release.max_metric` (an error);
- parity: ONNX Runtime matched PyTorch (`reports/export.json`);
- latency: ONNX fp32 batch-1 p95 <= `release.max_p95_ms` (`reports/latency.json`);
- not worse than the baseline: the model is not significantly worse than any of its task's
  classical baselines on the same test examples (`reports/predictions.csv`, the task's paired
  test at `release.baseline_alpha`; `tasks.parts.release.baseline_check`); whenever a
  baseline scores better on test, significant or not, its detail opens with
  `baseline_sentences`, which the evaluate and release stages print and the model card
  shows too;
- the task's own checks (`ReleaseTask.extra_checks`, e.g. beating seasonal naive's RMSE);
- interval coverage (only when `release.interval_coverage_tolerance` is set): the forecast
  intervals' test coverage within that distance of their nominal level;
- no regression: candidate and champion, both served from their registered ONNX bundles,
  scored per example on the same raw test inputs and compared with the task's paired test
  (`Task.scorer`: McNemar for classifiers, Diebold-Mariano for errors) at `release.alpha`;
  passes, saying why, when there is no champion yet.

A verdict is these checks against one champion under one set of release params
(`params_digest`). The release stage and `seqops promote` each judge for themselves and record
their verdict (`seqops.registry.record_verdict`); none is ever reused against another champion.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from seqops import onnx_contract as contract
from seqops.config import ReleaseConfig, metric_direction
from seqops.contracts import ExportReport, LatencyReport, MetricsReport
from seqops.errors import SeqopsError
from seqops.layout import Layout
from seqops.stats import PairedScores
from seqops.tasks import read_bundle, read_metrics
from seqops.tasks.base import Check
from seqops.tasks.parts.release import get_release

REGRESSION = "no_regression_vs_champion"


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


def params_digest(cfg: ReleaseConfig) -> str:
    """A short digest of the release params: which thresholds a verdict was judged under."""
    text = json.dumps(cfg.model_dump(mode="json"), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


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
    if cfg.interval_coverage_tolerance is not None:
        checks.append(coverage_check(metrics, cfg.interval_coverage_tolerance))
    return [*checks, *get_release(metrics.task).extra_checks(metrics), regression]


def coverage_check(metrics: MetricsReport, tolerance: float) -> Check:
    """The forecast intervals' test coverage must lie within `tolerance` of their nominal
    level (`interval_coverage` and `interval_level` of the report's `test`); a report
    without them fails, saying so."""
    coverage, level = metrics.test.get("interval_coverage"), metrics.test.get("interval_level")
    name = "interval_coverage"
    if coverage is None or level is None:
        return Check(
            name,
            None,
            tolerance,
            False,
            "release.interval_coverage_tolerance is set but reports/metrics.json has no test "
            "interval_coverage (re-run `seqops evaluate`; only forecasting reports intervals)",
        )
    gap = abs(float(coverage) - float(level))
    passed = at_most(gap, tolerance)
    verdict = "within" if passed else "outside"
    detail = (
        f"test coverage {float(coverage):.1%} of the {float(level):.0%} intervals is "
        f"{gap * 100:.1f} points from nominal, {verdict} the tolerance of "
        f"{tolerance * 100:g} points (release.interval_coverage_tolerance)"
    )
    return Check(name, float(coverage), f"{float(level):g} ± {tolerance:g}", passed, detail)


def paired_baselines(metrics: MetricsReport, predictions: Path) -> PairedScores | None:
    """The model and its classical baselines per test example (`reports/predictions.csv`), or
    None when the task reported no baseline."""
    import pandas as pd

    if not metrics.baseline:
        return None
    if not predictions.is_file():
        raise SeqopsError(f"{predictions}: not found (re-run `seqops evaluate`)")
    return get_release(metrics.task).paired_scores(metrics, pd.read_csv(predictions))


def model_beats_baselines(scores: PairedScores) -> bool:
    """The model scores strictly better on test than every classical baseline (higher
    accuracy, lower RMSE); a tie is not a win."""
    model = scores.value(scores.model)
    for baseline in scores.baselines.values():
        theirs = scores.value(baseline)
        if (model <= theirs) if scores.kind == "correct" else (model >= theirs):
            return False
    return True


def baseline_sentences(scores: PairedScores, alpha: float | None = None) -> list[str]:
    """One sentence per classical baseline that scores better than the model on test, whether
    or not the task's paired test finds the difference significant (at `alpha`, when given)."""
    found = []
    for name, baseline in scores.baselines.items():
        p_value, better, _ = scores.worse_than(name)
        if not better:
            continue
        if alpha is None:
            significance = f"p={p_value:.2g}"
        else:
            word = "significant" if p_value < alpha else "not significant"
            significance = f"{word} at α={alpha:g}, p={p_value:.2g}"
        found.append(
            f"The classical baseline ({name}) is better than the model on test: "
            f"{scores.value(baseline):#.4g} vs {scores.value(scores.model):#.4g} {scores.metric} "
            f"({significance})."
        )
    return found


def against_baseline(cfg: ReleaseConfig, metrics: MetricsReport, layout: Layout) -> Check | None:
    """The model against its classical baselines on the same test examples, or None when
    `release.baseline_alpha` is null or the task reported no baseline. A baseline that scored
    better is said in words first, significant or not."""
    from seqops.tasks.parts.release import baseline_check

    if cfg.baseline_alpha is None or not metrics.baseline:
        return None
    scores = paired_baselines(metrics, layout.predictions)
    assert scores is not None  # metrics.baseline is set
    check = baseline_check(scores, cfg.baseline_alpha)
    said = baseline_sentences(scores, cfg.baseline_alpha)
    if not said:
        return check
    detail = f"{' '.join(said)} ({check.detail})"
    return Check(check.name, check.value, check.threshold, check.passed, detail)


def evaluate(cfg: ReleaseConfig, layout: Layout, regression: Check) -> list[Check]:
    """Every check on the workspace's reports, with `regression` (the paired test against the
    champion, computed by the caller from the registered bundles) last."""
    metrics = read_metrics(layout.metrics)
    export_report = ExportReport.read(layout.export_report)
    latency = LatencyReport.read(layout.latency_report)
    baseline = against_baseline(cfg, metrics, layout)
    return gate(cfg, metrics, export_report, latency, regression, baseline)


def no_champion(cfg: ReleaseConfig) -> Check:
    return Check(REGRESSION, None, cfg.alpha, True, "no champion yet: first release")


def is_the_champion(cfg: ReleaseConfig, version: str) -> Check:
    return Check(
        REGRESSION,
        None,
        cfg.alpha,
        True,
        f"the candidate is the champion v{version} (the same ONNX file)",
    )


def cannot_compare(cfg: ReleaseConfig, version: str, reason: str) -> Check:
    return Check(REGRESSION, None, cfg.alpha, False, f"champion v{version} {reason}")


def against_champion(
    cfg: ReleaseConfig, layout: Layout, candidate: Any, champion: Any, version: str
) -> Check:
    """The paired test of `candidate` against `champion` (loaded MLflow pyfunc models of their
    registered bundles), both scored per example on the workspace's raw test inputs."""
    bundle = read_bundle(layout.models / contract.PREPROCESSING_FILE)
    scorer = get_release(bundle.data.task).scorer(layout.processed, bundle)
    try:
        champion_scores = scorer.score(champion)
    except Exception as exc:  # a champion trained on other data or features cannot be compared
        return cannot_compare(cfg, version, f"cannot score this test set: {exc}")
    check = scorer.compare(scorer.score(candidate), champion_scores, cfg.alpha)
    detail = f"vs champion v{version}: {check.detail}"
    return Check(check.name, check.value, check.threshold, check.passed, detail)
