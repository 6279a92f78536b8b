"""release: register the exported model and record the gate's verdict; promotion is separate.

    seqops release [--params params.yaml]     # the last stage of dvc.yaml
    seqops promote                            # champion <- this candidate, if its gate passed
    seqops release --rollback                 # champion <- previous-champion

The model logged by the export stage is registered under `release.model_name` (once per
distinct ONNX file) with alias `candidate`, and the gate (`seqops.registry`: quality, parity,
latency, no regression against the champion by the task's paired test, the task's own checks)
is run. The verdict goes to `reports/release.json` and `models/MODEL_CARD.md`; a failed gate
does not fail the stage, so `dvc exp run` keeps every experiment, and nothing here moves
`champion`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from seqops import outputs
from seqops.config import load_config, load_merged_config
from seqops.contracts import ReleaseReport
from seqops.layout import Layout
from seqops.registry import CANDIDATE, CHAMPION, PREVIOUS, promote, release, rollback


def main(
    params: str | Path = "params.yaml", layout: Layout | None = None, *, rollback_: bool = False
) -> ReleaseReport | dict[str, Any]:
    import mlflow

    from seqops import tracking
    from seqops.model_card import render_model_card

    layout = layout or Layout()
    cfg = load_config(params)
    tracking.use_tracking(cfg.tracking)
    if rollback_:
        result = rollback(cfg.release)
        print(
            f"release: rolled back {result['model_name']}: champion is v{result['champion']}"
            + (f" (v{result['demoted']} demoted)" if result["demoted"] else "")
        )
        return result
    report_file, card_file = layout.release_report, layout.model_card
    numbers = layout.stage_metrics("release")
    outputs.remove(report_file, card_file, numbers)
    report = release(cfg.release, layout)
    report.write(report_file, numbers)
    merged = load_merged_config(params, layout.best_params)
    flat = merged.to_flat_dict(("seed", "data", "model", "train"))
    outputs.write_text(card_file, render_model_card(layout, report, flat))
    with tracking.resume_run(layout.run_file):
        mlflow.log_artifact(str(report_file), "reports")
        mlflow.log_artifact(str(card_file))
        mlflow.log_metric("release/passed", float(report.passed))
    for name, check in report.checks.items():
        mark = "pass" if check.passed else "FAIL"
        print(f"  [{mark}] {name}: {check.value} (threshold {check.threshold}) {check.detail}")
    model = f"{cfg.release.model_name} v{report.version}"
    if report.passed:
        print(f"release: {model} passed the gate; `seqops promote` makes it '{CHAMPION}'")
    else:
        failed = [n for n, c in report.checks.items() if not c.passed]
        print(f"release: {model} failed the gate ({', '.join(failed)}); it stays '{CANDIDATE}'")
    return report


def promote_main(
    params: str | Path = "params.yaml", layout: Layout | None = None
) -> dict[str, Any]:
    """What `seqops promote` runs (not a DVC stage: promotion is a deliberate act)."""
    from seqops import tracking

    layout = layout or Layout()
    cfg = load_config(params)
    tracking.use_tracking(cfg.tracking)
    result = promote(cfg.release, layout)
    if result["recovered"]:
        print(f"promote: {result['recovered']}")
    if result["changed"]:
        previous = result["previous_champion"]
        print(
            f"promote: {result['model_name']} v{result['champion']} is now '{CHAMPION}'"
            + (f" (v{previous} is '{PREVIOUS}')" if previous is not None else "")
        )
    else:
        print(f"promote: {result['model_name']} v{result['champion']} already is '{CHAMPION}'")
    return result
