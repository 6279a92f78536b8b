"""The `Task` interface: everything that differs between task families, in one place each.

A stage looks its task up once (`get_task(cfg.data.task)`) and calls these methods; it never
asks which task it runs. Each method is one seam of the pipeline:

| stage     | methods                                                                   |
|-----------|---------------------------------------------------------------------------|
| config    | `metrics`, `check_data`                                                   |
| prepare   | `prepare`, `summary`                                                      |
| train     | `network_args`, `objective`, `init_model`, `loaders`                      |
| evaluate  | `evaluate` (metrics, predictions, plots)                                  |
| export    | `output`, `output_shape`, `agreement`, `quality`, `served_checks`,        |
|           | `request_example`, `bundle_files`, `calibrated_meta`                      |
| serving   | `codec` (request rows in, rows out, MLflow signature)                     |
| release   | `scorer` (per-example scores and the paired test), `extra_checks`,        |
|           | `paired_scores` (the model against its classical baselines)               |
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
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar, cast

import numpy as np
import pandas as pd
from pydantic import TypeAdapter

from seqops import onnx_contract as contract
from seqops.contracts import (
    Bundle,
    DataMeta,
    DataReport,
    MetaT,
    MetaT_co,
    MetricsReport,
    parse_as,
)
from seqops.stats import PairedScores, diebold_mariano, mcnemar

if TYPE_CHECKING:
    from mlflow.models import ModelSignature
    from torch import nn

    from seqops.config import DataConfig, ModelConfig, TrainConfig
    from seqops.data.sequences import SequenceSet
    from seqops.model.network import SequenceNet
    from seqops.serving import Predictor

#: Runs the ONNX model: contract inputs (`x` or `tokens`, `lengths`) → its output array.
RunModel = Callable[[np.ndarray, np.ndarray], np.ndarray]

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
    """A task's own training and validation loaders (`Task.loaders`)."""

    @abstractmethod
    def train(self) -> Any: ...

    @abstractmethod
    def val(self) -> Any: ...


@dataclass(frozen=True)
class Check:
    """One release-gate check."""

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
    return {"kernel_features": model.kernel_features, "kernel_length": longest}


def beats_baseline(name: str, ours: float, baseline: float, label: str) -> Check:
    """The model's test RMSE must be below a classical baseline's on the same test set."""
    return Check(
        name,
        ours / baseline,
        1.0,
        ours < baseline,
        f"test RMSE {ours:.4g} vs {label} {baseline:.4g}",
    )


def error_scores(metrics: MetricsReport, predictions: pd.DataFrame) -> PairedScores:
    """Signed errors of the `model` column and of each baseline's column against `actual`
    (forecasting: one row per forecast point; regression: one per sequence)."""
    actual = predictions["actual"].to_numpy(dtype=np.float64)

    def errors(column: str) -> np.ndarray:
        return predictions[column].to_numpy(dtype=np.float64) - actual

    return PairedScores(
        "error", errors("model"), {name: errors(name) for name in metrics.baseline or {}}
    )


def baseline_check(scores: PairedScores, alpha: float) -> Check:
    """The release check `not_worse_than_baseline`: the model must not be significantly worse
    than any of its classical baselines on the same test examples (the task's paired test at
    `alpha`). Its value is the smallest p-value of a baseline that did better."""
    verdicts = {name: scores.worse_than(name) for name in scores.baselines}
    better = {name: v for name, v in verdicts.items() if v[1]}
    if not better:
        details = "; ".join(v[2] for v in verdicts.values())
        return Check(
            "not_worse_than_baseline", None, alpha, True, f"no baseline did better: {details}"
        )
    name, (p_value, _, detail) = min(better.items(), key=lambda item: item[1][0])
    if p_value < alpha:
        return Check(
            "not_worse_than_baseline",
            p_value,
            alpha,
            False,
            f"the baseline won: {name} is significantly better than the model ({detail})",
        )
    return Check(
        "not_worse_than_baseline",
        p_value,
        alpha,
        True,
        f"{name} did better, not significantly: {detail}",
    )


