"""release: register the exported model, run the gate, move the `champion` alias if it passes.

    seqops release [--params params.yaml]     # the last stage of dvc.yaml
    seqops release --rollback                 # champion <- previous-champion

The model logged by the export stage is registered under `release.model_name` with alias
`candidate`; the gate (`seqops.registry`: quality, parity, latency, no regression against
the champion by the task's paired test, the task's own checks) decides whether `champion`
moves. Any check fails: the stage exits non-zero and the champion is untouched. Either way
`reports/release.json` and `models/MODEL_CARD.md` are written and logged to MLflow.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from seqops import outputs
from seqops.config import load_config, load_merged_config
from seqops.contracts import ReleaseReport
from seqops.layout import Layout
from seqops.registry import CANDIDATE, CHAMPION, GateFailed, release, rollback


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
    outputs.remove(report_file, card_file)
    report = release(cfg.release, layout)
    report.write(report_file)
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
    if not report.passed:
        failed = [n for n, c in report.checks.items() if not c.passed]
        champion = f"v{report.champion}" if report.champion is not None else "none yet"
        raise GateFailed(
            f"gate failed ({', '.join(failed)}): {cfg.release.model_name} v{report.version} "
            f"stays '{CANDIDATE}'; champion unchanged ({champion})"
        )
    print(f"release: {cfg.release.model_name} v{report.version} is now '{CHAMPION}'")
    return report
