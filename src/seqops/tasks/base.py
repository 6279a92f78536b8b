"""The `Task` interface: everything that differs between task families, in one place each.

A stage looks its task up once (`get_task(cfg.data.task)`) and calls these methods; it never
asks which task it runs. Each method is one seam of the pipeline:

| stage     | methods                                                                   |
|-----------|---------------------------------------------------------------------------|
| config    | `metrics`, `check_data`                                                   |
| prepare   | `prepare`, `summary`                                                      |
| train     | `network_args`, `objective`, `init_model`                                 |
| evaluate  | `evaluate` (metrics, predictions, plots)                                  |
| export    | `output`, `output_shape`, `agreement`, `quality`, `served_checks`,        |
|           | `request_example`, `bundle_files`                                         |
| serving   | `codec` (request rows in, rows out, MLflow signature)                     |
| release   | `scorer` (per-example scores and the paired test), `extra_checks`          |
| model card| `card_inputs`, `card_targets`, `card_data`, `card_metrics`, `card_use`    |

Modules here import neither torch nor Lightning at module level: the torch-free predictor
(`seqops predict`) reads a bundle through its task's `codec`. Training and evaluation code
imports torch inside the methods that need it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd

from seqops import onnx_contract as contract
from seqops.contracts import Bundle, DataMeta, DataReport, MetricsReport

if TYPE_CHECKING:
    from mlflow.models import ModelSignature
    from torch import nn

    from seqops.config import DataConfig, ModelConfig, TrainConfig
    from seqops.data.sequences import SequenceSet
    from seqops.model.system import LitSequenceModel
    from seqops.serving import Predictor

#: Params only text models read, and only forecasting models read (`Task.ignored`).
TEXT_ONLY = (
    "data.tokenizer.",
    "data.text_column",
    "data.val_path",
    "data.test_path",
    "model.embedding_dim",
    "model.embeddings_path",
    "model.freeze_embeddings",
)
FORECAST_ONLY = ("data.forecast.",)

#: Runs the ONNX model: contract inputs (`x` or `tokens`, `lengths`) → its output array.
RunModel = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Prepared:
    """What prepare made of the raw data: the splits, the metadata, extra files."""

    splits: dict[str, SequenceSet]
    meta: DataMeta
    source: str
    report: dict[str, Any]
    """The task's own fields of `reports/data.json` (class counts, series, vocabulary)."""
    files: dict[str, Callable[[Path], None]]
    """Extra files of `data/processed/`: name → writer (tokenizer, whole series, raw texts)."""


@dataclass(frozen=True)
class Check:
    """One release-gate check."""

    name: str
    value: float | bool | None
    threshold: float | bool | str | None
    passed: bool
    detail: str = ""


def beats_baseline(name: str, ours: float, baseline: float, label: str) -> Check:
    """The model's test RMSE must be below a classical baseline's on the same test set."""
    return Check(
        name,
        ours / baseline,
        1.0,
        ours < baseline,
        f"test RMSE {ours:.4g} vs {label} {baseline:.4g}",
    )


@dataclass(frozen=True)
class Quality:
    """A model's test quality on one metric, for comparing int8 with fp32."""

    metric: str
    value: float
    lower_is_better: bool


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

    @abstractmethod
    def summary(self) -> str: ...


class Scorer(ABC):
    """The release's regression test: score any served model per test example, and compare two
    such scores with the task's paired test."""

    @abstractmethod
    def score(self, model: Any) -> np.ndarray:
        """Per-example scores of a loaded MLflow pyfunc model on the raw test inputs."""

    @abstractmethod
    def compare(self, candidate: np.ndarray, champion: np.ndarray, alpha: float) -> Check:
        """Is the candidate significantly worse than the champion, at level `alpha`?"""


class Codec(ABC):
    """Raw request rows ↔ model arrays for one bundle (torch-free): what `seqops predict` and
    the MLflow scoring server run."""

    bundle: Bundle

    def read(self, path: Path) -> pd.DataFrame:
        """A request file as rows (CSV, TSV, Parquet, JSON lines)."""
        from seqops.serving import read_input

        return read_input(path)

    @abstractmethod
    def predict_frame(self, frame: pd.DataFrame, run: RunModel, where: str) -> pd.DataFrame:
        """Answer rows for request `frame`; bad input raises DataError naming the row."""

    @abstractmethod
    def signature(self) -> ModelSignature:
        """The MLflow pyfunc signature: request columns in, answer columns out."""


