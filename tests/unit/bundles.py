"""Building typed metadata and ONNX bundles for unit tests through the library's own code:
`seqops.onnx_export.make_bundle` and `export_onnx`, never hand-written JSON.

    meta = classification_meta(["a", "b"], ["x", "y"])
    write_bundle(models_dir, net, meta)                 # preprocessing.json + model.onnx
    predictor = Predictor.load(models_dir)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from torch import nn

from seqops import onnx_contract as contract
from seqops.config import DataConfig
from seqops.contracts import Bundle, DataMeta, Scaler
from seqops.data.windows import ForecastSpec
from seqops.onnx_export import export_onnx, make_bundle, record_digests, seal_bundle
from seqops.serving import Predictor
from seqops.tasks import get_task
from seqops.tasks.classification.task import ClassificationMeta
from seqops.tasks.forecasting.task import CutsInfo, ForecastMeta
from seqops.tasks.parts.serve import get_serve
from seqops.tasks.text.task import TextMeta


def classification_meta(
    features: list[str],
    labels: list[str],
    mean: np.ndarray | None = None,
    std: np.ndarray | None = None,
    max_train_length: int = 12,
) -> ClassificationMeta:
    n = len(features)
    return ClassificationMeta(
        feature_names=features,
        label_names=labels,
        n_outputs=len(labels),
        max_train_length=max_train_length,
        scaler=Scaler(
            mean=(np.zeros(n) if mean is None else mean).tolist(),
            std=(np.ones(n) if std is None else std).tolist(),
        ),
    )


def text_meta(
    labels: list[str], vocab_size: int, max_len: int, text_column: str, max_train_length: int
) -> TextMeta:
    return TextMeta(
        feature_names=[],
        label_names=labels,
        n_outputs=len(labels),
        max_train_length=max_train_length,
        vocab_size=vocab_size,
        max_len=max_len,
        text_column=text_column,
    )


def forecast_meta(spec: ForecastSpec, freq: str | None) -> ForecastMeta:
    """A forecaster's metadata for `spec` (cuts only matter to evaluation, not to serving)."""
    return ForecastMeta(
        feature_names=spec.feature_names,
        label_names=[],
        n_outputs=len(spec.target_names),
        max_train_length=spec.lookback,
        forecast=spec.to_dict(),
        freq=freq,
        cuts=CutsInfo(val_start=spec.lookback, test_start=2 * spec.lookback),
    )


def bundle_of(meta: DataMeta, data: DataConfig | None = None, max_length: int = 64) -> Bundle:
    return make_bundle(meta, get_serve(meta.task), data or DataConfig(), max_length)


def expected_shapes(meta: DataMeta) -> dict[str, list[str | int]]:
    """The graph contract of `meta`'s task: input, `lengths`, the task's output and its shape."""
    task = get_serve(meta.task)
    return contract.expected_shapes(
        meta.input, len(meta.feature_names), task.output, task.output_shape(meta)
    )


def export(net: nn.Module, path: Path, meta: DataMeta, opset: int = 17) -> None:
    """`net` to ONNX as the export stage writes it for `meta`'s task (graph contract checked)."""
    export_onnx(net, path, opset, meta.input, get_task(meta.task).output, expected_shapes(meta))


def predictor(path: Path, meta: DataMeta, data: DataConfig | None = None) -> Predictor:
    """An onnxruntime predictor over the ONNX model at `path` for `meta`'s bundle."""
    return Predictor(path, bundle_of(meta, data))


def write_bundle(
    models: Path,
    net: nn.Module,
    meta: DataMeta,
    data: DataConfig | None = None,
    max_length: int = 64,
) -> Path:
    """`preprocessing.json` and `model.onnx` in `models`, sealed (`seal_bundle`: the files'
    sha256 recorded). The task's extra files, such as a tokenizer, are the caller's, who seals
    the bundle again after writing them."""
    export(net, models / contract.MODEL_FILE, meta)
    seal_bundle(models, bundle_of(meta, data, max_length))
    return models


def reseal(models: Path) -> None:
    """Write the integrity record `bundle.sha256` again over the bundle files in `models` as
    they are now, as export would: a test that spoils a file and reseals reaches the checks
    behind the record's (the parser, the typed metadata, the graph)."""
    names = [contract.MODEL_FILE, contract.INT8_FILE, contract.PREPROCESSING_FILE, "tokenizer.json"]
    record_digests(models, [name for name in names if (models / name).is_file()])
