"""Promotion: `champion` moves only to the committed model, judged now against the champion now.

    promote(cfg.release, layout, experiment_id, render_card)     # seqops promote
    rollback(cfg.release)                                         # seqops release --rollback

`reports/release.json` says which registered version the workspace's model is; its verdict is
not trusted, as it may have been judged against another champion or other release params.
`promote` refuses, each with its own exit status (the CLI's docstring lists them), checked in
this order:

- 4 (`lockfile.NotCommitted`): `models/model.onnx`, `models/preprocessing.json` or a report the
  gate reads is not the file `dvc.lock` at HEAD records, or was made under params that
  `params.yaml` no longer holds (`lockfile.StaleReport`, naming the stale files), or
  `data/processed/` is not the data `reports/data.json` describes;
- 6 (`registry.RegistryMismatch`): the registered version's recorded sha256 is not that of
  `models/model.onnx`, or the registry's copy of the file is not the recorded one;
- 5 (`RolledBack`): the version was rolled back, unless `allow_rolled_back`;
- 3 (`gate.GateFailed`): the gate, run again now against today's champion (the same checks as
  the release stage, the paired test on both registered bundles on the same test examples),
  failed.

Each judgement is recorded (`registry.record_verdict`), a refused one too. The order of a
promotion makes a kill at any point safe: the records (the verdict it is promoted under in the
version's `promoted.*` tags, the model card in its training run) are complete before anything
moves; an intent tag is written; `champion` moves (the alias serving reads, one call);
`previous-champion` follows; the tag goes. A later `promote`, `release` or rollback completes
an interrupted one from the tag.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from seqops import onnx_contract as contract
from seqops.config import ReleaseConfig
from seqops.contracts import ReleaseReport
from seqops.errors import SeqopsError
from seqops.gate import GateFailed, params_digest
from seqops.layout import Layout
from seqops.lockfile import NotCommitted, verify_committed
from seqops.outputs import hash_dir, kill_point, sha256
from seqops.registry import (
    CHAMPION,
    ONNX_TAG,
    PREVIOUS,
    PROMOTED,
    PROMOTED_PARAMS,
    PROMOTED_VERDICT,
    PROMOTED_VS,
    PROMOTION_TAG,
    ROLLED_BACK,
    RegistryMismatch,
    Standing,
    Verdict,
    alias_version,
    finish_promotion,
    judge,
    record_verdict,
    recover_promotion,
    standing,
)
from seqops.tasks import read_data_report

#: The steps after which `promote` SIGKILLs itself when `SEQOPS_KILL_AT` names one (kill tests).
PROMOTION_STEPS = ("records", "intent", "champion", "previous")

#: Where `dvc.lock` records the files promotion reads: the export stage's outputs (the bundle)
#: and the release stage's inputs (the model and the reports its gate reads).
LOCK_RECORDS = (("export", "outs"), ("release", "deps"))

#: Renders the model card of a verdict and the standing it gives the version.
CardRenderer = Callable[[Verdict, Standing], str]


class RolledBack(SeqopsError):
    """The candidate is a version `seqops release --rollback` demoted."""

    exit_code = 5


def gate_inputs(layout: Layout) -> list[Path]:
    """The workspace files a promotion judges: the bundle and the reports the gate reads."""
    return [
        layout.models / contract.MODEL_FILE,
        layout.models / contract.PREPROCESSING_FILE,
        layout.data_report,
        layout.metrics,
        layout.predictions,
        layout.export_report,
        layout.latency_report,
    ]


def check_committed(layout: Layout) -> None:
    """NotCommitted unless the files promotion judges are the ones `dvc.lock` at HEAD records
    and the test examples are those `reports/data.json` describes."""
    verify_committed(
        layout.root, [f.relative_to(layout.root) for f in gate_inputs(layout)], LOCK_RECORDS
    )
    data = read_data_report(layout.data_report)
    if not layout.processed.is_dir() or hash_dir(layout.processed) != data.data_hash:
        raise NotCommitted(
            f"{layout.processed} is not the data {layout.data_report} describes (data hash "
            f"{data.data_hash[:16]}): `dvc checkout` restores the committed one"
        )


def registered_candidate(client: Any, cfg: ReleaseConfig, layout: Layout) -> Any:
    """The registered version `reports/release.json` names, if it records the sha256 of the
    workspace's `models/model.onnx` (RegistryMismatch otherwise)."""
    from mlflow.exceptions import MlflowException

    report = ReleaseReport.read(layout.release_report)
    if report.model_name != cfg.model_name:
        raise SeqopsError(
            f"{layout.release_report} is about {report.model_name!r}, release.model_name is "
            f"{cfg.model_name!r}: run `dvc repro` first"
        )
    name, number = cfg.model_name, str(report.version)
    try:
        version = client.get_model_version(name, number)
    except MlflowException:
        raise RegistryMismatch(
            f"{name} v{number} ({layout.release_report}) is not in this registry: run "
            "`seqops release` against it first"
        ) from None
    onnx_file = layout.models / contract.MODEL_FILE
    digest, recorded = sha256(onnx_file), version.tags.get(ONNX_TAG, "none")
    if digest != recorded:
        raise RegistryMismatch(
            f"{onnx_file} (sha256 {digest[:16]}) is not the file {name} v{number} records "
            f"(sha256 {recorded[:16]}): run `seqops release` against this registry first"
        )
    return version


