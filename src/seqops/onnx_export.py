"""A trained system → a checked ONNX bundle: graph contract, parity, served path, int8.

    report, example = export_bundle(checkpoint, processed, models_dir, cfg.export, cfg.data)

All or nothing: the bundle is built and checked in a staging directory inside `models/` and
only then moved into place, `preprocessing.json` (holding the sha256 of every other file) and
the integrity record `bundle.sha256` (the sha256 of every file, `preprocessing.json`
included) last, so a failed or killed export never leaves a bundle the predictor would serve
unchecked.
The bundle is `model.onnx` (names and symbolic dims per `seqops.onnx_contract`, asserted on
the written graph; `onnx.checker` full check), `preprocessing.json` (the typed
`seqops.contracts.Bundle`), the task's extra files (`ServeTask.bundle_files`), for LSTM and
transformer models `model.int8.onnx`, and for a model that can stream
(`seqops.model.streaming`) the step graph `model_step.onnx` (a chunk and the recurrent state
in, the chunk's per-step outputs and the new state out), checked chunk by chunk against the
full graph (`check_streaming`).
Raises ExportError when ONNX Runtime disagrees with PyTorch beyond
`export.parity_atol + export.parity_rtol * |output|` (or on any classifier decision), at every
checked (batch, time) shape,
or when the task's served-path check fails. Nothing here depends on which task it is: the
task supplies the output's name and shape, the decision agreement, the quality metric and
the served-path checks. A per-step output shape (`onnx_contract.is_per_step`) gets a symbolic
time axis; a network with a CRF also outputs its transition scores (`CRFGraph`).
"""

from __future__ import annotations

import os
import shutil
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pandas as pd
import torch
from torch import nn

from seqops import onnx_contract as contract
from seqops import outputs
from seqops.config import DataConfig, ExportConfig
from seqops.contracts import (
    Bundle,
    DataMeta,
    ExportReport,
    Int8Report,
    MetricsReport,
    OnnxIO,
    Parity,
    StreamingReport,
)
from seqops.data.batches import pad_batch
from seqops.data.sequences import SequenceSet
from seqops.errors import ExportError
from seqops.layout import split_file
from seqops.model.crf import LinearChainCRF
from seqops.model.runtime import load_network
from seqops.model.streaming import StepNet, streaming_reason
from seqops.serving import Predictor
from seqops.stream_serving import stream_chunks
from seqops.tasks import read_meta
from seqops.tasks.parts.serve import ServeTask, get_serve


