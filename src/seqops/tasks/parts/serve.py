"""What export, benchmark and serving run of a task: the `ServeTask` part and its registry.

    serve = get_serve(bundle.data.task)
    serve.codec(bundle, files)            # request rows in, answer rows out (torch-free)
    serve.output_shape(meta), serve.quality(predictor, processed), ...

Each task's part is `seqops.tasks.<task>.serve`: its ONNX output shape, how many decisions two
outputs share, its served test quality, the whole-path checks against the evaluated model,
MLflow's request example, the files the bundle carries and the request codec.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic

import numpy as np
import pandas as pd

from seqops import onnx_contract as contract
from seqops.contracts import Bundle, MetaT, MetaT_co
from seqops.tasks.base import MetricsT, ReportT, Task

if TYPE_CHECKING:
    from mlflow.models import ModelSignature

    from seqops.model.network import SequenceNet
    from seqops.serving import Predictor

#: Runs the ONNX model: contract inputs (`x` or `tokens`, `lengths`) → its output array.
RunModel = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Quality:
    """A model's test quality on one metric, for comparing int8 with fp32."""

    metric: str
    value: float
    lower_is_better: bool


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

    def window_stream(
        self, frame: pd.DataFrame, run: RunModel, where: str, model: str
    ) -> pd.DataFrame | None:
        """For a model that reads a fixed window of the latest steps (a forecaster): answer a
        stream request (`frame` with its `stream_state` column) by carrying that window in
        the state (`seqops.stream_serving.WindowLayout`, for the model fingerprint `model`);
        None for any other model (it streams through a step graph, or not at all)."""
        return None


class ServeTask(Task[MetaT, ReportT, MetricsT]):
    """A task's export and serving part."""

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

    @abstractmethod
    def codec(self, bundle: Bundle[MetaT], files: dict[str, Path]) -> Codec[MetaT]:
        """The request codec; `files` maps each of `bundle_files` to where it is."""


def served_gap(
    got: np.ndarray, expected: np.ndarray, limit: contract.Tolerance, what: str, unit: str
) -> dict[str, float]:
    """`served_checks`' verdict for outputs in the data's units: the largest gap between the
    served answers `got` and the evaluated model's `expected`; raises ExportError when it is
    beyond `limit` (the parity tolerance scaled to those units), naming `what` was served."""
    from seqops.errors import ExportError

    gap = float(np.abs(got - expected).max())
    ratio = limit.ratio(got, expected)
    if ratio > 1.0:
        raise ExportError(
            f"{what} differ from the evaluated model's by {gap:.3g}, {ratio:.3g} times the "
            f"tolerance (atol {limit.atol:.3g} + rtol {limit.rtol:g} × |{unit}|): "
            "preprocessing.json does not match the model"
        )
    return {"served_max_abs_diff": gap}


@cache
def _serves() -> dict[str, ServeTask[Any, Any, Any]]:
    from seqops.tasks.classification.serve import SequenceClassificationServe
    from seqops.tasks.forecasting.serve import ForecastingServe
    from seqops.tasks.language_modeling.serve import LanguageModelingServe
    from seqops.tasks.regression.serve import SequenceRegressionServe
    from seqops.tasks.sequence_labeling.serve import SequenceLabelingServe
    from seqops.tasks.text.serve import TextClassificationServe

    parts: tuple[ServeTask[Any, Any, Any], ...] = (
        SequenceClassificationServe(),
        TextClassificationServe(),
        ForecastingServe(),
        SequenceRegressionServe(),
        SequenceLabelingServe(),
        LanguageModelingServe(),
    )
    return {part.name: part for part in parts}


def get_serve(name: str) -> ServeTask[Any, Any, Any]:
    """The export and serving part of task `name` (a name `get_task` knows)."""
    from seqops.tasks import get_task

    get_task(name)  # an unknown name raises the same DataError as every lookup
    return _serves()[name]
