"""The MLflow Model Registry: registered versions, verdict records, standing, lineage.

    verdict, standing = release(cfg.release, layout, experiment_id)   # the release stage
    standing(client, "seqops", "3")          # its aliases, the verdict it was promoted under
    lineage(Path("models/model.onnx"), "seqops")

A model is registered once per distinct ONNX file (tag `onnx.sha256`), with aliases rather
than stages: `candidate`, `champion`, `previous-champion`. The gate itself is `seqops.gate`;
moving `champion` is `seqops.promotion`.

Each version also records the sha256 of the bundle's integrity record `bundle.sha256` (tag
`seqops.bundle_sha256`, the workspace's record when it was registered). That record names the
sha256 of every bundle file, so the tag pins the whole bundle: the gate, `seqops predict
--model models:/NAME/N` and MLflow's scoring server (`seqops.serving`) refuse a registered
bundle whose record is not that one, even when its files agree with the record it carries (an
artifact store rewritten consistently). Someone who can also rewrite the tag is not stopped.

Verdicts are records, not mutable tags. Each gate evaluation (by the release stage or by
`seqops promote`) is its own MLflow run (tag `seqops.stage=gate`), nested under the version's
training run without writing to it: the release params it was judged under (and their
digest), the champion it was compared with, `release/passed`, and the whole verdict as the
artifact `verdict/release.json`. A version never promoted also gets a tag
`gate.vs_<champion>.<params digest>` naming the run. Promotion records the verdict it promoted
under in the version's `promoted.*` tags, which only `promote` writes. So judging a version
again (a release-only experiment on the champion's ONNX file) adds a record and changes
nothing else: not the champion's tags, not its training run, not an alias; and `candidate`
never moves onto the champion's version.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from seqops import gate
from seqops import onnx_contract as contract
from seqops.config import ReleaseConfig, read_yaml
from seqops.contracts import CheckResult, ReleaseReport, TuneReport
from seqops.errors import SeqopsError
from seqops.layout import Layout
from seqops.outputs import kill_point, sha256
from seqops.tasks import read_data_report
from seqops.tasks.base import Check

CANDIDATE, CHAMPION, PREVIOUS = "candidate", "champion", "previous-champion"

#: Version tags. Lineage (`onnx.sha256`, `git.*`, `data.hash`, `dvc.*`, `optuna.*`) is written
#: once, at registration.
ONNX_TAG = "onnx.sha256"
BUNDLE_TAG = contract.DIGEST_TAG
ROLLED_BACK = "rolled_back"
#: Written by `promote` only: the verdict (gate run) a version was last promoted under, the
#: champion it replaced, the digest of the release params it was judged under.
PROMOTED = "promoted"
PROMOTED_VERDICT, PROMOTED_VS, PROMOTED_PARAMS = (
    "promoted.verdict",
    "promoted.vs",
    "promoted.params",
)
LINEAGE_PREFIXES = ("git.", "mlflow.source.git.", "data.hash", "dvc.", "onnx.", "optuna.")

#: A gate run's verdict artifact (a `ReleaseReport`) and its tags.
VERDICT_ARTIFACT = "verdict/release.json"
GATE_STAGE = "gate"

#: Registered-model tag holding a promotion in progress, `<old version or empty>><new version>`:
#: written before the aliases move and removed after, so an interrupted promotion is completed
#: by the next registry command instead of leaving the aliases half moved.
PROMOTION_TAG = "seqops.promotion"


class RegistryMismatch(SeqopsError):
    """The candidate's ONNX file is not the one its registered version records (or the
    registry's copy is not): promoting would serve a model nobody judged."""

    exit_code = 6


@dataclass(frozen=True)
class Verdict:
    """One gate evaluation: the checks against `report.champion` under the release params with
    digest `params`, recorded as gate run `record` by `by` (`release` or `promote`)."""

    report: ReleaseReport
    params: str
    record: str | None
    by: str

    @property
    def against(self) -> str:
        champion = self.report.champion
        return f"champion v{champion}" if champion is not None else "no champion yet"

    def same_judgement(self, other: Verdict) -> bool:
        """The same champion, release params and checks (records and aliases aside)."""
        return (self.report.champion, self.params, self.report.checks) == (
            other.report.champion,
            other.params,
            other.report.checks,
        )


@dataclass(frozen=True)
class Standing:
    """What the registry says about one version when its model card is written."""

    aliases: tuple[str, ...]
    promoted: Verdict | None = None
    """The verdict of its latest promotion, if it was ever promoted."""
    rolled_back: bool = False


def alias_version(client: Any, name: str, alias: str) -> Any | None:
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException:
        return None