def example_inputs(input_name: str, n_features: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A traced batch: batch and time >= 2 so the tracer cannot fold either into a constant;
    lengths differ so the reversal and masking paths are traced with real work."""
    if input_name == contract.TOKENS and n_features:
        x = torch.ones(3, 5, n_features, dtype=torch.int64)  # (B, T, 1 + W) packed ids
    elif input_name == contract.TOKENS:
        x = torch.ones(3, 5, dtype=torch.int64)  # (B, T) token ids
    else:
        x = torch.zeros(3, 5, n_features)  # (B, T, F)
    return x, torch.tensor([5, 2, 4], dtype=torch.int64)  # (B,)


class CRFGraph(nn.Module):
    """A network with a CRF as one graph: its per-step emission scores, then the CRF's
    `transitions`, `start_transitions` and `end_transitions` (`onnx_contract.CRF_OUTPUTS`),
    all a torch-free predictor needs to Viterbi-decode (`seqops.decoding`)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        crf = getattr(net, "crf", None)
        if not isinstance(crf, LinearChainCRF):
            raise ExportError(
                f"the graph contract lists the CRF outputs {list(contract.CRF_OUTPUTS)} but "
                "the network has no CRF"
            )
        self.net = net
        self.crf = crf

    def forward(
        self, x: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        crf = self.crf
        return self.net(x, lengths), crf.transitions, crf.start_transitions, crf.end_transitions


def crf_outputs(net: nn.Module) -> dict[str, list[str | int]]:
    """The extra outputs of `net`'s graph: the CRF's (`onnx_contract.crf_shapes`) when it
    has one, else none."""
    crf = getattr(net, "crf", None)
    return contract.crf_shapes(crf.n_tags) if isinstance(crf, LinearChainCRF) else {}


def export_onnx(
    net: nn.Module,
    path: Path,
    opset: int,
    input_name: str,
    output_name: str,
    expected: dict[str, list[str | int]],
) -> None:
    """Write `net` to `path` in eval mode and check the written graph has `expected` shapes.

    A per-step output in `expected` gets a symbolic time axis; when `expected` lists the CRF's
    outputs, the graph is `CRFGraph(net)`."""
    net.eval()
    n_features = expected[input_name][2] if len(expected[input_name]) == 3 else 0
    with_crf = contract.TRANSITIONS in expected
    graph = CRFGraph(net).eval() if with_crf else net  # eval: export restores its mode
    output_names = [output_name, *contract.CRF_OUTPUTS] if with_crf else [output_name]
    per_step = contract.is_per_step(expected[output_name])
    x, lengths = example_inputs(input_name, int(n_features))
    with outputs.atomic_path(path) as tmp, warnings.catch_warnings(), torch.no_grad():
        # The TorchScript exporter, not torch.export (dynamo=True): torch.export specialises
        # nn.LSTM's time dim to the example's and fails on a dynamic `time`. The warnings are
        # its deprecation notice and an h0-batch note that the batch-1 parity check covers.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            graph,
            (x, lengths),
            str(tmp),
            input_names=[input_name, contract.LENGTHS],
            output_names=output_names,
            dynamic_axes=contract.dynamic_axes(input_name, output_name, per_step=per_step),
            opset_version=opset,
            do_constant_folding=True,
            dynamo=False,
        )
        model = onnx.load(str(tmp))
        contract.check_graph(model, expected)
        onnx.checker.check_model(model, full_check=True)


#: Steps per step-graph call in the streaming parity check; 0: each sequence whole, one call.
STREAM_CHUNKS = (1, 7, 0)


def step_expected(
    full: dict[str, list[str | int]], step: StepNet, output_name: str
) -> dict[str, list[str | int]]:
    """The step graph's contract (`onnx_contract.step_shapes`) for the full graph `full`."""
    first = next(iter(full))
    width = int(full[first][2]) if len(full[first]) == 3 else 0
    return contract.step_shapes(
        first,
        width if first == contract.INPUT else 0,
        output_name,
        int(full[output_name][-1]),
        step.state_shapes(),
        token_width=width if first == contract.TOKENS else 0,
    )


def export_step(
    net: nn.Module, path: Path, opset: int, output_name: str, full: dict[str, list[str | int]]
) -> None:
    """Write `net`'s streaming step graph (`StepNet`) to `path` in eval mode and check the
    written graph against the step contract of the full graph `full` (symbolic batch and time,
    the states' fixed dims). Raises NotStreamable when `net` cannot stream."""
    step = StepNet(net).eval()
    input_name = next(iter(full))
    expected = step_expected(full, step, output_name)
    n_inputs = contract.step_inputs(expected, output_name)
    names = list(expected)
    width = int(full[input_name][2]) if len(full[input_name]) == 3 else 0
    x, _ = example_inputs(input_name, width)
    # Random positive states (a step count, a weight sum), not zeros or the initial floor:
    # nothing may fold them into constants.
    states = [torch.rand_like(s) + 0.5 for s in step.initial_state(x.shape[0])]
    with outputs.atomic_path(path) as tmp, warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(
            step,
            (x, *states),
            str(tmp),
            input_names=names[:n_inputs],
            output_names=names[n_inputs:],
            dynamic_axes=contract.step_axes(input_name, output_name, list(step.state_shapes())),
            opset_version=opset,
            do_constant_folding=True,
            dynamo=False,
        )
        model = onnx.load(str(tmp))
        contract.check_graph(model, expected, n_inputs)
        onnx.checker.check_model(model, full_check=True)


def check_streaming(
    predictor: Predictor,
    batches: list[tuple[np.ndarray, np.ndarray]],
    tolerance: contract.Tolerance,
    chunks: tuple[int, ...] = STREAM_CHUNKS,
) -> StreamingReport:
    """The step graph fed `batches` `chunks` steps at a time (the state carried) against the
    full graph on the whole padded batch: every step's output of a per-step model, the last
    step's of a pooled one (the full graph's answer). Passed when every output is within
    `tolerance` (NaN never is)."""
    stepper = predictor.stepper
    assert stepper is not None
    worst, ratio, shapes = 0.0, 0.0, []
    for x, lengths in batches:
        expected = predictor.run(x, lengths)
        for chunk in chunks:
            got, _ = stream_chunks(stepper, x, lengths, chunk, stepper.layout.zeros(len(x)))
            if not predictor.per_step:
                got = got[np.arange(len(x)), lengths - 1]  # (B, C)
            ratio = max(ratio, tolerance.ratio(got, expected))
            diff = np.abs(got - expected) if got.shape == expected.shape else np.array([np.inf])
            worst = max(worst, float(np.nan_to_num(diff, nan=np.inf).max()))
        shapes.append([int(x.shape[0]), int(x.shape[1])])
    return StreamingReport(
        available=True,
        file=contract.STEP_FILE,
        fingerprint=stepper.layout.model,
        chunk_sizes=list(chunks),
        shapes_checked=shapes,
        max_abs_diff=worst,
        atol=tolerance.atol,
        rtol=tolerance.rtol,
        worst_ratio=ratio,
        passed=ratio <= 1.0,
    )


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
    predictor: Predictor,
    batches: list[tuple[np.ndarray, np.ndarray]],
    atol: float,
    task: ServeTask,
    rtol: float = 0.0,
) -> Parity:
    """ONNX Runtime against PyTorch on `batches`: max |ONNX - PyTorch|, the worst share of
    the tolerance `atol + rtol * |PyTorch|` used and, for classifiers, decision agreement
    (None for numbers); `passed` when every output is within the tolerance (NaN never is)
    and every decision agrees."""
    net.eval()
    tolerance = contract.Tolerance(atol, rtol)
    worst, ratio, total, shapes = 0.0, 0.0, 0, []
    agreed: int | None = 0
    for x, lengths in batches:
        expected = net(torch.from_numpy(x), torch.from_numpy(lengths)).numpy()
        got = predictor.run(x, lengths)
        ratio = max(ratio, tolerance.ratio(got, expected))
        if got.shape == expected.shape:
            worst = max(worst, float(np.nan_to_num(np.abs(got - expected), nan=np.inf).max()))
        else:
            worst = float("inf")
        agree = task.agreement(got, expected) if got.shape == expected.shape else 0
        agreed = None if agree is None or agreed is None else agreed + agree
        total += len(x)
        shapes.append([int(x.shape[0]), int(x.shape[1])])
    agreement = None if agreed is None else agreed / total
    return Parity(
        max_abs_diff=worst,
        argmax_agreement=agreement,
        atol=atol,
        rtol=rtol,
        worst_ratio=ratio,
        shapes_checked=shapes,
        passed=ratio <= 1.0 and agreement in (1.0, None),
    )


