"""Each task's part of `reports/data.json` and `reports/metrics.json` is its own type, picked by
`task` (and for sequence labeling by `input`, text or series): a report lacking its
discriminator, or one task's report under another's name, is refused naming the file, never
read as a loose bag of optional fields."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from seqops.contracts import DataReport, MetricsReport
from seqops.errors import DataError
from seqops.tasks import TASKS, get_task, read_data_report, read_metrics
from seqops.tasks.sequence_labeling.reports import (
    SeriesLabelingMetrics,
    SeriesLabelingReport,
    TextLabelingMetrics,
    TextLabelingReport,
)

SHARED: dict[str, Any] = {
    "n_train": 6,
    "n_val": 2,
    "n_test": 2,
    "n_features": 1,
    "source": "fake",
    "data_hash": "0" * 64,
    "length": {"train": {"min": 3, "median": 4.0, "max": 5}},
}
SPLITS = ("train", "val", "test")
TEXT: dict[str, Any] = {
    "task": "sequence_labeling",
    **SHARED,
    "input": "tokens",
    "n_classes": 3,
    "vocab_size": 10,
    "test_unknown_token_rate": 0.25,
    "tag_counts": {s: {"O": 4, "B-person": 1} for s in SPLITS},
    "entity_counts": {s: {"person": 1} for s in SPLITS},
    "n_tokens": {s: 5 for s in SPLITS},
    "char_vocab_size": 20,
}
SERIES: dict[str, Any] = {
    "task": "sequence_labeling",
    **SHARED,
    "input": "x",
    "n_classes": 2,
    "n_steps": {s: 12 for s in SPLITS},
    "step_counts": {s: {"rest": 6, "move": 6} for s in SPLITS},
    "segment_counts": {s: {"rest": 1, "move": 1} for s in SPLITS},
}
CLASSIFICATION: dict[str, Any] = {
    "task": "sequence_classification",
    **SHARED,
    "n_classes": 2,
    "class_counts": {"train": {"a": 3, "b": 3}, "val": {"a": 1, "b": 1}, "test": {"a": 1, "b": 1}},
}


def _write(tmp_path: Path, raw: dict[str, Any]) -> Path:
    path = tmp_path / "report.json"
    path.write_text(json.dumps(raw))
    return path


def test_each_task_names_its_own_report_types() -> None:
    for name, task in TASKS.items():
        assert task.data_report_type is not DataReport, name
        for kind in (task.data_report_type, task.metrics_type):
            # a class of its own, or a union whose every member has the task's literal
            members = getattr(kind, "__metadata__", None) and kind.__origin__.__args__
            for member in members or (kind,):
                if member is MetricsReport:
                    continue
                assert member.model_fields["task"].annotation.__args__ == (name,), member


@pytest.mark.parametrize(
    ("raw", "kind"), [(TEXT, TextLabelingReport), (SERIES, SeriesLabelingReport)]
)
def test_a_labeling_report_is_read_as_the_type_its_input_names(
    tmp_path: Path, raw: dict[str, Any], kind: type
) -> None:
    report = read_data_report(_write(tmp_path, raw))
    assert type(report) is kind
    # written back byte for byte the same keys in the same order
    assert list(json.loads(report.model_dump_json(exclude_none=True))) == list(raw)


@pytest.mark.parametrize("raw", [TEXT, SERIES])
def test_a_labeling_report_without_its_input_is_refused(tmp_path: Path, raw: dict) -> None:
    path = _write(tmp_path, {k: v for k, v in raw.items() if k != "input"})
    with pytest.raises(
        DataError, match=r"report\.json: not a valid sequence_labeling data report.*input"
    ):
        read_data_report(path)


def test_a_text_report_claiming_series_input_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, {**TEXT, "input": "x"})
    with pytest.raises(DataError, match=r"report\.json: not a valid sequence_labeling data report"):
        read_data_report(path)


@pytest.mark.parametrize(
    ("raw", "other"),
    [
        (CLASSIFICATION, "sequence_labeling"),
        (TEXT, "sequence_classification"),
        (SERIES, "text_classification"),
        (CLASSIFICATION, "forecasting"),
        (CLASSIFICATION, "sequence_regression"),
    ],
)
def test_one_tasks_report_under_another_tasks_name_is_refused(
    tmp_path: Path, raw: dict[str, Any], other: str
) -> None:
    read_data_report(_write(tmp_path, raw))  # valid under its own name
    with pytest.raises(DataError, match=r"report\.json: not a valid"):
        read_data_report(_write(tmp_path, {**raw, "task": other}))
    with pytest.raises(DataError, match=r"report\.json: not a valid"):
        get_task(other).parse_data_report(raw, "report.json")


def test_labeling_metrics_carry_their_input_and_forecasting_its_per_step_errors(
    tmp_path: Path,
) -> None:
    text = {"task": "sequence_labeling", "test": {"entity_f1": 0.5}, "input": "tokens"}
    series = {**text, "test": {"segment_f1": 0.5}, "input": "x"}
    assert type(read_metrics(_write(tmp_path, text))) is TextLabelingMetrics
    assert type(read_metrics(_write(tmp_path, series))) is SeriesLabelingMetrics
    # which metric names a file holds never decides its type: the input does
    bare = {k: v for k, v in series.items() if k != "input"}
    with pytest.raises(DataError, match="not a valid sequence_labeling metrics report"):
        read_metrics(_write(tmp_path, bare))
    forecast = {"task": "forecasting", "test": {"rmse": 1.0}}
    with pytest.raises(DataError, match="not a valid ForecastMetrics"):
        read_metrics(_write(tmp_path, forecast))
    assert read_metrics(_write(tmp_path, {**forecast, "per_step": {"rmse": [1.0]}})).test
    with pytest.raises(DataError, match="not a valid MetricsReport"):
        read_metrics(_write(tmp_path, {**forecast, "task": "sequence_regression",
                                       "per_step": {"rmse": [1.0]}}))  # fmt: skip


def test_headline_numbers_are_the_shared_ones_then_the_tasks() -> None:
    report = get_task("sequence_labeling").parse_data_report(TEXT, "fake")
    assert list(report.numbers()) == [
        "n_train", "n_val", "n_test", "n_features", "n_classes", "vocab_size",
        "test_unknown_token_rate",
    ]  # fmt: skip
    series = get_task("sequence_labeling").parse_data_report(SERIES, "fake")
    assert list(series.numbers())[-1] == "n_classes"
