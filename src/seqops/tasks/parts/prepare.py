"""What the prepare stage runs of a task: the `PrepareTask` part and its registry.

    task = get_prepare(cfg.data.task)
    report = write(task.prepare(cfg.data, cfg.seed), layout)   # `seqops.stages.prepare`
    print(task.summary(report))

Each task's part is `seqops.tasks.<task>.prepare`: load, split, fit the preprocessing on the
training split and describe the result (`Prepared`). Neither tune nor train imports it.
"""

from __future__ import annotations

from abc import abstractmethod
from functools import cache
from typing import TYPE_CHECKING, Any

from seqops.contracts import MetaT
from seqops.tasks.base import MetricsT, Prepared, ReportT, Task

if TYPE_CHECKING:
    from seqops.config import DataConfig


class PrepareTask(Task[MetaT, ReportT, MetricsT]):
    """A task's prepare part."""

    @abstractmethod
    def prepare(self, data: DataConfig, seed: int) -> Prepared:
        """Load, split and scale; raises DataError naming the file and problem."""

    @abstractmethod
    def summary(self, report: ReportT) -> str:
        """prepare's one-line summary."""


@cache
def _prepares() -> dict[str, PrepareTask[Any, Any, Any]]:
    from seqops.tasks.classification.prepare import SequenceClassificationPrepare
    from seqops.tasks.forecasting.prepare import ForecastingPrepare
    from seqops.tasks.language_modeling.prepare import LanguageModelingPrepare
    from seqops.tasks.regression.prepare import SequenceRegressionPrepare
    from seqops.tasks.sequence_labeling.prepare import SequenceLabelingPrepare
    from seqops.tasks.text.prepare import TextClassificationPrepare

    parts: tuple[PrepareTask[Any, Any, Any], ...] = (
        SequenceClassificationPrepare(),
        TextClassificationPrepare(),
        ForecastingPrepare(),
        SequenceRegressionPrepare(),
        SequenceLabelingPrepare(),
        LanguageModelingPrepare(),
    )
    return {part.name: part for part in parts}


def get_prepare(name: str) -> PrepareTask[Any, Any, Any]:
    """The prepare part of task `name` (a name `get_task` knows)."""
    from seqops.tasks import get_task

    get_task(name)  # an unknown name raises the same DataError as every lookup
    return _prepares()[name]
