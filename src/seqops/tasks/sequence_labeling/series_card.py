"""The model card's sections for a series labeler (what it reads, labels, scores and is for)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from seqops.markdown import fmt, table
from seqops.tasks.sequence_labeling.release import BOOTSTRAP, bootstrap_weights, resampled_f1
from seqops.tasks.sequence_labeling.reports import SeriesLabelingMetrics, SeriesLabelingReport
from seqops.tasks.sequence_labeling.series_release import paired_segment_scores

CHECKED = (
    "segment_f1",
    "segment_precision",
    "segment_recall",
    "segment_f1_strict",
    "step_accuracy",
)


def inputs(report: SeriesLabelingReport) -> str:
    return f"{report.n_features} numeric features per time step (standardised)"


def targets(report: SeriesLabelingReport) -> str:
    return f"{report.n_classes} labels, one per time step"


def data(report: SeriesLabelingReport) -> str:
    steps = report.n_steps
    segments = report.segment_counts
    return (
        "Series (steps, segments): "
        + ", ".join(
            f"{split} {n:,} ({steps.get(split, 0):,}, {sum(segments.get(split, {}).values()):,})"
            for split, n in (
                ("train", report.n_train),
                ("val", report.n_val),
                ("test", report.n_test),
            )
        )
        + ". Validation and test hold whole series, never steps of a training series."
    )


def metrics_lines(metrics: SeriesLabelingMetrics, predictions: pd.DataFrame) -> list[str]:
    """The test scores with a series-bootstrap interval for segment F1, and per-label scores."""
    counts = paired_segment_scores(metrics, predictions).model
    samples = resampled_f1(bootstrap_weights(len(counts)), counts)
    low, high = float(np.percentile(samples, 2.5)), float(np.percentile(samples, 97.5))
    test = metrics.test
    rows = [("test/segment_f1", fmt(test.get("segment_f1")), f"[{low:.4f}, {high:.4f}]",
             f"bootstrap of series ×{BOOTSTRAP}")]  # fmt: skip
    rows += [(f"test/{m}", fmt(test.get(m)), "—", "—") for m in CHECKED[1:]]
    per_label = [
        (
            label,
            fmt(v.get("f1")),
            fmt(v.get("segment_f1")),
            fmt(v.get("segment_f1_strict")),
            f"{v.get('support', 0):.0f}",
        )
        for label, v in (metrics.per_class or {}).items()
    ]
    return [
        table(("metric", "value", "95 % CI", "method"), rows),
        "",
        f"A segment is a maximal run of one label; a predicted one counts when it overlaps a "
        f"gold one of the same label at intersection over union ≥ 0.5 (strict: the exact start "
        f"and end). On {test.get('n')} test series, {test.get('n_steps')} steps, "
        f"{test.get('n_segments')} gold segments.",
        "",
        table(("label", "step F1", "segment F1", "strict segment F1", "steps"), per_label),
    ]


def use(report: SeriesLabelingReport) -> str:
    return (
        f"Labels each time step of multivariate series like those of `{report.source}` with one "
        f"of {report.n_classes} labels (segmentation, event detection). Input is long-format "
        "rows (id, time, every feature), standardised with `preprocessing.json` (the training "
        "steps' scaler); series longer than the export's `max_length` are rejected, not cut. "
        "The test holds few series, so read the interval; boundaries are where the labels are "
        "least sure (see the strict segment F1). The model has not been checked for "
        "distribution shift, other sensors or sampling rates, or adversarial input."
    )