class Task(ABC):
    """One task family. Subclasses set the class attributes and implement the methods."""

    name: ClassVar[str]
    meta_type: ClassVar[type[DataMeta]]
    """prepare's metadata for this task (`data/processed/preprocessing.json`)."""
    metrics: ClassVar[frozenset[str]]
    """Metric names (beside `loss`) that `train.monitor`, `tune.metric` and `release.metric`
    may use, e.g. `accuracy` for `val/accuracy` / `test/accuracy`."""
    val_metrics: ClassVar[frozenset[str]]
    """The subset logged every epoch (`seqops.model.objectives`): what `train.monitor` and
    `tune.metric` may watch."""
    output: ClassVar[str] = contract.OUTPUT
    """The ONNX output's name."""
    ignored: ClassVar[tuple[str, ...]] = TEXT_ONLY + FORECAST_ONLY
    """Dotted param names (or prefixes) this task never reads: left out of its MLflow params."""

    def applicable(self, params: dict[str, Any]) -> dict[str, Any]:
        """The flattened params that apply to this task."""
        return {k: v for k, v in params.items() if not k.startswith(self.ignored)}

    # -- config ---------------------------------------------------------------------------

    def check_data(self, data: DataConfig) -> None:
        """Raise ValueError when the `data` section does not fit this task."""
        if data.val_path or data.test_path:
            raise ValueError("data.val_path / data.test_path are for text_classification only")

    # -- prepare --------------------------------------------------------------------------

    @abstractmethod
    def prepare(self, data: DataConfig, seed: int) -> Prepared:
        """Load, split and scale; raises DataError naming the file and problem."""

    @abstractmethod
    def summary(self, report: DataReport) -> str:
        """prepare's one-line summary."""

    # -- train ----------------------------------------------------------------------------

    def network_args(self, meta: Any, processed: Path, model: ModelConfig) -> dict[str, Any]:
        """SequenceNet arguments beyond the architecture (a vocabulary, a horizon)."""
        return {}

    @abstractmethod
    def objective(self, meta: Any, train: TrainConfig) -> dict[str, Any]:
        """`{"kind": ..., **args}` for `seqops.model.objectives.build_objective`."""

    def init_model(self, net: nn.Module, meta: Any, processed: Path, model: ModelConfig) -> None:  # noqa: B027
        """Change a freshly built network before training (pretrained vectors); most tasks
        keep the random initialisation."""

    # -- evaluate -------------------------------------------------------------------------

    @abstractmethod
    def evaluate(self, system: LitSequenceModel, processed: Path, meta: Any) -> Evaluation: ...

    # -- export ---------------------------------------------------------------------------

    def output_shape(self, meta: Any) -> list[str | int]:
        """The ONNX output's shape; strings are symbolic dims."""
        return [contract.BATCH, meta.n_outputs]

    def agreement(self, got: np.ndarray, expected: np.ndarray) -> int | None:
        """How many rows' decisions agree (classifiers: argmax), or None when outputs are
        numbers compared elementwise only."""
        return None

    @abstractmethod
    def quality(self, predictor: Predictor, processed: Path) -> Quality:
        """The served model's test quality (int8 is judged against fp32 on it)."""

    def served_checks(
        self, system: LitSequenceModel, predictor: Predictor, processed: Path, atol: float
    ) -> dict[str, float]:
        """The whole serving path from raw inputs against the evaluated model; raises
        ExportError when they differ. Returns the gaps by name."""
        return {}

    @abstractmethod
    def request_example(self, processed: Path, bundle: Bundle, n: int) -> pd.DataFrame:
        """The first `n` raw test requests (MLflow's input example; the release's test set
        when `n` covers it)."""

    def bundle_files(self, meta: Any) -> list[str]:
        """Files of `data/processed/` the bundle carries beside the ONNX model."""
        return []

    # -- serving --------------------------------------------------------------------------

    @abstractmethod
    def codec(self, bundle: Bundle, files: dict[str, Path]) -> Codec:
        """The request codec; `files` maps each of `bundle_files` to where it is."""

    # -- release --------------------------------------------------------------------------

    @abstractmethod
    def scorer(self, processed: Path, bundle: Bundle) -> Scorer: ...

    def extra_checks(self, metrics: MetricsReport) -> list[Check]:
        """Gate checks beyond quality, parity, latency and the champion comparison."""
        return []

    # -- model card -----------------------------------------------------------------------

    @abstractmethod
    def card_inputs(self, report: DataReport) -> str: ...

    @abstractmethod
    def card_targets(self, report: DataReport) -> str: ...

    def card_data(self, report: DataReport) -> str:
        """The paragraph under the data table."""
        return "Sequence lengths (min / median / max): " + ", ".join(
            f"{split} {v.min} / {v.median:g} / {v.max}" for split, v in report.length.items()
        )

    @abstractmethod
    def card_metrics(self, metrics: MetricsReport, predictions: pd.DataFrame) -> list[str]:
        """The test-metrics section's lines (with confidence intervals)."""

    @abstractmethod
    def card_use(self, report: DataReport) -> str:
        """Intended use and limits."""