def quantize_int8(cell: str, fp32_path: Path, int8_path: Path) -> str | None:
    """Dynamic int8 quantization of an LSTM or transformer model (`QUANTIZED_OPS`); returns
    why not when unsupported."""
    op = contract.QUANTIZED_OPS.get(cell)
    if op is None:
        return (
            f"onnxruntime dynamic quantization has no quantized {cell.upper()} kernel "
            f"(it covers LSTM via {contract.QUANTIZED_LSTM_OP}); the model stays fp32"
        )
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with outputs.atomic_path(int8_path) as tmp:
        quantize_dynamic(fp32_path, tmp, weight_type=QuantType.QInt8)
        # Quantization silently leaves an LSTM in float when its weights are not constant
        # initializers; an "int8" model without the op would be a lie.
        if not contract.has_op(onnx.load(str(tmp)), op):
            raise ExportError(
                f"{int8_path}: quantization produced no {op} node "
                "(were the weights exported as constant initializers?)"
            )
    return None


def make_bundle(
    meta: DataMeta,
    task: ServeTask,
    data: DataConfig,
    max_length: int,
    extra_outputs: tuple[str, ...] = (),
) -> Bundle:
    """prepare's metadata plus what the predictor needs to read raw request rows;
    `extra_outputs` are the graph's outputs after the task's (a CRF's, `crf_outputs`)."""
    if max_length < meta.max_train_length:
        raise ExportError(
            f"export.max_length = {max_length} is below the longest training sequence "
            f"({meta.max_train_length} steps); raise it"
        )
    per_step = contract.is_per_step(task.output_shape(meta))
    axes = contract.dynamic_axes(meta.input, task.output, per_step=per_step)
    return Bundle(
        data=meta,
        id_column=data.id_column,
        time_column=data.time_column,
        max_length=max_length,
        onnx=OnnxIO(
            inputs=[meta.input, contract.LENGTHS],
            outputs=[task.output, *extra_outputs],
            dynamic_axes={
                name: {str(i): d for i, d in dims.items()} for name, dims in axes.items()
            },
        ),
    )


#: The steps after which export SIGKILLs itself when `SEQOPS_KILL_AT` names one (kill tests):
#: the ONNX model written to the staging directory, every check passed, the swap half done.
EXPORT_STEPS = ("written", "checked", "swapping")
#: Name prefix of the staging directories export builds a bundle in, inside `models/`.
STAGING_PREFIX = ".export-"


