"""What one stage writes and another reads, as typed models with one writer each.

    TrainReport.read(layout.train_report).best_epoch
    seqops.tasks.read_metrics(layout.metrics).test["accuracy"]   # the task's own type

Every model here rejects unknown keys, so a reader never guesses what a file holds from which
keys exist: the task a file belongs to is a field (`task`), and the task's own module
(`seqops.tasks`) owns the task-specific part: its `DataMeta`, `DataReport` and, where it adds
fields, `MetricsReport` subclasses, which `seqops.tasks.read_meta`, `read_data_report` and
`read_metrics` pick from `task`. Writers go through `write()` (atomic, see `seqops.outputs`);
readers through `read()` / `parse_as()`, which turn a missing or malformed file into one
`DataError` naming it. Torch-free: the predictor reads the bundle through this module.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Any, ClassVar, Generic, Literal, Self, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializeAsAny,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from seqops import outputs
from seqops.errors import DataError, clip
from seqops.onnx_contract import CRF_OUTPUTS

T = TypeVar("T")


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
    def parse(cls, raw: Any, source: str | Path, *, strict: bool = False) -> Self:
        """`raw` validated; `strict`: a value of another JSON type (a string for a number,
        `true` for a count) is refused, not converted (what a reader of a file a user may
        have edited wants)."""
        try:
            return cls.model_validate(raw, strict=strict)
        except ValidationError as exc:
            raise invalid(exc, source, cls.__name__) from None

    @classmethod
    def read(cls, path: Path) -> Self:
        return cls.parse(read_json(path), path)


def parse_as(
    adapter: TypeAdapter[T], raw: Any, source: str | Path, what: str, *, strict: bool = False
) -> T:
    """`raw` validated as the adapter's type (a contract, or a discriminated union of them),
    a failure one DataError naming `source`, `what` it should be and the first bad key."""
    try:
        return adapter.validate_python(raw, strict=strict)
    except ValidationError as exc:
        raise invalid(exc, source, what) from None


def invalid(exc: ValidationError, source: str | Path, what: str) -> DataError:
    """The first of `exc`'s errors as one DataError naming the file and the bad key."""
    first = exc.errors()[0]
    where = ".".join(clip(str(p), 40) for p in first["loc"]) or "(top level)"
    return DataError(
        f"{source}: not a valid {what} ({where}: {clip(first['msg'], 200)}); "
        "re-run the stage that writes it"
    )


#: Largest JSON file `read_json` parses: reports and bundle metadata are kilobytes.
MAX_JSON_BYTES = 16 << 20
#: Deepest nesting of arrays and objects `read_json` parses (Python's parser recurses once
#: per level: 200,000 `[` would be a RecursionError, not an answer).
MAX_JSON_DEPTH = 32
#: A JSON string (skipped whole, brackets inside it do not nest) or a bracket.
_JSON_NESTING = re.compile(rb'"(?:[^"\\]|\\.)*+"?|[\[\]{}]')


def json_depth(data: bytes, limit: int = MAX_JSON_DEPTH) -> int:
    """How deeply `data` nests arrays and objects, counted up to `limit + 1` (a scan of the
    bytes, before any parser recurses into them)."""
    depth = deepest = 0
    for token in _JSON_NESTING.finditer(data):
        char = token.group()[:1]
        if char in (b"[", b"{"):
            depth += 1
            deepest = max(deepest, depth)
            if deepest > limit:
                break
        elif char in (b"]", b"}"):
            depth -= 1
    return deepest


def read_json(path: Path) -> Any:
    """A JSON file, its size and nesting bounded before it is parsed; a missing, oversized,
    too deeply nested or malformed one is one DataError naming it."""
    if not path.is_file():
        raise DataError(f"{path}: not found (run the pipeline stage that writes it)")
    size = path.stat().st_size
    if size > MAX_JSON_BYTES:
        raise DataError(f"{path}: {size:,} bytes, more than a report holds ({MAX_JSON_BYTES:,})")
    data = path.read_bytes()
    if json_depth(data) > MAX_JSON_DEPTH:
        raise DataError(
            f"{path}: nested deeper than {MAX_JSON_DEPTH} levels; not written by seqops"
        )
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: not valid JSON ({clip(str(exc), 200)})") from None


