"""The `Task` seam: what every stage may know of a task (name, types, config checks).

A stage looks its task up once and calls these methods; it never asks which task it runs:

| used by   | methods                                                                   |
|-----------|---------------------------------------------------------------------------|
| config    | `metrics`, `check_data`, `reads` / `ignored` / `applicable`               |
| readers   | `parse_meta`, `parse_data_report`, `parse_metrics` (`seqops.tasks`)       |

What each stage runs is not here but in each task's parts, one per stage group, each a
subclass of its task's seam and of an interface in `seqops.tasks.parts` (whose registry only
that stage imports): `PrepareTask` (`prepare`, `summary`), `TrainTask` (train and tune:
`network_args`, `objective`, `init_model`, `loaders`), `EvaluateTask` (`evaluate`),
`ServeTask` (export, benchmark and serving: `output_shape`, `agreement`, `quality`,
`served_checks`, `request_example`, `bundle_files`, `calibrated_meta`, `codec`),
`ReleaseTask` (`scorer`, `extra_checks`, `paired_scores`) and `CardTask` (`card_*`). So
editing a CoNLL reader leaves tune and train up to date in `dvc status`, and editing a
loader, a card's wording or a codec leaves prepare up to date.

What prepare and train return (`Prepared`, `TaskLoaders`) stays here with the seam: the later
stages' readers of prepare's files import it, and an import of a part interface brings along
its registry and so every task's part.

Modules here import neither torch nor Lightning at module level: the torch-free predictor
(`seqops predict`) reads a bundle through its task's seam and serve part.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar, cast

from pydantic import TypeAdapter

from seqops import onnx_contract as contract
from seqops.contracts import (
    DataMeta,
    DataReport,
    MetaT,
    MetricsReport,
    parse_as,
)

if TYPE_CHECKING:
    from seqops.config import DataConfig, ModelConfig
    from seqops.data.sequences import SequenceSet

#: A task's own part of `reports/data.json` (a `DataReport` subclass, or a union of them).
ReportT = TypeVar("ReportT", bound=DataReport)
#: A task's `reports/metrics.json` (`MetricsReport`, or its own subclass).
MetricsT = TypeVar("MetricsT", bound=MetricsReport)


@dataclass(frozen=True)
class Prepared:
    """What prepare made of the raw data: the splits, the metadata, extra files."""

    splits: dict[str, SequenceSet]
    meta: DataMeta
    source: str
    report: dict[str, Any]
    """The task's own fields of `reports/data.json` (class counts, series, vocabulary),
    validated by the prepare stage as the task's `data_report_type` with the shared ones."""
    files: dict[str, Callable[[Path], None]]
    """Extra files of `data/processed/`: name → writer (tokenizer, whole series, raw texts)."""


def longest_sequence(splits: dict[str, SequenceSet]) -> int:
    """Steps of the longest sequence in any split (export refuses a smaller max_length)."""
    return int(max(s.lengths.max() for s in splits.values()))


class TaskLoaders(ABC):
    """A task's own training and validation loaders (`TrainTask.loaders`)."""

    @abstractmethod
    def train(self) -> Any: ...

    @abstractmethod
    def val(self) -> Any: ...


@dataclass(frozen=True)
class Check:
    """One release-gate check. Here rather than in `parts.release`: the MLflow registry and
    the reports read checks without importing any task's release part."""

    name: str
    value: float | bool | None
    threshold: float | bool | str | None
    passed: bool
    detail: str = ""


def kernel_network_args(longest: int, model: ModelConfig) -> dict[str, Any]:
    """`SequenceNet` arguments of the random-kernel path (`model.kernel_features`) for float
    sequences of at most `longest` training steps; none when it is off, so a network without
    it is built (and checkpointed) as before."""
    if not model.kernel_features:
        return {}
    args: dict[str, Any] = {"kernel_features": model.kernel_features, "kernel_length": longest}
    if not model.recurrent:
        args["recurrent"] = False
    return args


def _parse(kind: Any, raw: Any, source: str | Path, what: str) -> Any:
    """`raw` as `kind`, a contract or a discriminated union of them (`what` names a union)."""
    return parse_as(
        TypeAdapter(kind), raw, source, kind.__name__ if isinstance(kind, type) else what
    )


