"""What one stage writes and another reads, as typed models with one writer each.

    meta = DataMeta.read(layout.processed_meta)        # prepare's metadata (task-specific type)
    MetricsReport.read(layout.metrics).test["accuracy"]

Every model here rejects unknown keys, so a reader never guesses what a file holds from which
keys exist: the task a file belongs to is a field (`task`), and the task's own module
(`seqops.tasks`) owns the task-specific part. Writers go through `write()` (atomic, see
`seqops.outputs`); readers through `read()`, which turns a missing or malformed file into one
`DataError` naming it. Torch-free: the predictor reads the bundle through this module.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, SerializeAsAny, ValidationError

from seqops import outputs
from seqops.errors import DataError


class Contract(BaseModel):
    """A JSON file with a fixed shape: `write()` it atomically, `read()` it back validated."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    def numbers(self) -> dict[str, Any]:
        """The report's headline numbers: what its stage writes to `reports/metrics/` for
        `dvc metrics` / `dvc exp show` (numbers only: strings and details stay here)."""
        raise NotImplementedError

    def write(self, path: Path, numbers: Path | None = None) -> Path:
        """Write the report to `path` and, with `numbers`, its headline numbers there."""
        if numbers is not None:
            outputs.write_json(numbers, self.numbers())
        return outputs.write_json(path, self.model_dump(mode="json", exclude_none=True))

    @classmethod
    def parse(cls, raw: Any, source: str | Path) -> Self:
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "(top level)"
            raise DataError(
                f"{source}: not a valid {cls.__name__} ({where}: {first['msg']}); "
                "re-run the stage that writes it"
            ) from None

    @classmethod
    def read(cls, path: Path) -> Self:
        return cls.parse(read_json(path), path)


def read_json(path: Path) -> Any:
    if not path.is_file():
        raise DataError(f"{path}: not found (run the pipeline stage that writes it)")
    try:
        return json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: not valid JSON ({exc})") from None


# -- prepare → every later stage ------------------------------------------------------------


class DataMeta(Contract):
    """`data/processed/preprocessing.json`: what turns raw input into model input.

    Each task subclasses it with a `task` literal and its own fields (a scaler, a tokenizer
    file, forecast windows); `seqops.tasks.read_meta` picks the subclass from `task`."""

    task: str
    input: Literal["x", "tokens"]
    """The ONNX input the model reads: float features `x` or token ids `tokens`."""
    feature_names: list[str]
    label_names: list[str]
    """Class names in output order; empty for tasks that predict numbers."""
    n_outputs: int
    """Width of the model's head: classes, target series, or 1 for one number."""
    max_train_length: int


class OnnxIO(Contract):
    inputs: list[str]
    outputs: list[str]
    dynamic_axes: dict[str, dict[str, str]]


class Bundle(Contract):
    """`models/preprocessing.json`: prepare's metadata plus what serving raw rows needs.

    `data` is the task's own `DataMeta` subclass (see `seqops.tasks.read_bundle`)."""

    data: SerializeAsAny[DataMeta]
    id_column: str
    time_column: str
    max_length: int
    """Longest sequence predict / serve accept (longer ones are refused, not truncated)."""
    onnx: OnnxIO
    sha256: dict[str, str] | None = None
    """The hex sha256 of every other file of the bundle by name (`model.onnx`, the int8 model
    when there is one, the task's bundle files), recorded by export after its checks passed:
    the predictor refuses a bundle whose files do not match (a killed or mixed-up export).
    None only in a bundle still being built, or one written before export recorded them."""


# -- reports (reports/*.json) -----------------------------------------------------------------


class LengthStats(Contract):
    min: int
    median: float
    max: int


class SeriesInfo(Contract):
    """Forecasting: the series and its chronological cuts."""

    n_steps: int
    freq: str | None = None
    start: str
    end: str
    train_end: str
    val: list[str]
    test: list[str]
    gaps_filled: int
    filled: list[str]
    targets: list[str]
    lookback: int
    horizon: int
    differencing: str
    season_length: int


class DataReport(Contract):
    """`reports/data.json` (prepare): split sizes, lengths, and the task's description."""

    task: str
    n_train: int
    n_val: int
    n_test: int
    n_features: int
    source: str
    data_hash: str
    length: dict[str, LengthStats]
    n_classes: int | None = None
    class_counts: dict[str, dict[str, int]] | None = None
    vocab_size: int | None = None
    test_unknown_token_rate: float | None = None
    series: SeriesInfo | None = None
    target: dict[str, dict[str, float]] | None = None
    """Tasks predicting one number per sequence: the target's mean / std / min / max per split."""

    def numbers(self) -> dict[str, Any]:
        found = {
            "n_train": self.n_train,
            "n_val": self.n_val,
            "n_test": self.n_test,
            "n_features": self.n_features,
            "n_classes": self.n_classes,
            "vocab_size": self.vocab_size,
            "test_unknown_token_rate": self.test_unknown_token_rate,
        }
        return {k: v for k, v in found.items() if v is not None}


