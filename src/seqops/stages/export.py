"""export: the trained checkpoint → a checked ONNX bundle (+ int8 for LSTM), logged to MLflow.

    seqops export [--params params.yaml]

Writes `models/model.onnx`, `models/preprocessing.json`, the integrity record
`models/bundle.sha256` (the sha256 of every bundle file), the task's bundle files (a text
model's `models/tokenizer.json`), `models/model.int8.onnx` for LSTM models and the streaming
step graph `models/model_step.onnx` for a model that can stream (all three undeclared in
dvc.yaml: they do not always exist), and `reports/export.json` (opset, dynamic axes, parity
with the tolerance it used, served-path checks, int8, and `streaming`: the step graph's chunked
parity, or why the model has none). The checks are `seqops.onnx_export`'s: the stage fails
when ONNX Runtime disagrees with PyTorch, the served path disagrees with the evaluated model,
or the step graph fed chunk by chunk disagrees with the full graph. The bundle is logged as
an MLflow pyfunc model (models from code, `seqops.pyfunc_model`) in the training run of
`models/run.json`.

All or nothing: the previous bundle is deleted first (as `dvc repro` deletes a stage's outs:
it belongs to another checkpoint), the new one is built and checked in `models/.export-*/`
and only then moved in, `preprocessing.json` and `bundle.sha256` (the files' sha256) last.
A failed or killed export leaves no bundle, or one `seqops predict` refuses naming the file
that does not match; never one served unchecked. `dvc repro` then runs export again.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pandas as pd

from seqops import onnx_contract as contract
from seqops import outputs
from seqops.config import load_config
from seqops.contracts import ExportReport, TrainReport
from seqops.layout import Layout
from seqops.model.runtime import use_threads
from seqops.onnx_export import artifacts, export_bundle
from seqops.tasks import read_bundle, read_metrics
from seqops.tasks.parts.serve import get_serve

#: The module whose file is the logged pyfunc model (see its docstring).
PYFUNC_MODEL = "seqops.pyfunc_model"


def pyfunc_model_file() -> str:
    spec = importlib.util.find_spec(PYFUNC_MODEL)
    assert spec is not None and spec.origin is not None, PYFUNC_MODEL
    return spec.origin


def log_bundle(
    models_dir: Path,
    report: ExportReport,
    example: pd.DataFrame,
    model_metrics: list[tuple[int, dict[str, float]]],
    step: int,
) -> str:
    """Log parity figures and the ONNX bundle as a pyfunc model into the active MLflow run;
    `example` (raw requests) is its input example, `model_metrics` ((step, metrics): the kept
    epoch's validation scores at the run's headline step, the test metrics at 0, the steps the
    run already has them at) are what the MLflow UI shows on the model, with the training
    dataset. The model is logged at `step` (the headline step), because MLflow copies the run's
    metrics at the model's step onto it: at step 0 that would be epoch 0's."""
    import mlflow

    from seqops import tracking
    from seqops.serving import bundle_files, served_signature

    bundle = read_bundle(models_dir / contract.PREPROCESSING_FILE)
    codec = get_serve(bundle.data.task).codec(bundle, bundle_files(bundle, models_dir))
    metrics = {"export/parity_max_abs_diff": report.parity.max_abs_diff}
    if report.parity.argmax_agreement is not None:
        metrics["export/parity_argmax_agreement"] = report.parity.argmax_agreement
    int8 = report.int8
    if int8.available and int8.drop is not None:
        metrics[f"export/int8_{int8.metric.removeprefix('test/')}_drop"] = int8.drop
    mlflow.log_metrics(metrics)
    info = mlflow.pyfunc.log_model(
        name="model",
        # Models from code: MLflow stores this file, not a pickled object, and runs it on load.
        python_model=pyfunc_model_file(),
        artifacts=artifacts(models_dir, bundle.data),
        # Ship the seqops package with the model so it loads where seqops is not installed.
        code_paths=[str(Path(__file__).resolve().parents[1])],
        signature=served_signature(codec),
        input_example=example,
        step=step,
        pip_requirements=[
            f"onnxruntime=={ort.__version__}",
            f"pandas=={pd.__version__}",
            f"numpy=={np.__version__}",
            f"mlflow=={mlflow.__version__}",
            f"pydantic=={__import__('pydantic').VERSION}",
        ],
    )
    active = mlflow.active_run()
    dataset = tracking.trained_on(active.info.run_id) if active else None
    for at, metrics in model_metrics:
        mlflow.log_metrics(metrics, step=at, model_id=info.model_id, dataset=dataset)
    return str(info.model_uri)


def logged_model_metrics(layout: Layout, headline: int) -> list[tuple[int, dict[str, float]]]:
    """(step, metrics) for the logged model: the kept epoch's validation scores at the run's
    `headline` step (`headline_step`) and, once evaluate has run, the test metrics at step 0
    (where the run has them)."""
    trained = TrainReport.read(layout.train_report)
    found = [(headline, {k: v for k, v in trained.best.items() if k.startswith("val/")})]
    if layout.metrics.is_file():
        tested = read_metrics(layout.metrics)
        skip = ("n", "n_windows")
        found.append((0, {f"test/{k}": float(v) for k, v in tested.test.items() if k not in skip}))
    return found


def headline_step(run_id: str, key: str = "val/loss") -> int:
    """The step train logged the kept epoch's values at (after the per-epoch curve): the
    latest step of `key` in the run, read back rather than computed a second way."""
    import mlflow

    history = mlflow.MlflowClient().get_metric_history(run_id, key)
    return max((point.step for point in history), default=0)


def main(params: str | Path = "params.yaml", layout: Layout | None = None) -> ExportReport:
    import mlflow

    from seqops import tracking
    from seqops.tasks import read_meta

    layout = layout or Layout()
    cfg = load_config(params)
    use_threads(cfg.train.threads)
    meta = read_meta(layout.processed_meta)
    tracking.preflight_run(layout.run_file)  # before anything is deleted
    outputs.remove(
        layout.models / contract.MODEL_FILE,
        layout.models / contract.INT8_FILE,
        layout.models / contract.STEP_FILE,
        layout.models / contract.PREPROCESSING_FILE,
        layout.models / contract.DIGESTS_FILE,
        *(layout.models / name for name in get_serve(meta.task).bundle_files(meta)),
        layout.export_report,
        layout.stage_metrics("export"),
    )
    # What evaluate calibrated (forecast intervals) travels in the bundle.
    metrics = read_metrics(layout.metrics) if layout.metrics.is_file() else None
    report, example = export_bundle(
        layout.checkpoint, layout.processed, layout.models, cfg.export, cfg.data, metrics
    )
    with tracking.resume_run(layout.run_file) as run:
        headline = headline_step(run.info.run_id)
        model_metrics = logged_model_metrics(layout, headline)
        uri = log_bundle(layout.models, report, example, model_metrics, headline)
        report = report.model_copy(update={"mlflow_model_uri": uri})
        report.write(layout.export_report, layout.stage_metrics("export"))
        mlflow.log_artifact(str(layout.export_report), "reports")
    parity, int8, streaming = report.parity, report.int8, report.streaming
    int8_text = (
        f"int8 {int8.metric} {int8.int8:.4g} vs fp32 {int8.fp32:.4g}"
        if int8.available and int8.int8 is not None
        else f"no int8: {int8.reason}"
    )
    agreement = parity.argmax_agreement
    print(
        f"export: parity max |diff| {parity.max_abs_diff:.2e}, {parity.worst_ratio or 0:.2f} "
        f"of the tolerance (atol {parity.atol:g} + rtol {parity.rtol:g} × |output|) over "
        f"{parity.shapes_checked}"
        + (f", argmax agreement {agreement:.0%}" if agreement is not None else "")
        + f"; {int8_text}"
    )
    if streaming is not None and streaming.available:
        print(
            f"export: streaming step graph {streaming.file}, chunks of {streaming.chunk_sizes} "
            f"steps (0: whole) against the full graph, max |diff| {streaming.max_abs_diff:.2e}"
        )
    elif streaming is not None:
        print(f"export: no streaming step graph: {streaming.reason}")
    return report
