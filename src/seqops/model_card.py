"""The model card `models/MODEL_CARD.md`, generated from the pipeline's reports and lineage.

    render_model_card(Layout(), verdict, merged_params, standing) -> markdown

Sections: data, params (merged), tuning, test metrics with 95 % confidence intervals, the
classical baseline(s) with the model's difference and its interval, ONNX parity, latency,
int8, the release gate, intended use and limits, lineage. The task-specific parts (inputs,
targets, the data paragraph, the metrics section, intended use) come from the task's card
part (`seqops.tasks.parts.card`: `CardTask.card_*`), which no stage before release imports.

The status line and the gate come from the registry (`registry.Standing`), so card and
registry agree: a champion's card shows the verdict it was promoted under; an evaluation that
judged it again (other release params, another champion) is shown beside it as what it is, a
record that changes neither the champion nor that verdict.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from seqops.config import read_yaml
from seqops.contracts import (
    ExportReport,
    LatencyReport,
    ReleaseReport,
    RunInfo,
    TrainReport,
    TuneReport,
    choice_lines,
)
from seqops.gate import baseline_sentences
from seqops.layout import Layout
from seqops.lockfile import verify_fresh
from seqops.markdown import fmt, table
from seqops.tasks import read_data_report, read_metrics
from seqops.tasks.parts.card import baseline_card_lines, get_card
from seqops.tasks.parts.release import get_release

if TYPE_CHECKING:
    from seqops.registry import Standing, Verdict


def status_line(verdict: Verdict, standing: Standing) -> str:
    """The card's status, as the registry has it."""
    promoted = standing.promoted
    if "champion" in standing.aliases:
        if promoted is None:
            return "champion"
        return (
            f"champion, promoted under the verdict below (judged against {promoted.against} "
            f"with release params `{promoted.params}`)"
        )
    if standing.rolled_back:
        return "rolled back (`seqops promote --allow-rolled-back` would judge it again)"
    if "previous-champion" in standing.aliases:
        return "previous-champion (`seqops release --rollback` makes it champion again)"
    if promoted is not None:
        return "formerly champion"
    if verdict.report.passed:
        return (
            f"candidate, passed the release gate against {verdict.against} (`seqops promote` "
            "judges it again against the champion of that moment)"
        )
    return f"candidate, failed the release gate against {verdict.against}"


def gate_table(release: ReleaseReport) -> str:
    return table(
        ("check", "value", "threshold", "passed", "detail"),
        [
            (n, fmt(c.value), fmt(c.threshold), "yes" if c.passed else "**no**", c.detail)
            for n, c in release.checks.items()
        ],
    )


def gate_lines(verdict: Verdict, standing: Standing) -> list[str]:
    """The release gate section: the verdict the version was promoted under when there is
    one, and `verdict` (this evaluation) beside it when it judged differently."""

    def record(v: Verdict) -> str:
        return f", record: MLflow run `{v.record}`" if v.record else ""

    promoted = standing.promoted
    if promoted is None:
        return [
            "## Release gate",
            "",
            f"Judged against {verdict.against} with release params `{verdict.params}` "
            f"(by `seqops {verdict.by}`{record(verdict)}): "
            f"**{'passed' if verdict.report.passed else 'failed'}**.",
            "",
            gate_table(verdict.report),
        ]
    out = [
        "## Release gate (the verdict it was promoted under)",
        "",
        f"Judged against {promoted.against} with release params `{promoted.params}` by "
        f"`seqops promote`{record(promoted)}: "
        f"**{'passed' if promoted.report.passed else 'failed'}**.",
        "",
        gate_table(promoted.report),
    ]
    if not verdict.same_judgement(promoted):
        out += [
            "",
            "### Latest evaluation (changes neither the champion nor the verdict above)",
            "",
            f"Judged again by `seqops {verdict.by}` against {verdict.against} with release "
            f"params `{verdict.params}`{record(verdict)}: "
            f"**{'passed' if verdict.report.passed else 'failed'}**.",
            "",
            gate_table(verdict.report),
        ]
    return out


def card_inputs(layout: Layout) -> list[Path]:
    """The files the card is made from, relative to the project root: it refuses to speak for
    a stale one (`lockfile.verify_fresh`: made under params `params.yaml` no longer holds)."""
    files = [layout.data_report, layout.tune_report, layout.train_report, layout.metrics,
             layout.predictions, layout.export_report, layout.latency_report, layout.run_file,
             layout.best_params]  # fmt: skip
    return [f.relative_to(layout.root) for f in files]


def _baseline_alpha(release: ReleaseReport) -> float | None:
    """The level the gate tested the baselines at, when it did."""
    check = release.checks.get("not_worse_than_baseline")
    threshold = check.threshold if check is not None else None
    return float(threshold) if isinstance(threshold, int | float) else None