def seal_bundle(directory: Path, bundle: Bundle) -> Bundle:
    """Record the sha256 of the bundle's files in `directory` (`model.onnx`, the int8 model if
    there is one, the task's bundle files) in its `preprocessing.json`, then of all of them,
    `preprocessing.json` included, in the integrity record `bundle.sha256`, written last;
    returns the sealed bundle. The predictor serves only files matching these digests."""
    names = [
        contract.MODEL_FILE,
        contract.INT8_FILE,
        contract.STEP_FILE,
        *get_serve(bundle.data.task).bundle_files(bundle.data),
    ]
    digests = {n: outputs.sha256(directory / n) for n in names if (directory / n).is_file()}
    sealed = bundle.model_copy(update={"sha256": digests})
    sealed.write(directory / contract.PREPROCESSING_FILE)
    record_digests(directory, [*digests, contract.PREPROCESSING_FILE])
    return sealed


def record_digests(directory: Path, names: list[str]) -> Path:
    """Write the integrity record `directory/bundle.sha256`: one `<sha256>  <name>` line per
    file of `names` (what `sha256sum` writes and `sha256sum -c` checks)."""
    lines = [f"{outputs.sha256(directory / name)}  {name}\n" for name in sorted(names)]
    return outputs.write_text(directory / contract.DIGESTS_FILE, "".join(lines))


def publish_bundle(staging: Path, models: Path) -> None:
    """Move the checked bundle in `staging` into `models`, file by file (`os.replace`).

    The old integrity record and `preprocessing.json` go first, and the new ones, holding
    the digests of the others, last: a kill in between leaves a bundle the predictor refuses
    (no record, or files not matching it), never one it would serve unchecked. A stale int8
    model or step graph the new bundle lacks is deleted."""
    last = (contract.PREPROCESSING_FILE, contract.DIGESTS_FILE)
    outputs.remove(*(models / name for name in reversed(last)))
    for optional in (contract.INT8_FILE, contract.STEP_FILE):
        if not (staging / optional).exists():
            outputs.remove(models / optional)
    others = {p.name for p in staging.iterdir()} - {contract.MODEL_FILE, *last}
    os.replace(staging / contract.MODEL_FILE, models / contract.MODEL_FILE)
    outputs.kill_point("swapping")
    for name in [*sorted(others), *last]:
        os.replace(staging / name, models / name)


def export_bundle(
    checkpoint: Path,
    processed: Path,
    models: Path,
    cfg: ExportConfig,
    data: DataConfig,
    metrics: MetricsReport | None = None,
) -> tuple[ExportReport, pd.DataFrame]:
    """Build the bundle in a staging directory inside `models`, check it, then move it into
    `models` (`publish_bundle`): all or nothing. Returns the export report (raises on failed
    parity or served checks) and two raw test requests, the MLflow model's input example.

    A failure removes the staging directory; one a kill left is removed by the next export."""
    models.mkdir(parents=True, exist_ok=True)
    outputs.remove(*models.glob(f"{STAGING_PREFIX}*"))
    staging = outputs.make_temp_dir(models, STAGING_PREFIX)
    try:
        report, example = build_bundle(checkpoint, processed, staging, cfg, data, metrics)
        outputs.kill_point("checked")
        publish_bundle(staging, models)
    finally:
        outputs.remove(staging)
    return report, example


