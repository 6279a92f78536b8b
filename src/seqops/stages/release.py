"""release: register the exported model and record the gate's verdict; promotion is separate.

    seqops release [--params params.yaml]     # the last stage of dvc.yaml
    seqops promote [--allow-rolled-back] [--dry-run]   # champion <- the committed model, judged now
    seqops release --rollback                 # champion <- previous-champion

The model logged by the export stage is registered under `release.model_name` (once per
distinct ONNX file) with alias `candidate` (unless it is the champion's file), and the gate
(`seqops.gate`: quality, parity, latency, the classical baselines, the task's own checks, no
regression against the champion by the task's paired test) is run. The verdict goes to
`reports/release.json`, `models/MODEL_CARD.md` and its own MLflow run (`seqops.registry`); a
failed gate does not fail the stage, so `dvc exp run` keeps every experiment, and nothing here
moves `champion` or writes to a version that is or was champion.

`seqops promote` (`seqops.promotion`) judges the committed model again against the champion of
that moment, moves `champion` if it passes, and rewrites `models/MODEL_CARD.md` to say so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from seqops import outputs
from seqops.config import load_config, load_merged_config
from seqops.contracts import ReleaseReport
from seqops.errors import SeqopsError
from seqops.gate import params_digest
from seqops.layout import Layout
from seqops.promotion import promote, rollback
from seqops.registry import CANDIDATE, CHAMPION, PREVIOUS, Standing, Verdict, release, standing


def _experiment_id(cfg: Any) -> str:
    """The experiment `tracking.use_tracking` selected (gate records go there)."""
    import mlflow

    experiment = mlflow.get_experiment_by_name(cfg.tracking.experiment)
    assert experiment is not None, cfg.tracking.experiment  # use_tracking created it
    return str(experiment.experiment_id)


def _card_renderer(params: str | Path, layout: Layout) -> Any:
    from seqops.model_card import render_model_card

    merged = load_merged_config(params, layout.best_params)
    flat = merged.to_flat_dict(("seed", "data", "model", "train"))

    def render(verdict: Verdict, found: Standing) -> str:
        return render_model_card(layout, verdict, flat, found)

    return render


def _refresh_card(params: str | Path, layout: Layout, cfg: Any, versions: set[int]) -> None:
    """After a rollback: rewrite the workspace's card when its model is one of `versions`, so
    it says what the registry now says."""
    from mlflow import MlflowClient

    if not layout.release_report.is_file():
        return
    report = ReleaseReport.read(layout.release_report)
    if report.model_name != cfg.release.model_name or report.version not in versions:
        return
    now = standing(MlflowClient(), report.model_name, report.version)
    verdict = Verdict(report, params_digest(cfg.release), None, "release")
    outputs.write_text(layout.model_card, _card_renderer(params, layout)(verdict, now))


def _baseline_sentences(cfg: Any, layout: Layout) -> list[str]:
    """The classical baselines that scored better than the model on test, in words (whether
    or not the gate checks them: `release.baseline_alpha` may be null)."""
    from seqops.gate import baseline_sentences, paired_baselines
    from seqops.tasks import read_metrics

    scores = paired_baselines(read_metrics(layout.metrics), layout.predictions)
    return [] if scores is None else baseline_sentences(scores, cfg.release.baseline_alpha)


def main(
    params: str | Path = "params.yaml", layout: Layout | None = None, *, rollback_: bool = False
) -> ReleaseReport | dict[str, Any]:
    from seqops import tracking

    layout = layout or Layout()
    cfg = load_config(params)
    tracking.use_tracking(cfg.tracking)
    if rollback_:
        result = rollback(cfg.release)
        print(
            f"release: rolled back {result['model_name']}: champion is v{result['champion']}"
            + (f" (v{result['demoted']} demoted)" if result["demoted"] else "")
        )
        try:
            _refresh_card(params, layout, cfg, {result["champion"], result["demoted"]})
        except SeqopsError as exc:  # the rollback stands; only the workspace card is stale
            print(f"release: {layout.model_card} not rewritten: {exc}")
        return result
    report_file, card_file = layout.release_report, layout.model_card
    numbers = layout.stage_metrics("release")
    outputs.remove(report_file, card_file, numbers)
    verdict, found = release(cfg.release, layout, _experiment_id(cfg))
    report = verdict.report
    report.write(report_file, numbers)
    outputs.write_text(card_file, _card_renderer(params, layout)(verdict, found))
    for name, check in report.checks.items():
        mark = "pass" if check.passed else "FAIL"
        print(f"  [{mark}] {name}: {check.value} (threshold {check.threshold}) {check.detail}")
    for sentence in _baseline_sentences(cfg, layout):
        print(f"release: {sentence}")
    model = f"{cfg.release.model_name} v{report.version}"
    outcome = "passed" if report.passed else "failed"
    print(f"release: {model} {outcome} the gate against {verdict.against} ({verdict.record})")
    if CHAMPION in found.aliases:
        print(
            f"release: {model} is '{CHAMPION}'; this evaluation changes neither the champion nor "
            "the verdict it was promoted under"
        )
    elif report.passed:
        print(f"release: `seqops promote` judges it again against today's '{CHAMPION}'")
    else:
        failed = [n for n, c in report.checks.items() if not c.passed]
        print(f"release: failed checks: {', '.join(failed)}; it stays '{CANDIDATE}'")
    return report


def promote_main(
    params: str | Path = "params.yaml",
    layout: Layout | None = None,
    *,
    allow_rolled_back: bool = False,
    dry_run: bool = False,
) -> dict[str, Any]:
    """What `seqops promote` runs (not a DVC stage: promotion is a deliberate act)."""
    from seqops import tracking

    layout = layout or Layout()
    cfg = load_config(params)
    tracking.use_tracking(cfg.tracking)
    result = promote(
        cfg.release,
        layout,
        _experiment_id(cfg),
        _card_renderer(params, layout),
        allow_rolled_back=allow_rolled_back,
        dry_run=dry_run,
    )
    model = f"{result['model_name']} v{result['version']}"
    if result["recovered"]:
        print(f"promote: {result['recovered']}")
    if dry_run:
        if result.get("would_promote"):
            print(f"promote: dry run: {model} passes the gate against today's champion")
        else:
            print(f"promote: dry run: {model} already is '{CHAMPION}'")
        return result
    if result["card"] is not None:
        outputs.write_text(layout.model_card, result["card"])
    if result["changed"]:
        previous = result["previous_champion"]
        verdict = result["verdict"]
        print(
            f"promote: {model} is now '{CHAMPION}', judged against {verdict.against} "
            f"(record {verdict.record})"
            + (f"; v{previous} is '{PREVIOUS}'" if previous is not None else "")
        )
    else:
        print(f"promote: {model} already is '{CHAMPION}'")
    return result
