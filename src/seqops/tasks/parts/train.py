"""What the train stage (and the tuner) runs of a task: the `TrainTask` part and its registry.

    task = get_train(meta.task)                      # `seqops.model.training`
    network.update(task.network_args(meta, processed, cfg.model))
    objective = task.objective(meta, cfg.train, cfg.model)

Each task's part is `seqops.tasks.<task>.train`: the network's task arguments (a vocabulary,
a horizon), the objective, the initialisation (pretrained vectors) and the task's own
loaders (a language model's stateful windows). The prepare stage imports none of it.
"""

from __future__ import annotations

from abc import abstractmethod
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from seqops.contracts import MetaT
from seqops.tasks.base import MetricsT, ReportT, Task, TaskLoaders

if TYPE_CHECKING:
    from torch import nn

    from seqops.config import ModelConfig, TrainConfig


class TrainTask(Task[MetaT, ReportT, MetricsT]):
    """A task's train part."""

    def network_args(self, meta: MetaT, processed: Path, model: ModelConfig) -> dict[str, Any]:
        """SequenceNet arguments beyond the architecture (a vocabulary, a horizon)."""
        return {}

    @abstractmethod
    def objective(self, meta: MetaT, train: TrainConfig, model: ModelConfig) -> dict[str, Any]:
        """`{"kind": ..., **args}` for `seqops.model.objectives.build_objective`; `model` for an
        objective that follows the architecture (a CRF layer is trained by its likelihood)."""

    def init_model(self, net: nn.Module, meta: MetaT, processed: Path, model: ModelConfig) -> None:
        """Change a freshly built network before training (pretrained vectors); most tasks
        keep the random initialisation."""

    def loaders(
        self,
        meta: MetaT,
        processed: Path,
        batch_size: int,
        seed: int,
        train: TrainConfig,
        train_on: tuple[str, ...],
    ) -> TaskLoaders | None:
        """The task's own training and validation loaders (a language model's stateful
        windows), or None for the shared padded batches of the prepared splits (most tasks)."""
        return None


@cache
def _trains() -> dict[str, TrainTask[Any, Any, Any]]:
    from seqops.tasks.classification.train import SequenceClassificationTrain
    from seqops.tasks.forecasting.train import ForecastingTrain
    from seqops.tasks.language_modeling.train import LanguageModelingTrain
    from seqops.tasks.regression.train import SequenceRegressionTrain
    from seqops.tasks.sequence_labeling.train import SequenceLabelingTrain
    from seqops.tasks.text.train import TextClassificationTrain

    parts: tuple[TrainTask[Any, Any, Any], ...] = (
        SequenceClassificationTrain(),
        TextClassificationTrain(),
        ForecastingTrain(),
        SequenceRegressionTrain(),
        SequenceLabelingTrain(),
        LanguageModelingTrain(),
    )
    return {part.name: part for part in parts}


def get_train(name: str) -> TrainTask[Any, Any, Any]:
    """The train part of task `name` (a name `get_task` knows)."""
    from seqops.tasks import get_task

    get_task(name)  # an unknown name raises the same DataError as every lookup
    return _trains()[name]