#: A finite float (NaN and infinities refused).
Finite = Annotated[float, Field(allow_inf_nan=False)]
#: A finite float above zero: a scale that is divided by.
Scale = Annotated[float, Field(gt=0.0, allow_inf_nan=False)]
#: A bundle file's name: a plain name inside the bundle's directory, no path.
FileName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$", max_length=255)]
#: A hex sha256 digest.
Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


def distinct(names: list[str], what: str) -> list[str]:
    """`names` when none repeats; else ValueError naming the first repeat."""
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ValueError(f"{what} repeat {clip(repr(name), 80)}")
        seen.add(name)
    return names


class Scaler(Contract):
    """Per-channel mean and std of the training split: inputs become `(x - mean) / std`."""

    mean: list[Finite]
    std: list[Scale]

    @model_validator(mode="after")
    def _same_length(self) -> Scaler:
        if len(self.mean) != len(self.std):
            raise ValueError(f"{len(self.mean)} means but {len(self.std)} stds")
        return self

    def check_features(self, n_features: int) -> None:
        """Raise ValueError unless there is one mean and std per feature."""
        if len(self.mean) != n_features:
            raise ValueError(f"scaler has {len(self.mean)} channels for {n_features} feature_names")


# -- prepare → every later stage ------------------------------------------------------------


class DataMeta(Contract):
    """`data/processed/preprocessing.json`: what turns raw input into model input.

    Each task subclasses it with a `task` literal and its own fields (a scaler, a tokenizer
    file, forecast windows); `seqops.tasks.read_meta` picks the subclass from `task`."""

    #: Classifiers name at least two classes, one per output.
    classifier: ClassVar[bool] = False

    task: str
    input: Literal["x", "tokens"]
    """The ONNX input the model reads: float features `x` or token ids `tokens`."""
    feature_names: list[str]
    label_names: list[str]
    """Class names in output order; empty for tasks that predict numbers."""
    n_outputs: int = Field(ge=1)
    """Width of the model's head: classes, target series, or 1 for one number."""
    max_train_length: int = Field(ge=1)

    @field_validator("feature_names")
    @classmethod
    def _distinct_features(cls, names: list[str]) -> list[str]:
        return distinct(names, "feature names")

    @field_validator("label_names")
    @classmethod
    def _distinct_labels(cls, names: list[str]) -> list[str]:
        return distinct(names, "label names")

    @model_validator(mode="after")
    def _one_label_per_output(self) -> Self:
        if self.classifier and len(self.label_names) < 2:
            raise ValueError(
                f"a classifier needs 2 or more label_names, got {len(self.label_names)}"
            )
        if self.label_names and len(self.label_names) != self.n_outputs:
            raise ValueError(
                f"{len(self.label_names)} label_names for {self.n_outputs} outputs (n_outputs)"
            )
        return self


class OnnxIO(Contract):
    """The graph's input and output names and named dims, as export wrote them (checked
    against the graph itself when the predictor opens it)."""

    inputs: list[str] = Field(min_length=2, max_length=2)
    outputs: list[str] = Field(min_length=1, max_length=4)
    """The task's output, then for a CRF tagger the CRF's transition scores
    (`onnx_contract.CRF_OUTPUTS`, in that order), which a predictor decodes with."""
    dynamic_axes: dict[str, dict[str, str]]

    @field_validator("outputs")
    @classmethod
    def _task_output_then_crf(cls, names: list[str]) -> list[str]:
        if len(names) > 1 and tuple(names[1:]) != CRF_OUTPUTS:
            raise ValueError(
                f"outputs after the first must be the CRF's {list(CRF_OUTPUTS)}, got "
                f"{clip(repr(names[1:]), 120)}"
            )
        return names