def lineage_tags(layout: Layout) -> dict[str, str]:
    from seqops import tracking

    data = read_data_report(layout.data_report)
    tags = tracking.lineage_tags(layout.root, data.data_hash)
    tags[ONNX_TAG] = sha256(layout.models / contract.MODEL_FILE)
    record = layout.models / contract.DIGESTS_FILE
    if not record.is_file():
        raise SeqopsError(
            f"{record}: not found: the bundle has no integrity record (re-run `seqops export`)"
        )
    tags[BUNDLE_TAG] = sha256(record)
    if layout.tune_report.is_file():
        tune = TuneReport.read(layout.tune_report)
        for key, value in (
            ("study", tune.study),
            ("best_trial", tune.best_trial),
            ("parent_run_id", tune.parent_run_id),
        ):
            if value is not None:
                tags[f"optuna.{key}"] = str(value)
    return tags


def registered_lineage(version: Any) -> dict[str, str]:
    """The lineage tags a registered version carries (what made it), without verdict tags."""
    return {k: v for k, v in version.tags.items() if k.startswith(LINEAGE_PREFIXES)}


def find_version(client: Any, name: str, digest: str) -> Any | None:
    """The registered version of `name` whose ONNX file has sha256 `digest` (the first one)."""
    matches = [
        v
        for v in client.search_model_versions(f"name = '{name}'")
        if v.tags.get(ONNX_TAG) == digest
    ]
    return min(matches, key=lambda v: int(v.version)) if matches else None


def register(
    client: Any, cfg: ReleaseConfig, lineage: dict[str, str], model_uri: str, champion: Any | None
) -> Any:
    """The candidate's registry version: registered once per distinct ONNX file (a rerun on
    the same model reuses its version), tagged with its lineage, aliased `candidate` unless it
    is the champion's version (the champion judged again is no candidate). A version
    registered before versions recorded their bundle's digest is left without one: its
    registered artifacts may predate the record, so the workspace's digest cannot vouch for
    them (re-register the model to have it checked)."""
    from mlflow import register_model

    version = find_version(client, cfg.model_name, lineage[ONNX_TAG])
    if version is None:
        version = register_model(model_uri, cfg.model_name)
        for key, value in lineage.items():
            client.set_model_version_tag(cfg.model_name, version.version, key, value)
    if champion is None or str(champion.version) != str(version.version):
        client.set_registered_model_alias(cfg.model_name, CANDIDATE, version.version)
    return client.get_model_version(cfg.model_name, version.version)


def _bundle_onnx(model_dir: Path) -> Path:
    """The ONNX file inside a downloaded MLflow model of the bundle (its `model` artifact)."""
    try:
        flavor = read_yaml(model_dir / "MLmodel")["flavors"]["python_function"]
        return model_dir / flavor["artifacts"]["model"]["path"]
    except (SeqopsError, KeyError, TypeError):
        raise RegistryMismatch(f"{model_dir}: not an ONNX bundle logged by seqops") from None


@contextmanager
def _no_progress_bars() -> Iterator[None]:
    """MLflow draws a progress bar per download on stderr; a refusal is one line there."""
    key = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"
    before = os.environ.get(key)
    os.environ[key] = "false"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = before


def registered_copy(client: Any, name: str, version: Any, dst: Path) -> Path:
    """Download `version`'s registered bundle into `dst`; raise RegistryMismatch unless its
    ONNX file and its integrity record have the sha256 the version records."""
    from mlflow.artifacts import download_artifacts

    recorded = version.tags.get(ONNX_TAG)
    if not recorded:
        raise RegistryMismatch(f"{name} v{version.version} records no {ONNX_TAG}")
    uri = f"models:/{name}/{version.version}"
    with _no_progress_bars():
        local = Path(download_artifacts(artifact_uri=uri, dst_path=str(dst)))
    onnx_file = _bundle_onnx(local)
    found = sha256(onnx_file) if onnx_file.is_file() else "missing"
    if found != recorded:
        raise RegistryMismatch(
            f"{name} v{version.version}: the registry's {contract.MODEL_FILE} (sha256 "
            f"{found[:16]}) is not the file the version records (sha256 {recorded[:16]})"
        )
    bundle = version.tags.get(BUNDLE_TAG)
    if bundle:
        record = onnx_file.parent / contract.DIGESTS_FILE
        found = sha256(record) if record.is_file() else "missing"
        if found != bundle:
            raise RegistryMismatch(
                f"{name} v{version.version}: the registry's {contract.DIGESTS_FILE} (sha256 "
                f"{found[:16]}) is not the bundle the version records (sha256 {bundle[:16]})"
            )
    return local