def mcnemar_regression(
    candidate_correct: np.ndarray, champion_correct: np.ndarray, alpha: float
) -> Check:
    """Paired exact test: does the candidate get significantly fewer examples right?"""
    p_value, only_champion, only_candidate = mcnemar(candidate_correct, champion_correct)
    regressed = only_champion > only_candidate and p_value < alpha
    return Check(
        "no_regression_vs_champion",
        p_value,
        alpha,
        not regressed,
        f"McNemar exact: champion-only correct {only_champion}, candidate-only correct "
        f"{only_candidate}, p={p_value:.4g}",
    )


def diebold_mariano_regression(
    candidate_errors: np.ndarray,
    champion_errors: np.ndarray,
    alpha: float,
    points: str = "forecast points",
    too_few: str = " (raise data.forecast.horizon or test_windows)",
) -> Check:
    """Paired test on numeric errors (forecast points, or one per test sequence for
    regression): are the candidate's squared errors significantly larger?"""
    if candidate_errors.size < 2:
        return Check(
            "no_regression_vs_champion",
            None,
            alpha,
            True,
            f"{candidate_errors.size} of {points}: too few for a paired test{too_few}",
        )
    test = diebold_mariano(candidate_errors, champion_errors)
    rmse = [float(np.sqrt((e**2).mean())) for e in (candidate_errors, champion_errors)]
    return Check(
        "no_regression_vs_champion",
        test.p_value,
        alpha,
        not test.p_value < alpha,
        f"Diebold-Mariano (squared error, HLN) on {test.n} {points}: RMSE candidate "
        f"{rmse[0]:.4g} vs champion {rmse[1]:.4g}, statistic {test.statistic:.3g}, "
        f"one-sided p={test.p_value:.4g}",
    )


def baseline_card_lines(scores: PairedScores) -> list[str]:
    """The model card's comparison with the classical baselines: each one's test score, the
    model's difference and its paired-bootstrap interval."""
    from seqops.markdown import fmt, table

    rows = [("model", fmt(scores.value(scores.model)), "—", "—")]
    for name, baseline in scores.baselines.items():
        low, high = scores.interval(name)
        rows.append(
            (name, fmt(scores.value(baseline)), f"{scores.difference(name):+.4g}",
             f"[{low:+.4g}, {high:+.4g}]")
        )  # fmt: skip
    better = "higher" if scores.kind == "correct" else "lower"
    return [
        table(("predictor", f"test {scores.metric}", "model − baseline", "95 % CI"), rows),
        "",
        f"Classical baselines fitted on the same training split and scored on the same test "
        f"examples; {better} {scores.metric} is better. Intervals: paired percentile bootstrap "
        "×1000 over test examples.",
    ]


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

    def logged_baselines(self) -> dict[str, float]:
        """`baseline/<name>/<metric>` of every classical baseline, for the MLflow run."""
        return {
            f"baseline/{name}/{k}": float(v)
            for name, scores in (self.metrics.baseline or {}).items()
            for k, v in scores.items()
        }

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


class ErrorScorer(Scorer):
    """Per-point errors of a served model against numeric targets (answer rows in the
    requests' order); Diebold-Mariano. `points` names what the errors are of."""

    def __init__(
        self,
        requests: pd.DataFrame,
        columns: list[str],
        actual: np.ndarray,
        points: str = "forecast points",
        too_few: str = " (raise data.forecast.horizon or test_windows)",
    ) -> None:
        self.requests, self.columns, self.actual = requests, columns, actual
        self.points, self.too_few = points, too_few

    def score(self, model: Any) -> np.ndarray:
        answers = model.predict(self.requests)
        return answers[self.columns].to_numpy().reshape(self.actual.shape) - self.actual

    def compare(self, candidate: np.ndarray, champion: np.ndarray, alpha: float) -> Check:
        return diebold_mariano_regression(candidate, champion, alpha, self.points, self.too_few)