#: A task's own `DataMeta` subclass.
MetaT = TypeVar("MetaT", bound=DataMeta)
#: The same, read only (a frozen bundle of a narrower metadata type is a bundle of a wider).
MetaT_co = TypeVar("MetaT_co", bound=DataMeta, covariant=True)


class Bundle(Contract, Generic[MetaT_co]):
    """`models/preprocessing.json`: prepare's metadata plus what serving raw rows needs.

    `data` is the task's own `DataMeta` subclass (see `seqops.tasks.read_bundle`), so a task
    reads `Bundle[ItsMeta]` and its fields without a cast."""

    data: SerializeAsAny[MetaT_co]
    id_column: str
    time_column: str
    max_length: int = Field(ge=1)
    """Longest sequence predict / serve accept (longer ones are refused, not truncated)."""
    onnx: OnnxIO
    sha256: dict[FileName, Sha256] | None = None
    """The hex sha256 of every other file of the bundle by name (`model.onnx`, the int8 model
    when there is one, the task's bundle files), recorded by export after its checks passed:
    the predictor refuses a bundle whose files do not match (a killed or mixed-up export).
    None only in a bundle still being built, or one written before export recorded them.
    `bundle.sha256` beside it covers this file too (`seqops.onnx_contract.DIGESTS_FILE`)."""

    @model_validator(mode="after")
    def _fits_the_data(self) -> Self:
        if self.onnx.inputs[0] != self.data.input:
            raise ValueError(
                f"onnx.inputs[0] = {clip(repr(self.onnx.inputs[0]), 40)} but data.input is "
                f"{self.data.input!r}"
            )
        if self.max_length < self.data.max_train_length:
            raise ValueError(
                f"max_length {self.max_length} is below data.max_train_length "
                f"{self.data.max_train_length}"
            )
        return self


# -- reports (reports/*.json) -----------------------------------------------------------------


class LengthStats(Contract):
    min: int
    median: float
    max: int


class DataReport(Contract):
    """`reports/data.json` (prepare): split sizes and lengths, the fields every task shares.

    Each task subclasses it with a `task` literal and its own fields after these (class
    counts, the series, the target, tag counts): `Task.data_report_type`, which
    `seqops.tasks.read_data_report` picks from `task`. The JSON stays one flat object."""

    task: str
    n_train: int
    n_val: int
    n_test: int
    n_features: int
    source: str
    data_hash: str
    length: dict[str, LengthStats]

    def numbers(self) -> dict[str, Any]:
        """Split sizes and features, then what the task adds (`task_numbers`)."""
        return {
            "n_train": self.n_train,
            "n_val": self.n_val,
            "n_test": self.n_test,
            "n_features": self.n_features,
            **self.task_numbers(),
        }

    def task_numbers(self) -> dict[str, Any]:
        """The task's own headline numbers (classes, vocabulary)."""
        return {}

    def examples_per_class(self) -> dict[str, dict[str, int]]:
        """Examples per class, per split, for a task whose every example has one class
        (empty for the others): they add up to the split sizes."""
        return {}


