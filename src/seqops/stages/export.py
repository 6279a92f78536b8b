"""export: the trained checkpoint → a checked ONNX bundle (+ int8 for LSTM), logged to MLflow.

    seqops export [--params params.yaml]

Writes `models/model.onnx` (one self-contained file; names and symbolic dims per
`seqops.onnx_contract`, asserted on the written graph; `onnx.checker` full check),
`models/preprocessing.json` (scaler, label and feature names, id/time columns, max length),
`models/model.int8.onnx` for LSTM models, `models/tokenizer.json` for text models (both
undeclared in dvc.yaml: they do not always exist), and `reports/export.json` (opset, dynamic axes,
parity, int8). The stage fails when ONNX Runtime disagrees with PyTorch beyond
`export.parity_atol` or on any argmax, at every checked (batch, time) shape. The bundle is
logged as an MLflow pyfunc model in the training run of `models/run.json`.

Forecasting models output `forecast` `(batch, horizon, targets)` instead of `logits`; parity
compares it elementwise (no argmax), the whole serving path from raw test histories must
reproduce the evaluated forecasts in units (`served_max_abs_diff`), and int8 is judged by
test RMSE.
"""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pandas as pd
import torch
from torch import nn

from seqops import onnx_contract as contract
from seqops import outputs
from seqops.config import DataConfig, ExportConfig, load_config
from seqops.data.datamodule import pad_batch
from seqops.data.sequences import SequenceSet
from seqops.data.text import TOKENIZER_FILE
from seqops.errors import SeqopsError
from seqops.forecasting import ForecastTest
from seqops.layout import Layout
from seqops.model.system import LitSequenceModel
from seqops.serving import (
    ForecastPreprocessing,
    Predictor,
    Preprocessing,
    TextPreprocessing,
    load_preprocessing,
)
from seqops.stages.evaluate import model_forecast
from seqops.stages.prepare import TEST_TEXTS_FILE


class ExportError(SeqopsError):
    """The exported model broke the contract, failed parity, or was not quantized."""


def input_name(net: nn.Module) -> str:
    """`tokens` for a text model (an embedding over token ids), else `x`."""
    return contract.TOKENS if getattr(net, "vocab_size", None) else contract.INPUT


def output_name(net: nn.Module) -> str:
    """`forecast` for a forecasting model (a multi-step head), else `logits`."""
    return contract.FORECAST if getattr(net, "horizon", None) else contract.OUTPUT


def export_onnx(net: nn.Module, path: Path, opset: int, n_features: int, n_outputs: int) -> None:
    """Write `net` to `path` in eval mode and check the written graph against the contract."""
    net.eval()
    name, output = input_name(net), output_name(net)
    # Batch and time >= 2 so the tracer cannot fold either into a constant; lengths differ so
    # the reversal and masking paths are traced with real work.
    if name == contract.TOKENS:
        x = torch.ones(3, 5, dtype=torch.int64)  # (B, T) token ids
    else:
        x = torch.zeros(3, 5, n_features)  # (B, T, F)
    lengths = torch.tensor([5, 2, 4], dtype=torch.int64)  # (B,)
    with outputs.atomic_path(path) as tmp, warnings.catch_warnings(), torch.no_grad():
        # The TorchScript exporter, not torch.export (dynamo=True): torch.export specialises
        # nn.LSTM's time dim to the example's and fails on a dynamic `time`. The warnings are
        # its deprecation notice and an h0-batch note that the batch-1 parity check covers.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            net,
            (x, lengths),
            str(tmp),
            input_names=[name, contract.LENGTHS],
            output_names=[output],
            dynamic_axes=contract.dynamic_axes(name, output),
            opset_version=opset,
            do_constant_folding=True,
            dynamo=False,
        )
        model = onnx.load(str(tmp))
        contract.check_graph(model, n_features, n_outputs, name, getattr(net, "horizon", None))
        onnx.checker.check_model(model, full_check=True)