class Task(ABC, Generic[MetaT, ReportT, MetricsT]):
    """One task family, typed by its own metadata (`MetaT`), data report (`ReportT`) and
    metrics report (`MetricsT`). Subclasses set the class attributes and implement the
    methods; `meta_type`, `data_report_type` and `metrics_type` name those same types for
    the readers in `seqops.tasks` (a class attribute cannot be typed by a type variable)."""

    name: ClassVar[str]
    meta_type: ClassVar[type[DataMeta]]
    """prepare's metadata for this task (`data/processed/preprocessing.json`)."""
    data_report_type: ClassVar[Any]
    """prepare's `reports/data.json`: a `DataReport` subclass with a `task` literal, or a
    discriminated union of them (`Annotated[A | B, Field(discriminator=...)]`)."""
    metrics_type: ClassVar[Any] = MetricsReport
    """evaluate's `reports/metrics.json`: `MetricsReport`, or the task's own subclass(es)."""
    metrics: ClassVar[frozenset[str]]
    """Metric names (beside `loss`) that `train.monitor`, `tune.metric` and `release.metric`
    may use, e.g. `accuracy` for `val/accuracy` / `test/accuracy`."""
    val_metrics: ClassVar[frozenset[str]]
    """The subset logged every epoch (`seqops.model.objectives`): what `train.monitor` and
    `tune.metric` may watch."""
    output: ClassVar[str] = contract.OUTPUT
    """The ONNX output's name."""
    reads: ClassVar[tuple[str, ...]] = ()
    """Task-specific params this task reads: dotted names, or prefixes ending in `.` (text: its
    tokenizer and embeddings; forecasting: `data.forecast.`). A param some task lists here is
    read by the tasks listing it only; every other task leaves it out of its MLflow params and
    model card (`applicable`). Each task owns its part: no list of another task's params."""
    ignored: ClassVar[tuple[str, ...]] = ()
    """Params other tasks share that this one does not read (forecasting: `data.label_column`)."""
    stratified_folds: ClassVar[bool] = False
    """Independent examples with class labels: `tune.folds` may cross-validate on them."""
    choose: ClassVar[dict[str, list[Any]]] = {}
    """`tune.choose` where params leave it out or null: dotted path -> values cross-validated
    before the search (`seqops.tuning.choice`)."""
    augment: ClassVar[dict[str, float] | None] = None
    """`train.augment_*` values for keys params leave out or null; None: the task's labels
    would not survive the changes, so it refuses any but 0."""
    intervals: ClassVar[bool] = False
    """Evaluate reports forecast intervals (`interval_coverage` in `test`): the gate's
    `release.interval_coverage_tolerance` applies."""
    step_decisions: ClassVar[bool] = True
    """A per-step model's codec gets each step's decision (`Predictor.tags`: the argmax, or
    a CRF's Viterbi path); False: the per-step scores themselves (a language model's
    next-token logits)."""

    def parse_meta(self, raw: Any, source: Path) -> MetaT:
        """prepare's metadata, validated strictly (no type conversion) as this task's own
        type: `meta_type`, or for a task with several inputs the subclass its `input` names."""
        return cast(MetaT, self.meta_type.parse(raw, source, strict=True))

    def parse_data_report(self, raw: Any, source: str | Path) -> ReportT:
        """`reports/data.json` (or prepare's fields for it) as this task's own type."""
        return cast(ReportT, _parse(self.data_report_type, raw, source, f"{self.name} data report"))

    def parse_metrics(self, raw: Any, source: str | Path) -> MetricsT:
        """`reports/metrics.json` as this task's own type."""
        return cast(MetricsT, _parse(self.metrics_type, raw, source, f"{self.name} metrics report"))

    def applicable(self, params: dict[str, Any]) -> dict[str, Any]:
        """The flattened params that apply to this task: without the params only other tasks
        read (their `reads`) and without this task's `ignored`."""
        from seqops.tasks import TASKS

        others = {p for task in TASKS.values() for p in task.reads} - set(self.reads)
        skip = (*sorted(others), *self.ignored)
        return {k: v for k, v in params.items() if not k.startswith(skip)}

    # -- config ---------------------------------------------------------------------------

    def check_data(self, data: DataConfig) -> None:
        """Raise ValueError when the `data` section does not fit this task."""
        if data.val_path or data.test_path:
            raise ValueError("data.val_path / data.test_path are for text_classification only")
