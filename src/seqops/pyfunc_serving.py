"""The MLflow side of serving: the pyfunc model `seqops export` logs (`OnnxSequenceModel`, loaded
by `mlflow models serve` and `mlflow.pyfunc.load_model`), the error its scoring server answers
HTTP 400 with, and the guard that keeps every undecodable request a one-line 400.

Kept apart from `seqops.serving` so that `seqops predict` on a local bundle and the latency
runs import neither MLflow nor torch: only this module needs MLflow's classes at import time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE
from mlflow.pyfunc import PythonModel

from seqops import onnx_contract as contract
from seqops.data.sources import one_line
from seqops.errors import DataError
from seqops.serving import (
    Predictor,
    artifact_key,
    check_digests,
    check_files,
    check_registered,
    read_digests,
)
from seqops.tasks import read_bundle
from seqops.tasks.parts.serve import get_serve


class RequestError(MlflowException):
    """A bad request: the scoring server answers HTTP 400 with exactly this one-line reason.

    The server rewrites the message of an error from `predict` to `Failed to predict data
    '<the whole request>'. Error: <reason>`; this keeps the reason alone (first, one line)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason, error_code=INVALID_PARAMETER_VALUE)
        self._reason = reason

    @property
    def message(self) -> str:
        return self._reason

    @message.setter
    def message(self, value: str) -> None:
        pass  # MLflow's request dump; the reason alone is the answer


def _guard_scoring_server() -> None:
    """Make MLflow's scoring server answer 400 with one line for every undecodable request.

    Its `invocations` lets a `RecursionError` (deeply nested JSON) through as HTTP 500 and puts
    the request into decoding errors; this wraps it once per process."""
    from mlflow.pyfunc import scoring_server

    invocations = scoring_server.invocations
    if getattr(invocations, "_seqops_guard", False):
        return

    def guarded(data: Any, content_type: str, model: Any, input_schema: Any) -> Any:
        try:
            return invocations(data, content_type, model, input_schema)
        except RequestError:
            raise
        except MlflowException as exc:
            # Drop the request MLflow quotes before ("Failed to predict data '...'. Error:")
            # or after ("Input: ...") its reason.
            reason = exc.message.rpartition("\nError: ")[2].partition("\nInput:")[0]
            raise RequestError(f"request: {one_line(reason)}") from None
        except RecursionError:
            raise RequestError("request: JSON nested too deeply to decode") from None
        except (ValueError, TypeError, KeyError) as exc:
            raise RequestError(f"request: cannot be decoded ({one_line(exc)})") from None

    guarded._seqops_guard = True  # type: ignore[attr-defined]
    scoring_server.invocations = guarded


def _model_root(artifact: Path) -> Path:
    """The MLflow model directory (the one holding `MLmodel`) an artifact file lies in."""
    for parent in list(artifact.parents)[:3]:
        if (parent / "MLmodel").is_file():
            return parent
    return artifact.parent


class OnnxSequenceModel(PythonModel):
    """MLflow pyfunc over the ONNX bundle; artifacts `model` (ONNX), `preprocessing` (JSON),
    the streaming step graph `model_step` when the model streams, and the task's bundle files
    by `artifact_key` (a text model's `tokenizer`). A request with a `stream_state` column
    continues each sequence's stream from the state it carries (`seqops.stream_serving`); a
    bad state is a 400 like any bad input."""

    def load_context(self, context: Any) -> None:
        artifacts = context.artifacts
        pre_file = Path(artifacts["preprocessing"])
        # The integrity record (`bundle` artifact) covers preprocessing.json too, checked
        # before it is parsed. Models logged before export wrote one (or before it recorded
        # digests at all) were checked when logged, and the registry keeps serving them.
        record_key = artifact_key(contract.DIGESTS_FILE)
        record = Path(artifacts[record_key]) if record_key in artifacts else None
        # A model downloaded from the registry must be the bundle its version recorded.
        check_registered(_model_root(Path(artifacts["model"])), record)
        digests = read_digests(record) if record is not None else {}
        if record is not None:
            check_digests(record, digests, {contract.PREPROCESSING_FILE: pre_file})
        bundle = read_bundle(pre_file)
        files = {
            name: Path(artifacts[artifact_key(name)])
            for name in get_serve(bundle.data.task).bundle_files(bundle.data)
        }
        model = Path(artifacts["model"])
        # The streaming step graph, when the bundle has one (a stream request needs it).
        step_key = artifact_key(contract.STEP_FILE)
        step = Path(artifacts[step_key]) if step_key in artifacts else None
        models = {contract.MODEL_FILE: model, **({contract.STEP_FILE: step} if step else {})}
        if record is not None:
            check_digests(record, digests, {**models, **files})
        if bundle.sha256 is not None:
            check_files(pre_file, bundle, {**models, **files})
        self._predictor = Predictor(model, bundle, files, step_file=step)
        _guard_scoring_server()

    # A pd.DataFrame hint tells MLflow to infer no schema from the hint: the signature logged
    # with the model (the task's request columns) validates requests instead.
    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        try:
            return self._predictor.predict_frame(frame, where="request")
        except DataError as exc:
            raise RequestError(str(exc)) from None
