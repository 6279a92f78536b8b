"""Task families behind one interface (`seqops.tasks.base.Task`), looked up once by name.

    task = get_task(cfg.data.task)            # "sequence_classification", "forecasting", ...
    meta = read_meta(layout.processed_meta)   # the task's own DataMeta subclass
    report = read_data_report(layout.data_report)  # the task's own DataReport subclass
    metrics = read_metrics(layout.metrics)    # MetricsReport, or the task's own subclass

`TASKS` holds each task's seam (`seqops.tasks.<task>.task`: name, types, config checks).
What each stage runs is each task's part, looked up in that stage's registry in
`seqops.tasks.parts` (`get_prepare`, `get_train`, `get_evaluate`, `get_serve`, `get_release`,
`get_card`), so a CoNLL reader is outside tune's and train's import closure, a loader outside
prepare's, and a card's wording or a codec outside all three. Adding a task is one package
here plus its name in `TASKS`, in each part registry and in `config.TaskName`; no stage
changes (see docs/architecture.md, "Adding a task").
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from seqops.contracts import Bundle, DataMeta, DataReport, MetricsReport, read_json
from seqops.errors import DataError
from seqops.tasks.base import Task
from seqops.tasks.classification.task import SequenceClassification
from seqops.tasks.forecasting.task import Forecasting
from seqops.tasks.language_modeling.task import LanguageModeling
from seqops.tasks.regression.task import SequenceRegression
from seqops.tasks.sequence_labeling.task import SequenceLabeling
from seqops.tasks.text.task import TextClassification

TASKS: dict[str, Task[Any, Any, Any]] = {
    task.name: task
    for task in (
        SequenceClassification(),
        TextClassification(),
        Forecasting(),
        SequenceRegression(),
        SequenceLabeling(),
        LanguageModeling(),
    )
}


def get_task(name: str) -> Task[Any, Any, Any]:
    try:
        return TASKS[name]
    except KeyError:
        raise DataError(f"unknown task {name!r}; one of {sorted(TASKS)}") from None


def _json_object(raw: Any, source: Path) -> dict[str, Any]:
    if not isinstance(raw, dict):
        kind = "null" if raw is None else type(raw).__name__
        raise DataError(f"{source}: expected a JSON object, got {kind} (re-run the stage)")
    return raw


def _task_of(raw: Any, source: Path) -> Task[Any, Any, Any]:
    name = _json_object(raw, source).get("task")
    if not isinstance(name, str):
        raise DataError(f"{source}: no 'task' field (written by an older seqops? re-run prepare)")
    if name not in TASKS:
        raise DataError(f"{source}: unknown task {name!r}; one of {sorted(TASKS)}")
    return TASKS[name]


def read_meta(path: Path) -> DataMeta:
    """prepare's metadata, validated (strictly: no type conversion) as its task's own type."""
    raw = read_json(path)
    return _task_of(raw, path).parse_meta(raw, path)


def read_data_report(path: Path) -> DataReport:
    """prepare's `reports/data.json` as its task's own type (`Task.data_report_type`)."""
    raw = read_json(path)
    return _task_of(raw, path).parse_data_report(raw, path)


def read_metrics(path: Path) -> MetricsReport:
    """evaluate's `reports/metrics.json` as its task's own type (`Task.metrics_type`)."""
    raw = read_json(path)
    return _task_of(raw, path).parse_metrics(raw, path)


def read_bundle(path: Path) -> Bundle[Any]:
    """The bundle's `preprocessing.json`, with `data` validated as its task's own type, all
    of it strictly (no type conversion) and with its ranges: finite means, positive finite
    scales, one per feature, distinct label names, one per output."""
    raw = _json_object(read_json(path), path)
    data = raw.get("data")
    if not isinstance(data, dict):
        raise DataError(f"{path}: no 'data' object (written by an older seqops? re-run export)")
    meta = _task_of(data, path).parse_meta(data, path)
    return Bundle.parse({**raw, "data": meta}, path, strict=True)


__all__ = [
    "TASKS",
    "Task",
    "get_task",
    "read_bundle",
    "read_data_report",
    "read_meta",
    "read_metrics",
]
