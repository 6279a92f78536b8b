"""What the evaluate stage runs of a task: the `EvaluateTask` part and its registry.

    evaluation = get_evaluate(meta.task).evaluate(net, processed, meta, data)
    evaluation = evaluate_checkpoint(Path("models/model.ckpt"), Path("data/processed"))

Each task's part is `seqops.tasks.<task>.evaluate`: test metrics, per-example predictions,
plots and the classical baselines fitted on the training split.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from seqops.contracts import MetaT, MetricsReport
from seqops.tasks.base import MetricsT, ReportT, Task

if TYPE_CHECKING:
    from seqops.config import DataConfig
    from seqops.model.network import SequenceNet


class Evaluation(ABC):
    """A trained model's test results: the metrics report, per-example predictions (what the
    release's paired test and the model card read) and the task's plots."""

    metrics: MetricsReport

    @abstractmethod
    def predictions_csv(self) -> str: ...

    @abstractmethod
    def write_plots(self, plots: Path, scratch: Path) -> list[Path]:
        """Write the DVC plots into `plots`; return the images to log to MLflow (they may
        live in `scratch`, a temporary directory)."""

    @abstractmethod
    def logged_metrics(self) -> dict[str, float]:
        """What goes to the MLflow run (`test/...`, `baseline/...`)."""

    def logged_baselines(self) -> dict[str, float]:
        """`baseline/<name>/<metric>` of every classical baseline, for the MLflow run."""
        return {
            f"baseline/{name}/{k}": float(v)
            for name, scores in (self.metrics.baseline or {}).items()
            for k, v in scores.items()
        }

    @abstractmethod
    def summary(self) -> str: ...


class EvaluateTask(Task[MetaT, ReportT, MetricsT]):
    """A task's evaluate part."""

    @abstractmethod
    def evaluate(
        self, system: SequenceNet, processed: Path, meta: MetaT, data: DataConfig | None = None
    ) -> Evaluation:
        """Score `system` on the test split; `data` is the `data` section of the params
        (forecasting reads its interval level; None: the defaults)."""


@cache
def _evaluates() -> dict[str, EvaluateTask[Any, Any, Any]]:
    from seqops.tasks.classification.evaluate import SequenceClassificationEvaluate
    from seqops.tasks.forecasting.evaluate import ForecastingEvaluate
    from seqops.tasks.language_modeling.evaluate import LanguageModelingEvaluate
    from seqops.tasks.regression.evaluate import SequenceRegressionEvaluate
    from seqops.tasks.sequence_labeling.evaluate import SequenceLabelingEvaluate
    from seqops.tasks.text.evaluate import TextClassificationEvaluate

    parts: tuple[EvaluateTask[Any, Any, Any], ...] = (
        SequenceClassificationEvaluate(),
        TextClassificationEvaluate(),
        ForecastingEvaluate(),
        SequenceRegressionEvaluate(),
        SequenceLabelingEvaluate(),
        LanguageModelingEvaluate(),
    )
    return {part.name: part for part in parts}


def get_evaluate(name: str) -> EvaluateTask[Any, Any, Any]:
    """The evaluate part of task `name` (a name `get_task` knows)."""
    from seqops.tasks import get_task

    get_task(name)  # an unknown name raises the same DataError as every lookup
    return _evaluates()[name]


def evaluate_checkpoint(
    checkpoint: Path, processed_dir: Path, data: DataConfig | None = None
) -> Evaluation:
    """The task's test evaluation of a checkpoint (what the evaluate stage writes); `data`:
    the params' `data` section (forecasting's interval level), None for the defaults."""
    from seqops.layout import PROCESSED_META
    from seqops.model.runtime import load_network
    from seqops.tasks import read_meta

    meta = read_meta(processed_dir / PROCESSED_META)
    net, _ = load_network(checkpoint)
    return get_evaluate(meta.task).evaluate(net, processed_dir, meta, data)