class TuneReport(Contract):
    """`reports/tune.json` (tune)."""

    n_trials: int
    complete: int
    pruned: int
    failed: int
    best_value: float | None = None
    metric: str
    direction: str
    wall_s: float
    best_trial: int | None = None
    epochs: int
    enabled: bool = True
    study: str | None = None
    storage: str | None = None
    parent_run_id: str | None = None

    def numbers(self) -> dict[str, Any]:
        found = {
            "complete": self.complete,
            "pruned": self.pruned,
            "failed": self.failed,
            "best_value": self.best_value,
            "wall_s": self.wall_s,
        }
        return {k: v for k, v in found.items() if v is not None}


class TrainReport(Contract):
    """`reports/train.json` (train)."""

    monitor: str
    best_score: float
    best_epoch: int
    epochs_run: int
    best: dict[str, float]
    n_parameters: int
    wall_s: float
    refit_examples: int = 0
    """Train + val examples the kept model was refit on for `best_epoch + 1` epochs (0: the
    best epoch of the validated run is kept)."""

    def numbers(self) -> dict[str, Any]:
        return {
            "best_score": self.best_score,
            "best_epoch": self.best_epoch,
            "epochs_run": self.epochs_run,
            "n_parameters": self.n_parameters,
            "wall_s": self.wall_s,
            "refit_examples": self.refit_examples,
        }


class MetricsReport(Contract):
    """`reports/metrics.json` (evaluate): test metrics, and what the task adds to them."""

    task: str
    test: dict[str, float | int]
    per_class: dict[str, dict[str, float]] | None = None
    baseline: dict[str, dict[str, float]] | None = None
    """Classical methods fitted on the same training split and scored on the same test
    examples, by name (`minirocket`, `tfidf_lr`, `seasonal_naive`, `holt_winters`, `ridge`),
    with the same metric names as `test`; their per-example predictions are columns of
    `reports/predictions.csv`."""
    skill: dict[str, float] | None = None
    """The model against each baseline: `rmse_vs_<name>` (RMSE ratio) for numeric tasks,
    `accuracy_minus_<name>` for classifiers."""
    per_step: dict[str, list[float]] | None = None

    def numbers(self) -> dict[str, Any]:
        """Test metrics, and the baselines' and skill where the task has them (per-class and
        per-step detail stays in `reports/metrics.json`)."""
        found: dict[str, Any] = {"test": dict(self.test)}
        if self.baseline:
            found["baseline"] = self.baseline
        if self.skill:
            found["skill"] = self.skill
        return found


class Parity(Contract):
    max_abs_diff: float
    argmax_agreement: float | None = None
    atol: float
    shapes_checked: list[list[int]]
    passed: bool


class Int8Report(Contract):
    available: bool
    metric: str
    fp32: float
    reason: str | None = None
    op: str | None = None
    int8: float | None = None
    drop: float | None = None
    """How much worse int8 is than fp32 (positive = worse), whatever the metric's direction."""


class ExportReport(Contract):
    """`reports/export.json` (export)."""

    opset: int
    dynamic_axes: dict[str, dict[str, str]]
    parity: Parity
    served: dict[str, float] = {}
    """The whole serving path from raw inputs against the evaluated model, per check."""
    int8: Int8Report
    mlflow_model_uri: str | None = None

    def numbers(self) -> dict[str, Any]:
        found: dict[str, Any] = {"parity_max_abs_diff": self.parity.max_abs_diff}
        if self.parity.argmax_agreement is not None:
            found["parity_argmax_agreement"] = self.parity.argmax_agreement
        found.update(self.served)
        if self.int8.drop is not None:
            found["int8_drop"] = self.int8.drop
        return found


class RuntimeLatency(Contract):
    p50_ms: float
    p95_ms: float
    p99_ms: float
    mean_ms: float
    throughput: float
    n_calls: int
    threads: int
    throughput_batch: int
    model: str


class LatencyReport(Contract):
    """`reports/latency.json` (benchmark)."""

    torch: RuntimeLatency
    onnx_fp32: RuntimeLatency
    onnx_int8: RuntimeLatency | None = None
    speedup_p50: float
    int8_speedup_p50_vs_fp32: float | None = None
    settings: dict[str, int | None]

    def numbers(self) -> dict[str, Any]:
        found = {
            "torch_p50_ms": self.torch.p50_ms,
            "onnx_fp32_p50_ms": self.onnx_fp32.p50_ms,
            "onnx_fp32_p95_ms": self.onnx_fp32.p95_ms,
            "speedup_p50": self.speedup_p50,
        }
        if self.onnx_int8 is not None:
            found["onnx_int8_p50_ms"] = self.onnx_int8.p50_ms
        return found


class CheckResult(Contract):
    value: float | bool | None = None
    threshold: float | bool | str | None = None
    passed: bool
    detail: str = ""


class ReleaseReport(Contract):
    """`reports/release.json` (release)."""

    passed: bool
    checks: dict[str, CheckResult]
    model_name: str
    version: int
    run_id: str | None = None
    aliases: list[str]
    lineage: dict[str, str]
    champion: int | None = None

    def numbers(self) -> dict[str, Any]:
        """The verdict: `dvc exp show` says which experiments would pass the gate."""
        return {
            "passed": int(self.passed),
            "checks_failed": sum(not c.passed for c in self.checks.values()),
        }


class RunInfo(Contract):
    """`models/run.json` (train): the MLflow run later stages add their results to."""

    run_id: str
    experiment_id: str
    tracking_uri: str