def render_model_card(
    layout: Layout, verdict: Verdict, params: dict[str, Any], standing: Standing
) -> str:
    """Markdown for the version `verdict` judged, with the registry's `standing` of it;
    `params` are the merged, flattened train params."""
    verify_fresh(layout.root, card_inputs(layout))
    release = verdict.report
    data, metrics = read_data_report(layout.data_report), read_metrics(layout.metrics)
    export = ExportReport.read(layout.export_report)
    latency = LatencyReport.read(layout.latency_report)
    train, run = TrainReport.read(layout.train_report), RunInfo.read(layout.run_file)
    tune = TuneReport.read(layout.tune_report) if layout.tune_report.is_file() else None
    # Marked tuned: the searched paths (`tune.space`, the keys of best_params.yaml) when a
    # search ran; with tuning disabled that file holds the base values, nothing was chosen.
    searched = bool(tune and tune.study) and layout.best_params.is_file()
    tuned = set(read_yaml(layout.best_params) or {}) if searched else set()
    task = get_card(data.task)

    lineage = release.lineage  # the tags the registry version carries
    predictions = pd.read_csv(layout.predictions)
    name, version = release.model_name, release.version
    out = [
        f"# Model card: {name} v{version}",
        "",
        f"Status: **{status_line(verdict, standing)}**. Generated by `seqops {verdict.by}` "
        "from the pipeline's reports and the model registry.",
        "",
        "## Data",
        "",
        table(
            ("source", "data hash", "train", "val", "test", "inputs", "classes / targets"),
            [
                (
                    data.source,
                    f"`{data.data_hash[:16]}`",
                    data.n_train,
                    data.n_val,
                    data.n_test,
                    task.card_inputs(data),
                    task.card_targets(data),
                )
            ],
        ),
        "",
        task.card_data(data),
        "",
        "## Params (params.yaml with the tuner's best params merged; tuned ones marked *)",
        "",
        table(
            ("param", "value"),
            [
                (f"`{k}`" + (" *" if k in tuned else ""), fmt(v))
                for k, v in sorted(task.applicable(params).items())  # this task's params only
            ],
        ),
        "",
        f"Trained {train.epochs_run} epochs; best `{train.monitor}` {fmt(train.best_score)} at "
        f"epoch {train.best_epoch}; {train.n_parameters:,} parameters.",
        "",
        "## Tuning",
        "",
    ]
    if tune is not None and tune.study:
        out.append(
            f"Optuna study `{tune.study}`: {tune.n_trials} trials ({tune.complete} complete, "
            f"{tune.pruned} pruned, {tune.failed} failed), best `{tune.metric}` "
            f"{fmt(tune.best_value)} ({tune.direction}), {fmt(tune.wall_s)} s."
        )
        for line in choice_lines(tune.choice):
            out += ["", f"{line}."]
    else:
        out.append("Tuning disabled: the base params were used.")
    out += ["", "## Test metrics (95 % confidence intervals)", ""]
    out += task.card_metrics(metrics, predictions)
    if metrics.baseline:
        out += ["", "## Against the classical baseline", ""]
        scores = get_release(data.task).paired_scores(metrics, predictions)
        out += baseline_card_lines(scores)
        said = baseline_sentences(scores, _baseline_alpha(release))
        out += ["", " ".join(said)] if said else []
    out += ["", "## ONNX export and parity", ""]
    parity = export.parity
    agreement = parity.argmax_agreement
    out.append(
        table(
            ("opset", "max abs diff", "argmax agreement", "(batch × time) checked", "passed"),
            [
                (
                    export.opset,
                    fmt(parity.max_abs_diff),
                    "—" if agreement is None else f"{agreement:.2%}",
                    ", ".join(f"{b}×{t}" for b, t in parity.shapes_checked),
                    parity.passed,
                )
            ],
        )
    )
    out += ["", "## int8", ""]
    int8 = export.int8
    if int8.available:
        out.append(
            f"Dynamic int8 quantization (`{int8.op}` present): {int8.metric} {fmt(int8.int8)} "
            f"vs fp32 {fmt(int8.fp32)} (degradation {fmt(int8.drop)})."
        )
    else:
        out.append(f"Not available: {int8.reason or 'not reported'}.")
    out += ["", "## Latency (batch 1, ms; throughput in sequences/s)", ""]
    timed = {"torch": latency.torch, "onnx_fp32": latency.onnx_fp32, "onnx_int8": latency.onnx_int8}
    rows = [
        (r, fmt(v.p50_ms), fmt(v.p95_ms), fmt(v.p99_ms), fmt(v.throughput))
        for r, v in timed.items()
        if v is not None
    ]
    out.append(table(("runtime", "p50", "p95", "p99", "throughput"), rows))
    out += ["", f"ONNX fp32 is {latency.speedup_p50:.2f}× faster than PyTorch eager (p50)."]
    out += ["", *gate_lines(verdict, standing)]
    out += [
        "",
        "## Intended use and limits",
        "",
        task.card_use(data),
        "",
        "## Lineage",
        "",
        table(
            ("what", "value"),
            [
                (
                    "git commit",
                    f"`{lineage.get('git.commit', 'unknown')}`"
                    + (" (dirty)" if lineage.get("git.dirty") == "true" else ""),
                ),
                ("data hash", f"`{lineage.get('data.hash', '')}`"),
                ("ONNX sha256", f"`{lineage['onnx.sha256']}`"),
                ("MLflow run", f"`{run.run_id}`"),
                ("registered model", f"`{name}` v{version}"),
                ("Optuna study", f"`{lineage.get('optuna.study', '—')}`"),
                ("Optuna best trial", lineage.get("optuna.best_trial", "—")),
            ]
            + [
                (f"dvc.lock `{k.removeprefix('dvc.stage.')}`", f"`{v}`")
                for k, v in sorted(lineage.items())
                if k.startswith("dvc.stage.")
            ],
        ),
        "",
        "Verify a released file with `seqops lineage models/model.onnx`.",
        "",
    ]
    return "\n".join(out)