def _regression(
    client: Any, cfg: ReleaseConfig, layout: Layout, candidate_dir: Path, champion: Any, tmp: Path
) -> Check:
    import mlflow

    try:
        champion_model = mlflow.pyfunc.load_model(
            str(registered_copy(client, cfg.model_name, champion, tmp / "champion"))
        )
    except Exception as exc:  # a missing, altered or unloadable champion cannot be compared
        return gate.cannot_compare(cfg, champion.version, f"cannot be loaded: {exc}")
    candidate_model = mlflow.pyfunc.load_model(str(candidate_dir))
    return gate.against_champion(cfg, layout, candidate_model, champion_model, champion.version)


def judge(
    client: Any, cfg: ReleaseConfig, layout: Layout, version: Any, champion: Any | None
) -> ReleaseReport:
    """The gate for registered `version` against `champion` as given (the caller reads it from
    the registry just before): the workspace's reports, and the paired test of both registered
    bundles, the candidate's verified against its recorded sha256 (RegistryMismatch)."""
    if champion is not None and str(champion.version) == str(version.version):
        regression = gate.is_the_champion(cfg, version.version)
    else:
        with tempfile.TemporaryDirectory(prefix="seqops-gate-") as tmp:
            candidate_dir = registered_copy(client, cfg.model_name, version, Path(tmp) / "cand")
            if champion is None:
                regression = gate.no_champion(cfg)
            else:
                regression = _regression(client, cfg, layout, candidate_dir, champion, Path(tmp))
    checks = gate.evaluate(cfg, layout, regression)
    return ReleaseReport(
        passed=all(c.passed for c in checks),
        checks={
            c.name: CheckResult(**{k: v for k, v in asdict(c).items() if k != "name"})
            for c in checks
        },
        model_name=cfg.model_name,
        version=int(version.version),
        run_id=version.run_id,
        aliases=sorted(version.aliases),
        lineage=registered_lineage(version),
        champion=int(champion.version) if champion is not None else None,
    )


def record_verdict(
    client: Any,
    experiment_id: str,
    cfg: ReleaseConfig,
    report: ReleaseReport,
    by: str,
    extra_tags: dict[str, str] | None = None,
) -> Verdict:
    """Record one gate evaluation as its own MLflow run, nested under the version's training
    run (which it leaves untouched), and tag a version never promoted with it."""
    from seqops import tracking

    digest = gate.params_digest(cfg)
    against = str(report.champion) if report.champion is not None else "none"
    tags = {
        "seqops.stage": GATE_STAGE,
        "seqops.gate.by": by,
        "seqops.gate.model": report.model_name,
        "seqops.gate.version": str(report.version),
        "seqops.gate.champion": against,
        "seqops.gate.params": digest,
        "seqops.gate.passed": str(report.passed).lower(),
        **tracking.owner_tags(),
        **(extra_tags or {}),
    }
    if report.run_id:
        tags["mlflow.parentRunId"] = report.run_id
    vs = f"v{report.champion}" if report.champion is not None else "no champion"
    run = client.create_run(
        experiment_id, tags=tags, run_name=f"gate v{report.version} vs {vs} ({by})"
    )
    record = run.info.run_id
    try:
        for key, value in cfg.model_dump(mode="json").items():
            client.log_param(record, f"release.{key}", "null" if value is None else value)
        client.log_metric(record, "release/passed", float(report.passed))
        failed = sum(not c.passed for c in report.checks.values())
        client.log_metric(record, "release/checks_failed", float(failed))
        client.log_text(
            record, report.model_dump_json(indent=2, exclude_none=True), VERDICT_ARTIFACT
        )
    except BaseException:
        client.set_terminated(record, status="FAILED")
        raise
    client.set_terminated(record)
    version = client.get_model_version(report.model_name, str(report.version))
    if PROMOTED not in version.tags and CHAMPION not in version.aliases:
        key = f"gate.vs_{against}.{digest}"
        value = f"{'passed' if report.passed else 'failed'} {record}"
        client.set_model_version_tag(report.model_name, str(report.version), key, value)
    return Verdict(report, digest, record, by)


def read_verdict(client: Any, record: str) -> Verdict | None:
    """The verdict gate run `record` holds, or None when it is gone or holds none."""
    from mlflow.exceptions import MlflowException

    try:
        tags = client.get_run(record).data.tags
        with tempfile.TemporaryDirectory(prefix="seqops-verdict-") as tmp, _no_progress_bars():
            path = Path(client.download_artifacts(record, VERDICT_ARTIFACT, tmp))
            report = ReleaseReport.read(path)
    except (MlflowException, OSError, SeqopsError):
        return None
    by = tags.get("seqops.gate.by", "promote")
    return Verdict(report, tags.get("seqops.gate.params", ""), record, by)