def choice_lines(choice: dict[str, Any] | None) -> list[str]:
    """One sentence per `tune.choose` path of a tune report: the value chosen and the
    cross-validated figures behind it."""
    lines = []
    for path, row in (choice or {}).items():
        refused = ", ".join(str(r["value"]) for r in row.get("refused", []))
        if not row["candidates"]:
            lines.append(
                f"`{path}` = {row['chosen']}, the only listed value the choices before it "
                f"allow (refused: {refused})"
            )
            continue
        tried = "; ".join(
            f"{c['value']}: {c['accuracy']:.4f} / {c['loss']:.4f}" for c in row["candidates"]
        )
        lines.append(
            f"`{path}` = {row['chosen']}, chosen by {row['folds']}-fold cross-validation on "
            f"train + val before the search (mean validation accuracy / loss: {tried}"
            + (f"; refused, as the choices before it rule them out: {refused})" if refused else ")")
        )
    return lines


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
    choice: dict[str, Any] | None = None
    """`tune.choose`: per path the chosen value, the folds, and each candidate's mean and
    per-fold validation accuracy and loss (`seqops.tuning.choice`)."""

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
    """Train + val examples the kept model was refit on: for `best_epoch + 1` epochs
    (`train.refit_max_examples`), or a kernel-only model's ridge in closed form; 0: the best
    epoch of the validated run is kept as it is."""

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
    """`reports/metrics.json` (evaluate): test metrics, and what the task adds to them.

    A task whose report has fields of its own (forecasting's per-step errors, labeling's
    input) subclasses it with a `task` literal (`Task.metrics_type`, which
    `seqops.tasks.read_metrics` picks from `task`)."""

    task: str
    test: dict[str, float | int]
    per_class: dict[str, dict[str, float]] | None = None
    baseline: dict[str, dict[str, float]] | None = None
    """Classical methods fitted on the splits the model learned from (the training split;
    train + val for a kernel-only model) and scored on the same test examples, by name
    (`minirocket`, `tfidf_lr`, `seasonal_naive`, `holt_winters`, `ridge`), with the same
    metric names as `test`; their per-example predictions are columns of
    `reports/predictions.csv`."""
    skill: dict[str, float] | None = None
    """The model against each baseline: `rmse_vs_<name>` (RMSE ratio) for numeric tasks,
    `accuracy_minus_<name>` for classifiers."""

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
    """ONNX Runtime against PyTorch on the export's parity batches, and the margin used:
    passed when every output is within `atol + rtol * |PyTorch's|` (`worst_ratio` <= 1) and
    every decision agrees."""

    max_abs_diff: float
    argmax_agreement: float | None = None
    atol: float
    rtol: float = 0.0
    worst_ratio: float | None = None
    """The largest `|ONNX - PyTorch| / (atol + rtol * |PyTorch|)`: how much of the margin
    the worst output used (above 1 fails)."""
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


class StreamingReport(Contract):
    """The streaming step graph (`models/model_step.onnx`): whether the model has one, why not
    when it has none, and its chunked parity: test sequences fed `chunk_sizes` steps at a time,
    the state carried, against the full graph, within `atol + rtol * |full graph's|`."""

    available: bool
    reason: str | None = None
    """Why the model cannot stream (bidirectional, a conv encoder, mean pooling, ...)."""
    file: str | None = None
    fingerprint: str | None = None
    """The model fingerprint a served state carries (`seqops.stream_serving`): a state from
    another model is refused."""
    dynamic_axes: dict[str, dict[str, str]] | None = None
    chunk_sizes: list[int] | None = None
    """Steps per call checked; 0 stands for each sequence's whole length in one call."""
    shapes_checked: list[list[int]] | None = None
    """(batch, time) of the streamed batches."""
    max_abs_diff: float | None = None
    atol: float | None = None
    rtol: float | None = None
    worst_ratio: float | None = None
    passed: bool | None = None


class ExportReport(Contract):
    """`reports/export.json` (export)."""

    opset: int
    dynamic_axes: dict[str, dict[str, str]]
    parity: Parity
    served: dict[str, float] = {}
    """The whole serving path from raw inputs against the evaluated model, per check."""
    int8: Int8Report
    streaming: StreamingReport | None = None
    """The step graph's availability and chunked parity (None: a report from before streaming)."""
    mlflow_model_uri: str | None = None

    def numbers(self) -> dict[str, Any]:
        found: dict[str, Any] = {"parity_max_abs_diff": self.parity.max_abs_diff}
        if self.parity.worst_ratio is not None:
            found["parity_worst_ratio"] = self.parity.worst_ratio
        if self.parity.argmax_agreement is not None:
            found["parity_argmax_agreement"] = self.parity.argmax_agreement
        found.update(self.served)
        if self.int8.drop is not None:
            found["int8_drop"] = self.int8.drop
        if self.streaming is not None and self.streaming.max_abs_diff is not None:
            found["streaming_max_abs_diff"] = self.streaming.max_abs_diff
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
    """The store as configured: a relative `sqlite:///mlflow.db` is resolved against the
    project's root when used (`seqops.tracking.at_root`), so a copy of a project never writes
    into the original's store."""