class Codec(ABC, Generic[MetaT_co]):
    """Raw request rows ↔ model arrays for one bundle (torch-free): what `seqops predict` and
    the MLflow scoring server run."""

    bundle: Bundle[MetaT_co]

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

    # -- prepare --------------------------------------------------------------------------

    @abstractmethod
    def prepare(self, data: DataConfig, seed: int) -> Prepared:
        """Load, split and scale; raises DataError naming the file and problem."""

    @abstractmethod
    def summary(self, report: ReportT) -> str:
        """prepare's one-line summary."""

    # -- train ----------------------------------------------------------------------------

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

    # -- evaluate -------------------------------------------------------------------------

    @abstractmethod
    def evaluate(
        self, system: SequenceNet, processed: Path, meta: MetaT, data: DataConfig | None = None
    ) -> Evaluation:
        """Score `system` on the test split; `data` is the `data` section of the params
        (forecasting reads its interval level; None: the defaults)."""

    # -- export ---------------------------------------------------------------------------

    def output_shape(self, meta: MetaT) -> list[str | int]:
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
        self,
        system: SequenceNet,
        predictor: Predictor,
        processed: Path,
        tolerance: contract.Tolerance,
    ) -> dict[str, float]:
        """The whole serving path from raw inputs against the evaluated model; raises
        ExportError when they differ beyond `tolerance` (the parity tolerance, on the
        model's scaled outputs). Returns the gaps by name."""
        return {}

    @abstractmethod
    def request_example(self, processed: Path, bundle: Bundle[MetaT], n: int) -> pd.DataFrame:
        """The first `n` raw test requests (MLflow's input example; the release's test set
        when `n` covers it)."""

    def bundle_files(self, meta: MetaT) -> list[str]:
        """Files of `data/processed/` the bundle carries beside the ONNX model."""
        return []

    def calibrated_meta(self, meta: MetaT, metrics: MetricsT) -> MetaT:
        """The metadata the bundle carries: prepare's, plus what evaluate calibrated on it
        (forecasting: the interval half-widths of `reports/metrics.json`). Default: as is."""
        return meta

    # -- serving --------------------------------------------------------------------------

    @abstractmethod
    def codec(self, bundle: Bundle[MetaT], files: dict[str, Path]) -> Codec[MetaT]:
        """The request codec; `files` maps each of `bundle_files` to where it is."""

    # -- release --------------------------------------------------------------------------

    @abstractmethod
    def scorer(self, processed: Path, bundle: Bundle[MetaT]) -> Scorer: ...

    def extra_checks(self, metrics: MetricsT) -> list[Check]:
        """Gate checks beyond quality, parity, latency and the champion comparison."""
        return []

    def paired_scores(self, metrics: MetricsT, predictions: pd.DataFrame) -> PairedScores:
        """Per-example scores of the model and of each baseline in `metrics.baseline`, read
        from `reports/predictions.csv` (the baseline check and the model card use them).
        Default: numeric predictions, one column per predictor beside `actual`."""
        return error_scores(metrics, predictions)

    # -- model card -----------------------------------------------------------------------

    @abstractmethod
    def card_inputs(self, report: ReportT) -> str: ...

    @abstractmethod
    def card_targets(self, report: ReportT) -> str: ...

    def card_data(self, report: ReportT) -> str:
        """The paragraph under the data table."""
        return "Sequence lengths (min / median / max): " + ", ".join(
            f"{split} {v.min} / {v.median:g} / {v.max}" for split, v in report.length.items()
        )

    @abstractmethod
    def card_metrics(self, metrics: MetricsT, predictions: pd.DataFrame) -> list[str]:
        """The test-metrics section's lines (with confidence intervals)."""

    @abstractmethod
    def card_use(self, report: ReportT) -> str:
        """Intended use and limits."""