def promote(
    cfg: ReleaseConfig,
    layout: Layout,
    experiment_id: str,
    render_card: CardRenderer,
    *,
    allow_rolled_back: bool = False,
    dry_run: bool = False,
) -> dict[str, Any]:
    """Judge the workspace's committed model against today's champion and, if it passes, make
    it `champion` (with `dry_run`, judge only: nothing is recorded or moved). Returns what
    happened, the verdict and the model card to write into the workspace."""
    from mlflow import MlflowClient

    check_committed(layout)
    client = MlflowClient()
    name = cfg.model_name
    recovered = None if dry_run else recover_promotion(client, name)
    version = registered_candidate(client, cfg, layout)
    new = str(version.version)
    result: dict[str, Any] = {"model_name": name, "version": int(new), "recovered": recovered}
    champion = alias_version(client, name, CHAMPION)
    old = str(champion.version) if champion is not None else None
    if old == new:
        now = standing(client, name, new)
        workspace = Verdict(
            ReleaseReport.read(layout.release_report), params_digest(cfg), None, "release"
        )
        card = None if dry_run else render_card(workspace, now)
        return {**result, "champion": int(new), "changed": False, "card": card}
    rolled_back = version.tags.get(ROLLED_BACK) == "true"
    if rolled_back and not allow_rolled_back:
        raise RolledBack(
            f"{name} v{new} was rolled back; `seqops promote --allow-rolled-back` promotes it "
            f"again (champion {f'v{old}' if old else 'unset'} unchanged)"
        )
    report = judge(client, cfg, layout, version, champion)
    failed = [n for n, c in report.checks.items() if not c.passed]
    against = f"champion v{old}" if old else "no champion"
    refusal = (
        f"gate failed against {against} ({', '.join(failed)}): {name} v{new} is not promoted; "
        "champion unchanged"
    )
    if dry_run:
        if failed:
            raise GateFailed(refusal)
        return {**result, "champion": int(old) if old else None, "changed": False,
                "would_promote": True, "report": report, "card": None}  # fmt: skip
    extra = {"seqops.gate.allowed_rolled_back": "true"} if rolled_back else None
    verdict = record_verdict(client, experiment_id, cfg, report, "promote", extra)
    if failed:
        raise GateFailed(f"{refusal} (record {verdict.record})")

    aliases = tuple(sorted(({*version.aliases} - {PREVIOUS}) | {CHAMPION}))
    card = render_card(verdict, Standing(aliases, verdict))
    if version.run_id:  # the promoted card beside the trained model; no metric is added
        client.log_text(version.run_id, card, layout.model_card.name)
        client.set_tag(version.run_id, "seqops.promoted", "true")
    for key, value in (
        (PROMOTED_VERDICT, str(verdict.record)),
        (PROMOTED_VS, old or "none"),
        (PROMOTED_PARAMS, verdict.params),
        (PROMOTED, "true"),
    ):
        client.set_model_version_tag(name, new, key, value)
    kill_point("records")
    moved = alias_version(client, name, CHAMPION)
    if (str(moved.version) if moved is not None else None) != old:
        raise SeqopsError(
            f"{name}: 'champion' moved while v{new} was judged; run `seqops promote` again"
        )
    client.set_registered_model_tag(name, PROMOTION_TAG, f"{old or ''}>{new}")
    kill_point("intent")
    finish_promotion(client, name, old, new)
    return {
        **result,
        "champion": int(new),
        "previous_champion": int(old) if old is not None else None,
        "changed": True,
        "verdict": verdict,
        "card": card,
    }


def rollback(cfg: ReleaseConfig) -> dict[str, Any]:
    """Point `champion` back at `previous-champion`, a genuinely different model (another
    ONNX file); the demoted version is tagged `rolled_back`."""
    from mlflow import MlflowClient

    client = MlflowClient()
    recover_promotion(client, cfg.model_name)
    previous = alias_version(client, cfg.model_name, PREVIOUS)
    current = alias_version(client, cfg.model_name, CHAMPION)
    if previous is None:
        raise SeqopsError(
            f"{cfg.model_name}: no '{PREVIOUS}' alias to roll back to "
            f"(champion is {f'v{current.version}' if current else 'unset'})"
        )
    if current is not None and previous.tags.get(ONNX_TAG) == current.tags.get(ONNX_TAG):
        raise SeqopsError(
            f"{cfg.model_name}: '{PREVIOUS}' v{previous.version} is the same ONNX file as the "
            f"champion v{current.version}; nothing different to roll back to"
        )
    client.set_registered_model_alias(cfg.model_name, CHAMPION, previous.version)
    client.delete_registered_model_alias(cfg.model_name, PREVIOUS)
    if current is not None:
        client.set_model_version_tag(cfg.model_name, current.version, ROLLED_BACK, "true")
    return {
        "model_name": cfg.model_name,
        "champion": int(previous.version),
        "demoted": int(current.version) if current is not None else None,
    }
