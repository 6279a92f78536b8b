"""MLflow runs and lineage: one run per trained model, shared metric and param names.

The tracking URI is `MLFLOW_TRACKING_URI` when set, else `tracking.uri` from params.yaml
(default: the embedded `sqlite:///mlflow.db` at the project root). A relative SQLite path
resolves against the project's own root, also when DVC runs a stage in a temporary copy of the
repository (`dvc exp run --temp` / `--queue` work under `<root>/.dvc/tmp/exps/`), so those
experiments land in the same store as the others. `models/run.json` records the URI as
configured (relative) and later stages resolve it the same way, so a copy of a project
writes into its own store, never the original's. Nothing happens at import time; stages call
`use_tracking()` in their `main()`.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import mlflow

from seqops import credentials
from seqops.config import TrackingConfig, read_yaml
from seqops.contracts import RunInfo
from seqops.errors import ConfigError, DataError, clip

#: Where DVC copies the repository for `dvc exp run --temp` / `--queue`.
_DVC_TEMP = (".dvc", "tmp", "exps")


def project_root(where: Path | None = None) -> Path:
    """The project's root: `where` (default: the working directory), or the repository a DVC
    temporary experiment workspace below it was copied from."""
    here = (where or Path.cwd()).resolve()
    parts = here.parts
    for i in range(1, len(parts) - len(_DVC_TEMP) + 1):
        if parts[i : i + len(_DVC_TEMP)] == _DVC_TEMP:
            return Path(*parts[:i])
    return here


def configured_uri(cfg: TrackingConfig) -> str:
    """The tracking URI as configured (`MLFLOW_TRACKING_URI`, else `tracking.uri`), a bare
    `postgresql://` on the installed driver, a relative SQLite path left relative: what
    `models/run.json` records, so a copy of the project resolves it against its own root
    (`at_root`) and never writes into the original's store. One holding a password is
    refused (it would land in `models/run.json` and MLflow's "View run at" lines).

    Read it before `use_tracking`: MLflow exports the URI it is given (resolved) to
    `MLFLOW_TRACKING_URI` for subprocesses."""
    from_env = os.environ.get("MLFLOW_TRACKING_URI")
    if from_env and credentials.has_password(from_env):
        raise ConfigError(
            credentials.refusal("MLFLOW_TRACKING_URI", from_env, credentials.TRACKING_ADVICE)
        )
    return credentials.rdb_url(from_env or cfg.uri)


def at_root(uri: str) -> str:
    """`uri` with a relative SQLite path made absolute under `project_root()` (the project
    being run, also from a DVC temporary experiment workspace); any other URI unchanged."""
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri.startswith(prefix + "/"):
        return f"{prefix}{project_root() / uri.removeprefix(prefix)}"
    return uri


def resolve_uri(cfg: TrackingConfig) -> str:
    """The tracking URI to connect to: `configured_uri`, resolved by `at_root`."""
    return at_root(configured_uri(cfg))


def experiment_name() -> str | None:
    """The DVC experiment being run (`dvc exp run` sets DVC_EXP_NAME), the MLflow run name."""
    return os.environ.get("DVC_EXP_NAME") or None


def preflight(cfg: TrackingConfig) -> str:
    """The URI `use_tracking` connects to, refused before a stage deletes anything: a password
    in `MLFLOW_TRACKING_URI`, or a server whose port does not answer within a few seconds
    (one line naming `host:port`, never the password)."""
    uri = resolve_uri(cfg)
    problem = credentials.unreachable(uri)
    if problem:
        where = "MLFLOW_TRACKING_URI" if os.environ.get("MLFLOW_TRACKING_URI") else "tracking.uri"
        raise ConfigError(f"{where}: the tracking server is unreachable: {problem}")
    return uri


def use_tracking(cfg: TrackingConfig) -> str:
    """Point MLflow at the configured store and experiment, and mark KILLED the runs a killed
    stage left RUNNING; returns the URI used."""
    uri = preflight(cfg)
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment(cfg.experiment)
    fail_orphaned_runs(cfg.experiment)
    return uri


def _git(root: Path, *args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args], cwd=root, capture_output=True, text=True, check=True, timeout=30
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def dvc_stage_hashes(lock_file: Path) -> dict[str, str]:
    """A short digest per stage of `dvc.lock` (its command, deps, params and outs)."""
    if not lock_file.is_file():
        return {}
    lock = read_yaml(lock_file, max_bytes=None) or {}
    return {
        name: hashlib.sha256(json.dumps(entry, sort_keys=True).encode()).hexdigest()[:16]
        for name, entry in (lock.get("stages") or {}).items()
    }


def lineage_tags(root: Path, data_hash: str | None) -> dict[str, str]:
    """git commit and dirty flag, data hash, and dvc.lock stage hashes, as MLflow tags."""
    tags: dict[str, str] = {}
    commit = _git(root, "rev-parse", "HEAD")
    if commit:
        tags["git.commit"] = commit
        tags["mlflow.source.git.commit"] = commit  # the MLflow UI's "Version" column
        status = _git(root, "status", "--porcelain", "--untracked-files=no")
        tags["git.dirty"] = str(bool(status)).lower()
    if data_hash:
        tags["data.hash"] = data_hash
    for stage, digest in dvc_stage_hashes(root / "dvc.lock").items():
        tags[f"dvc.stage.{stage}"] = digest
    if experiment_name():
        tags["dvc.experiment"] = str(experiment_name())
    return tags


def owner_tags() -> dict[str, str]:
    """Which process runs a run: lets a later stage fail the runs a killed one left RUNNING."""
    return {"seqops.host": socket.gethostname(), "seqops.pid": str(os.getpid())}


def process_alive(pid: int) -> bool:
    """Whether process `pid` of this host still exists (the owner check of runs and trials)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A killed process whose parent died too waits as a zombie until PID 1 reaps it, which
    # some containers never do: it no longer runs, so it owns nothing.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state != "Z"


def fail_orphaned_runs(experiment: str) -> list[str]:
    """Mark KILLED the RUNNING runs of `experiment` whose process on this host is gone (a
    stage killed mid-run); returns their ids. Runs of other hosts or live processes stay."""
    client = mlflow.MlflowClient()
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return []
    host = socket.gethostname()
    killed = []
    for run in client.search_runs([found.experiment_id], "attributes.status = 'RUNNING'"):
        tags = run.data.tags
        pid = tags.get("seqops.pid", "")
        if tags.get("seqops.host") == host and pid.isdigit() and not process_alive(int(pid)):
            client.set_terminated(run.info.run_id, status="KILLED")
            killed.append(run.info.run_id)
    return killed


def training_dataset(source: str, digest: str) -> Any:
    """The dataset a run trains on, as MLflow names it: `source`'s name and prepare's hash of
    what the stages read (its first 16 hex digits). The same object names the dataset input
    of the run and the dataset of the metrics measured on it (a logged model's among them)."""
    from mlflow.data.code_dataset_source import CodeDatasetSource
    from mlflow.data.meta_dataset import MetaDataset

    name = Path(source).name if "/" in source else source
    return MetaDataset(  # type: ignore[abstract]  # profile is optional at run time
        CodeDatasetSource(tags={"source": source}), name=name, digest=digest[:16]
    )


def log_dataset(source: str, digest: str, context: str, tags: dict[str, str]) -> Any:
    """Record the dataset the active run trained on (MLflow's dataset inputs): where it came
    from and prepare's hash of what the stages read; returns it (see `training_dataset`)."""
    dataset = training_dataset(source, digest)
    mlflow.log_input(dataset, context=context, tags=tags)
    return dataset


def trained_on(run_id: str) -> Any:
    """The dataset run `run_id` trained on (its dataset input of context "training", as
    `log_dataset` records it), or None: what a model logged in that run is measured on, to
    pass as `dataset=` to `mlflow.log_metrics(..., model_id=...)`."""
    run = mlflow.MlflowClient().get_run(run_id)
    for entry in run.inputs.dataset_inputs if run.inputs else []:
        if any(t.key == "mlflow.data.context" and t.value == "training" for t in entry.tags):
            return entry.dataset
    return None


def preflight_run(run_file: Path) -> str:
    """The store `resume_run` will reopen, checked before a stage after training deletes its
    outputs: `run_file` readable, and a tracking server that answers within a few seconds
    (one line naming `host:port`, never a password). Returns the URI."""
    uri = at_root(RunInfo.read(run_file).tracking_uri)
    problem = credentials.unreachable(uri)
    if problem:
        raise ConfigError(f"{run_file}: the run's tracking server is unreachable: {problem}")
    return uri


@contextmanager
def resume_run(run_file: Path) -> Iterator[mlflow.ActiveRun]:
    """Reopen the training run recorded in `models/run.json` to add results to it, in the
    store it records, a relative SQLite path resolved against this project's root (a copy
    of a project writes into its own copy of the store). A run the store does not hold is
    one DataError naming `run_file`."""
    from mlflow.exceptions import MlflowException

    info = RunInfo.read(run_file)
    uri = at_root(info.tracking_uri)
    mlflow.set_tracking_uri(uri)
    try:
        mlflow.MlflowClient().get_run(info.run_id)
    except MlflowException:
        raise DataError(
            f"{run_file}: run {clip(info.run_id, 40)} is not in the tracking store "
            f"{clip(credentials.mask(uri), 200)} (a project copied without its store, or "
            "another store configured?); re-run `seqops train`"
        ) from None
    with mlflow.start_run(run_id=info.run_id) as run:
        yield run


def log_flat_params(params: dict[str, Any]) -> None:
    """Log dotted params; a URI among them shows no password."""
    mlflow.log_params(
        {
            k: "null" if v is None else credentials.mask(v) if isinstance(v, str) else v
            for k, v in params.items()
        }
    )
