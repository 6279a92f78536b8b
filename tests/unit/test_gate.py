"""The release gate's quality check on float32 scores: a score on its threshold passes (19 of
20 right is stored as 0.949999988), one a real step below fails; the same for an error ceiling."""

from __future__ import annotations

import numpy as np
import pytest

from seqops.config import ReleaseConfig
from seqops.contracts import (
    ExportReport,
    Int8Report,
    LatencyReport,
    MetricsReport,
    Parity,
    RuntimeLatency,
)
from seqops.gate import at_most, gate
from seqops.tasks.base import Check


def _quality(cfg: ReleaseConfig, task: str, value: float) -> bool:
    export = ExportReport(
        opset=17,
        dynamic_axes={},
        parity=Parity(max_abs_diff=0.0, atol=1e-5, shapes_checked=[], passed=True),
        int8=Int8Report(available=False, metric=cfg.metric, fp32=value),
    )
    timing = RuntimeLatency(
        p50_ms=0.1, p95_ms=0.1, p99_ms=0.1, mean_ms=0.1, throughput=1.0, n_calls=100,
        threads=1, throughput_batch=1, model="m",
    )  # fmt: skip
    latency = LatencyReport(torch=timing, onnx_fp32=timing, speedup_p50=1.0, settings={})
    name = cfg.metric.removeprefix("test/")
    # Regression's own check reads its ridge baseline (far worse here: it does not interfere).
    metrics = MetricsReport(task=task, test={name: value}, baseline={"ridge": {"rmse": 10.0}})
    none = Check("no_regression_vs_champion", None, cfg.alpha, True)
    (quality,) = [c for c in gate(cfg, metrics, export, latency, none) if c.name == cfg.metric]
    return quality.passed


def test_a_float32_score_on_the_floor_passes() -> None:
    cfg = ReleaseConfig(min_metric=0.95)
    on_floor = float(np.float32(19 / 20))
    assert on_floor < 0.95  # the float32 rounding the tolerance is for
    assert _quality(cfg, "sequence_classification", on_floor)
    assert not _quality(cfg, "sequence_classification", float(np.float32(18 / 20)))
    assert not _quality(cfg, "sequence_classification", 0.9499)


def test_an_error_on_its_ceiling_passes() -> None:
    cfg = ReleaseConfig(metric="test/rmse", max_metric=0.5)
    assert _quality(cfg, "sequence_regression", float(np.float32(0.5)) + 1e-9)
    assert not _quality(cfg, "sequence_regression", 0.5001)


@pytest.mark.parametrize(
    ("value", "limit", "expected"),
    [
        (1.0, 1.0, True),
        (1.0000001, 1.0, True),
        (1.00001, 1.0, False),
        (100.00001, 100.0, True),
        (100.001, 100.0, False),
    ],
)
def test_at_most_tolerates_only_float32_rounding(
    value: float, limit: float, expected: bool
) -> None:
    assert at_most(value, limit) is expected