def build_bundle(
    checkpoint: Path,
    processed: Path,
    directory: Path,
    cfg: ExportConfig,
    data: DataConfig,
    metrics: MetricsReport | None = None,
) -> tuple[ExportReport, pd.DataFrame]:
    """Write and check the bundle in `directory` (an empty staging directory): graph
    contract, parity, the task's served path, int8, then the files' digests, and the sealed
    bundle loaded back as `seqops predict` loads it. `metrics` (evaluate's report) adds what
    evaluate calibrated to the bundle's metadata (`Task.calibrated_meta`: forecast intervals),
    so the integrity record covers it like the rest of `preprocessing.json`."""
    net, hparams = load_network(checkpoint)
    meta = read_meta(processed / contract.PREPROCESSING_FILE)
    task = get_serve(meta.task)
    if metrics is not None:
        meta = task.calibrated_meta(meta, metrics)
    test = SequenceSet.load(processed / split_file("test"))

    extra = crf_outputs(net)
    bundle = make_bundle(meta, task, data, cfg.max_length, tuple(extra))
    files = {}
    for name in task.bundle_files(meta):
        shutil.copyfile(processed / name, directory / name)
        files[name] = directory / name
    fp32_path = directory / contract.MODEL_FILE
    int8_path = directory / contract.INT8_FILE
    expected = contract.expected_shapes(
        meta.input,
        len(meta.feature_names),
        task.output,
        task.output_shape(meta),
        extra,
        token_width=contract.token_width(meta.input, meta.feature_names),
    )
    export_onnx(net, fp32_path, cfg.opset, meta.input, task.output, expected)
    no_stream = streaming_reason(net)
    step_path = directory / contract.STEP_FILE
    if no_stream is None:
        export_step(net, step_path, cfg.opset, task.output, expected)
    outputs.kill_point("written")

    fp32 = Predictor(fp32_path, bundle, files, step_file=None if no_stream else step_path)
    batches = parity_batches(test, cfg.parity_batch_sizes, cfg.max_length)
    parity = check_parity(net, fp32, batches, cfg.parity_atol, task, cfg.parity_rtol)
    if not parity.passed:
        agreement = parity.argmax_agreement
        raise ExportError(
            f"ONNX Runtime disagrees with PyTorch: max |output diff| "
            f"{parity.max_abs_diff:.3g}, {parity.worst_ratio:.3g} times the tolerance "
            f"(atol {cfg.parity_atol:g} + rtol {cfg.parity_rtol:g} × |output|)"
            + (f", argmax agreement {agreement:.2%}" if agreement is not None else "")
            + f" over shapes {parity.shapes_checked}"
        )
    tolerance = contract.Tolerance(cfg.parity_atol, cfg.parity_rtol)
    streaming = (
        StreamingReport(available=False, reason=no_stream)
        if no_stream
        else check_streaming(fp32, batches, tolerance)
    )
    if streaming.available and not streaming.passed:
        raise ExportError(
            f"the streaming step graph disagrees with the full graph: max |output diff| "
            f"{streaming.max_abs_diff:.3g}, {streaming.worst_ratio:.3g} times the tolerance "
            f"(atol {cfg.parity_atol:g} + rtol {cfg.parity_rtol:g} × |output|) fed "
            f"{streaming.chunk_sizes} steps at a time (0: whole) over shapes "
            f"{streaming.shapes_checked}"
        )
    if streaming.available:
        streaming = streaming.model_copy(
            update={
                "dynamic_axes": {
                    name: {str(i): d for i, d in enumerate(dims) if isinstance(d, str)}
                    for name, dims in contract.graph_shapes(onnx.load(str(step_path))).items()
                }
            }
        )
    served = task.served_checks(net, fp32, processed, tolerance)
    fp32_quality = task.quality(fp32, processed)
    cell = hparams["network"]["cell"]
    reason = (
        quantize_int8(cell, fp32_path, int8_path) if cfg.quantize else "disabled by export.quantize"
    )
    if reason is None:
        int8_quality = task.quality(Predictor(int8_path, bundle, files), processed)
        drop = int8_quality.value - fp32_quality.value
        int8 = Int8Report(
            available=True,
            op=contract.QUANTIZED_OPS[cell],
            metric=fp32_quality.metric,
            fp32=fp32_quality.value,
            int8=int8_quality.value,
            drop=drop if fp32_quality.lower_is_better else -drop,
        )
    else:
        int8 = Int8Report(
            available=False, reason=reason, metric=fp32_quality.metric, fp32=fp32_quality.value
        )
    report = ExportReport(
        opset=cfg.opset,
        # Read back from the written graph: what it declares, not what was asked for.
        dynamic_axes={
            name: {str(i): d for i, d in enumerate(dims) if isinstance(d, str)}
            for name, dims in contract.graph_shapes(onnx.load(str(fp32_path))).items()
        },
        parity=parity,
        served=served,
        int8=int8,
        streaming=streaming,
    )
    bundle = seal_bundle(directory, bundle)
    # What `seqops predict` will load, through its own loader (digests checked).
    Predictor.load(directory)
    if reason is None:
        Predictor.load(directory, int8=True)
    return report, task.request_example(processed, bundle, n=2)


def artifacts(models: Path, meta: Any) -> dict[str, str]:
    """The bundle's files as MLflow artifacts, as `pyfunc_serving.OnnxSequenceModel` reads them."""
    from seqops.serving import artifact_key

    found = {
        "model": str(models / contract.MODEL_FILE),
        "preprocessing": str(models / contract.PREPROCESSING_FILE),
        artifact_key(contract.DIGESTS_FILE): str(models / contract.DIGESTS_FILE),
    }
    if (models / contract.STEP_FILE).is_file():
        found[artifact_key(contract.STEP_FILE)] = str(models / contract.STEP_FILE)
    for name in get_serve(meta.task).bundle_files(meta):
        found[artifact_key(name)] = str(models / name)
    return found