def standing(client: Any, name: str, version: str | int) -> Standing:
    found = client.get_model_version(name, str(version))
    record = found.tags.get(PROMOTED_VERDICT)
    return Standing(
        aliases=tuple(sorted(found.aliases)),
        promoted=read_verdict(client, record) if record else None,
        rolled_back=found.tags.get(ROLLED_BACK) == "true",
    )


def release(cfg: ReleaseConfig, layout: Layout, experiment_id: str) -> tuple[Verdict, Standing]:
    """What the release stage does: register the workspace's model, judge it against the
    current champion, record the verdict. Nothing moves `champion`: that is `promote`'s job."""
    from mlflow import MlflowClient

    from seqops.contracts import ExportReport

    export_report = ExportReport.read(layout.export_report)
    if export_report.mlflow_model_uri is None:
        raise SeqopsError(f"{layout.export_report}: no MLflow model (re-run `seqops export`)")
    client = MlflowClient()
    recover_promotion(client, cfg.model_name)
    champion = alias_version(client, cfg.model_name, CHAMPION)
    version = register(client, cfg, lineage_tags(layout), export_report.mlflow_model_uri, champion)
    verdict = record_verdict(
        client, experiment_id, cfg, judge(client, cfg, layout, version, champion), "release"
    )
    return verdict, standing(client, cfg.model_name, version.version)


# -- moving aliases (used by seqops.promotion) --------------------------------------------------


def finish_promotion(client: Any, name: str, old: str | None, new: str) -> None:
    """The aliases of a promotion whose records and intent tag are written: `champion` (the
    alias serving reads, one call), then `previous-champion`; a re-promoted version loses its
    rolled-back mark; the intent tag goes last."""
    client.set_registered_model_alias(name, CHAMPION, new)
    kill_point("champion")
    if old:
        client.set_registered_model_alias(name, PREVIOUS, old)
    kill_point("previous")
    if ROLLED_BACK in client.get_model_version(name, new).tags:
        client.delete_model_version_tag(name, new, ROLLED_BACK)
    client.delete_registered_model_tag(name, PROMOTION_TAG)


def recover_promotion(client: Any, name: str) -> str | None:
    """Complete a promotion a killed process left half done; returns what was completed."""
    from mlflow.exceptions import MlflowException

    try:
        pending = client.get_registered_model(name).tags.get(PROMOTION_TAG)
    except MlflowException:  # no such model yet
        return None
    if not pending:
        return None
    old, _, new = pending.partition(">")
    finish_promotion(client, name, old or None, new)
    return f"completed an interrupted promotion of v{new} (champion before: v{old or 'none'})"


# -- lineage ------------------------------------------------------------------------------------


def lineage(onnx_file: Path, model_name: str) -> dict[str, Any]:
    """The registered version whose ONNX hash matches `onnx_file`, with what produced it."""
    from mlflow import MlflowClient

    if not onnx_file.is_file():
        raise SeqopsError(f"{onnx_file}: no such file")
    digest = sha256(onnx_file)
    client = MlflowClient()
    matches = [
        v
        for v in client.search_model_versions(f"name = '{model_name}'")
        if v.tags.get(ONNX_TAG) == digest
    ]
    if not matches:
        raise SeqopsError(
            f"{onnx_file} (sha256 {digest[:16]}…) matches no registered version of "
            f"{model_name!r}: it was not released by this project, or it was modified"
        )
    version = max(matches, key=lambda v: int(v.version))
    params = dict(client.get_run(version.run_id).data.params) if version.run_id else {}
    return {
        "file": str(onnx_file),
        "sha256": digest,
        "verified": True,
        "model": model_name,
        "version": int(version.version),
        "aliases": list(version.aliases),
        "run_id": version.run_id,
        "git_commit": version.tags.get("git.commit"),
        "git_dirty": version.tags.get("git.dirty"),
        "data_hash": version.tags.get("data.hash"),
        "optuna_study": version.tags.get("optuna.study"),
        "optuna_trial": version.tags.get("optuna.best_trial"),
        "dvc_stages": {
            k.removeprefix("dvc.stage."): v
            for k, v in version.tags.items()
            if k.startswith("dvc.stage.")
        },
        "params": params,
    }


def lineage_main(onnx_file: Path, params: str | Path = "params.yaml") -> dict[str, Any]:
    """What `seqops lineage` prints."""
    from seqops import tracking
    from seqops.config import load_config

    cfg = load_config(params)
    tracking.use_tracking(cfg.tracking)
    return lineage(Path(onnx_file), cfg.release.model_name)