def parity_batches(
    test: SequenceSet, batch_sizes: list[int], long_length: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Real test batches at each batch size, plus two sequences `long_length` steps long.

    The long ones are test sequences laid end to end (still real feature values) so parity is
    also checked past any length seen in training.
    """
    batches = []
    for size in batch_sizes:
        chosen = [test.sequences[i % len(test)] for i in range(size)]
        x, lengths = pad_batch(chosen)
        batches.append((x.numpy(), lengths.numpy()))
    stream = np.concatenate(test.sequences)  # (sum T, F)
    reps = -(-2 * long_length // len(stream))
    stream = np.concatenate([stream] * max(reps, 1))
    long = [stream[:long_length], stream[long_length : 2 * long_length - 3]]
    x, lengths = pad_batch(long)
    batches.append((x.numpy(), lengths.numpy()))
    return batches


@torch.no_grad()
def check_parity(
    net: nn.Module,
    session: ort.InferenceSession,
    batches: list[tuple[np.ndarray, np.ndarray]],
    atol: float,
) -> dict[str, Any]:
    """Max |ONNX - PyTorch| over the outputs and, for classifiers, argmax agreement (None for
    forecasts); `passed` against `atol`."""
    net.eval()
    name, output = input_name(net), output_name(net)
    worst, agree, total, shapes = 0.0, 0, 0, []
    for x, lengths in batches:
        expected = net(torch.from_numpy(x), torch.from_numpy(lengths)).numpy()  # (B, C | H, K)
        (got,) = session.run([output], {name: x, contract.LENGTHS: lengths})
        worst = max(worst, float(np.abs(got - expected).max()))
        if output == contract.OUTPUT:
            agree += int((got.argmax(axis=1) == expected.argmax(axis=1)).sum())
        total += len(x)
        shapes.append([int(x.shape[0]), int(x.shape[1])])
    agreement = agree / total if output == contract.OUTPUT else None
    return {
        "max_abs_diff": worst,
        "argmax_agreement": agreement,
        "atol": atol,
        "shapes_checked": shapes,
        "passed": worst <= atol and agreement in (1.0, None),
    }


def quantize_int8(cell: str, fp32_path: Path, int8_path: Path) -> str | None:
    """Dynamic int8 quantization of an LSTM model; returns why not when unsupported."""
    if cell != "lstm":
        return (
            f"onnxruntime dynamic quantization has no quantized {cell.upper()} kernel "
            f"(it covers LSTM via {contract.QUANTIZED_LSTM_OP}); the model stays fp32"
        )
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with outputs.atomic_path(int8_path) as tmp:
        quantize_dynamic(fp32_path, tmp, weight_type=QuantType.QInt8)
        # Quantization silently leaves an LSTM in float when its weights are not constant
        # initializers; an "int8" model without the op would be a lie.
        if not contract.has_quantized_lstm(onnx.load(str(tmp))):
            raise ExportError(
                f"{int8_path}: quantization produced no {contract.QUANTIZED_LSTM_OP} node "
                "(were the LSTM weights exported as constant initializers?)"
            )
    return None


def accuracy(predictor: Predictor, test: SequenceSet) -> float:
    probs = predictor.predict_proba(test.sequences)
    return float((probs.argmax(axis=1) == test.labels).mean())


def bundle_preprocessing(
    processed: dict[str, Any], data: DataConfig, max_length: int
) -> dict[str, Any]:
    """prepare's preprocessing plus what the predictor needs to read raw long-format rows."""
    if max_length < processed["max_train_length"]:
        raise ExportError(
            f"export.max_length = {max_length} is below the longest training sequence "
            f"({processed['max_train_length']} steps); raise it"
        )
    name = processed.get("input", contract.INPUT)
    output = contract.FORECAST if processed.get("task") == "forecasting" else contract.OUTPUT
    return {
        **processed,
        "id_column": data.id_column,
        "time_column": data.time_column,
        "max_length": max_length,
        "onnx": {
            "inputs": [name, contract.LENGTHS],
            "outputs": [output],
            "dynamic_axes": contract.dynamic_axes(name, output),
        },
    }


def export(
    checkpoint: Path, processed_dir: Path, models_dir: Path, cfg: ExportConfig, data: DataConfig
) -> tuple[dict[str, Any], pd.DataFrame]:
    """Write the bundle into `models_dir`; the export report (raises on failed parity) and two
    raw test requests, the MLflow model's input example."""
    system = LitSequenceModel.load_from_checkpoint(checkpoint, map_location="cpu")
    net = system.net.eval()
    hparams = system.hparams
    # The checkpoint knows its own sizes (n_classes: classes, or target series to forecast).
    n_features, n_outputs = hparams["n_features"], hparams["n_classes"]
    pre_raw = json.loads((processed_dir / contract.PREPROCESSING_FILE).read_text())
    test = SequenceSet.load(processed_dir / "test.npz")

    bundle = bundle_preprocessing(pre_raw, data, cfg.max_length)
    if "tokenizer" in bundle:  # text: the tokenizer travels inside the bundle
        with outputs.atomic_path(models_dir / bundle["tokenizer"]) as tmp_tok:
            shutil.copyfile(processed_dir / bundle["tokenizer"], tmp_tok)
    outputs.write_json(models_dir / contract.PREPROCESSING_FILE, bundle)
    fp32_path = models_dir / contract.MODEL_FILE
    export_onnx(net, fp32_path, cfg.opset, n_features, n_outputs)

    pre = load_preprocessing(models_dir / contract.PREPROCESSING_FILE)
    fp32 = Predictor(fp32_path, pre)
    parity = check_parity(
        net,
        fp32.session,
        parity_batches(test, cfg.parity_batch_sizes, cfg.max_length),
        cfg.parity_atol,
    )
    report: dict[str, Any] = {
        "opset": cfg.opset,
        # Read back from the written graph: what it declares, not what was asked for.
        "dynamic_axes": {
            name: {str(i): d for i, d in enumerate(dims) if isinstance(d, str)}
            for name, dims in contract.graph_shapes(onnx.load(str(fp32_path))).items()
        },
        "parity": parity,
    }
    if not parity["passed"]:
        agreement = parity["argmax_agreement"]
        raise ExportError(
            f"ONNX Runtime disagrees with PyTorch: max |output diff| "
            f"{parity['max_abs_diff']:.3g} (limit {cfg.parity_atol:g})"
            + (f", argmax agreement {agreement:.2%}" if agreement is not None else "")
            + f" over shapes {parity['shapes_checked']}"
        )

    if isinstance(pre, ForecastPreprocessing):
        forecast_test = ForecastTest.load(processed_dir)
        report["served_max_abs_diff"] = check_served_forecast(
            system, fp32, forecast_test, cfg.parity_atol
        )
        metric = "test/rmse"
        fp32_quality = forecast_rmse(fp32, forecast_test)
        requests = forecast_test.history_frame(pre.id_column, pre.time_column)
        example = requests[requests[pre.id_column].isin(["seq0"])]
    else:
        metric = "test/accuracy"
        fp32_quality = accuracy(fp32, test)
        if isinstance(pre, Preprocessing):
            example = example_frame(test, pre, n=2)
    if isinstance(pre, TextPreprocessing):
        # The whole serving path on raw text (tokenizer.json + ONNX) must match the
        # token ids prepare wrote, or the served model is not the evaluated one.
        texts = json.loads((processed_dir / TEST_TEXTS_FILE).read_text())
        example = text_frame(texts, pre, n=2)
        served = fp32.predict_frame(text_frame(texts, pre), where="test texts")
        gap = float(
            np.abs(
                served[pre.probability_columns].to_numpy() - fp32.predict_proba(test.sequences)
            ).max()
        )
        report["raw_text_max_abs_diff"] = gap
        if gap > 1e-6:
            raise ExportError(
                f"raw test texts served through tokenizer.json give probabilities up to {gap:.3g} "
                "away from the prepared token ids': tokenizer.json does not match"
            )
    reason = (
        quantize_int8(hparams["network"]["cell"], fp32_path, models_dir / contract.INT8_FILE)
        if cfg.quantize
        else "disabled by export.quantize"
    )
    if reason is None:
        int8 = Predictor(models_dir / contract.INT8_FILE, pre)
        if isinstance(pre, ForecastPreprocessing):
            int8_quality = forecast_rmse(int8, forecast_test)
            drop = int8_quality - fp32_quality  # an error: higher is worse
        else:
            int8_quality = accuracy(int8, test)
            drop = fp32_quality - int8_quality
        report["int8"] = {
            "available": True,
            "op": contract.QUANTIZED_LSTM_OP,
            "metric": metric,
            "fp32": fp32_quality,
            "int8": int8_quality,
            "drop": drop,
        }
    else:
        report["int8"] = {
            "available": False,
            "reason": reason,
            "metric": metric,
            "fp32": fp32_quality,
        }
    return report, example


def forecast_rmse(predictor: Predictor, test: ForecastTest) -> float:
    """Test RMSE in the series' units of the ONNX model, from the raw test histories."""
    return float(np.sqrt(((predictor.forecast(test.histories()) - test.actual()) ** 2).mean()))


def check_served_forecast(
    system: LitSequenceModel, predictor: Predictor, test: ForecastTest, atol: float
) -> float:
    """The whole serving path (raw history rows → preprocessing.json → ONNX → units) against
    the evaluated PyTorch forecasts; raises when they differ beyond what `atol` on the scaled
    outputs allows once integrated and scaled back (`atol` × target std × horizon)."""
    spec = test.spec
    expected = model_forecast(system, spec, test.series.values, test.origins)
    pre = predictor.pre
    assert isinstance(pre, ForecastPreprocessing)
    requests = test.history_frame(pre.id_column, pre.time_column)
    served = predictor.forecast_frame(requests, where="test histories")
    got = served[spec.target_names].to_numpy().reshape(expected.shape)
    gap = float(np.abs(got - expected).max())
    limit = atol * float(spec.std[spec.target_index].max()) * spec.horizon
    if gap > limit:
        raise ExportError(
            f"forecasts served from raw test histories differ from the evaluated model's by "
            f"{gap:.3g} (limit {limit:.3g}): preprocessing.json does not match the model"
        )
    return gap


def log_bundle(models_dir: Path, report: dict[str, Any], example: pd.DataFrame) -> str:
    """Log parity figures and the ONNX bundle as a pyfunc model into the active MLflow run;
    `example` (raw requests) is its input example."""
    import mlflow

    from seqops.serving import OnnxSequenceClassifier, model_signature

    pre_file = models_dir / contract.PREPROCESSING_FILE
    pre = load_preprocessing(pre_file)
    artifacts = {"model": str(models_dir / contract.MODEL_FILE), "preprocessing": str(pre_file)}
    if isinstance(pre, TextPreprocessing):
        artifacts["tokenizer"] = str(models_dir / TOKENIZER_FILE)
    parity = report["parity"]
    metrics = {"export/parity_max_abs_diff": parity["max_abs_diff"]}
    if parity["argmax_agreement"] is not None:
        metrics["export/parity_argmax_agreement"] = parity["argmax_agreement"]
    if report["int8"]["available"]:
        metric = report["int8"]["metric"].removeprefix("test/")
        metrics[f"export/int8_{metric}_drop"] = report["int8"]["drop"]
    mlflow.log_metrics(metrics)
    info = mlflow.pyfunc.log_model(
        name="model",
        python_model=OnnxSequenceClassifier(),
        artifacts=artifacts,
        # Ship the seqops package with the model so it loads where seqops is not installed.
        code_paths=[str(Path(__file__).resolve().parents[1])],
        signature=model_signature(pre),
        input_example=example,
        pip_requirements=[
            f"onnxruntime=={ort.__version__}",
            f"pandas=={pd.__version__}",
            f"numpy=={np.__version__}",
            f"mlflow=={mlflow.__version__}",
        ],
    )
    return str(info.model_uri)


def example_frame(test: SequenceSet, pre: Preprocessing, n: int) -> pd.DataFrame:
    """The first `n` test sequences back in raw long format (un-standardised), string ids."""
    rows = []
    for i in range(n):
        raw = test.sequences[i].astype(np.float64) * pre.std + pre.mean  # (T, F)
        for t, step in enumerate(raw):
            rows.append(
                {
                    pre.id_column: f"seq{i}",
                    pre.time_column: t,
                    **dict(zip(pre.feature_names, step.tolist(), strict=True)),
                }
            )
    return pd.DataFrame(rows)


def text_frame(texts: list[str], pre: TextPreprocessing, n: int | None = None) -> pd.DataFrame:
    """The first `n` raw test texts as a request frame (string ids `seq<i>`, text column)."""
    chosen = texts if n is None else texts[:n]
    return pd.DataFrame(
        {pre.id_column: [f"seq{i}" for i in range(len(chosen))], pre.text_column: chosen}
    )


def main(params: str | Path = "params.yaml", layout: Layout | None = None) -> dict[str, Any]:
    from seqops import tracking

    layout = layout or Layout()
    cfg = load_config(params)
    report_file = layout.reports / "export.json"
    outputs.remove(
        layout.models / contract.MODEL_FILE,
        layout.models / contract.INT8_FILE,
        layout.models / contract.PREPROCESSING_FILE,
        layout.models / TOKENIZER_FILE,
        report_file,
    )
    report, example = export(
        layout.checkpoint, layout.processed, layout.models, cfg.export, cfg.data
    )
    with tracking.resume_run(layout.run_file):
        report["mlflow_model_uri"] = log_bundle(layout.models, report, example)
        outputs.write_json(report_file, report)
        import mlflow

        mlflow.log_artifact(str(report_file), "reports")
    parity, int8 = report["parity"], report["int8"]
    int8_text = (
        f"int8 {int8['metric']} {int8['int8']:.4g} vs fp32 {int8['fp32']:.4g}"
        if int8["available"]
        else f"no int8: {int8['reason']}"
    )
    agreement = parity["argmax_agreement"]
    print(
        f"export: parity max |diff| {parity['max_abs_diff']:.2e} over {parity['shapes_checked']}"
        + (f", argmax agreement {agreement:.0%}" if agreement is not None else "")
        + f"; {int8_text}"
    )
    return report
