"""Is the workspace what the commit says? The files `dvc.lock` at `HEAD` records, checked.

    verify_committed(Path("."), [Path("models/model.onnx"), ...])   # raises NotCommitted

`seqops promote` judges and ships the model in the workspace; the commit (its `dvc.lock`) is
what a reviewer, a tag and a fresh clone see. Promotion refuses unless each file it reads is
byte for byte the one `HEAD`'s `dvc.lock` records (DVC's md5 of a file is the plain md5 of its
bytes), in every stage that records it: the export stage's outputs and the release stage's
inputs, so a committed lock whose release stage judged another model is refused too.
"""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path
from typing import Any

import yaml

from seqops.errors import SeqopsError

LOCK_FILE = "dvc.lock"


class NotCommitted(SeqopsError):
    """The workspace's model or the reports its verdict reads differ from what `dvc.lock` at
    `HEAD` records (edited, retrained without committing, or never committed)."""

    exit_code = 4


def md5(path: Path) -> str:
    """DVC's hash of a file: the md5 of its bytes."""
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def committed_lock(root: Path) -> dict[str, Any]:
    """`dvc.lock` as `HEAD` holds it (not as the workspace does)."""
    try:
        shown = subprocess.run(
            ["git", "show", f"HEAD:./{LOCK_FILE}"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=60,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise NotCommitted(f"{LOCK_FILE}: cannot read it at HEAD ({exc})") from None
    if shown.returncode != 0:
        raise NotCommitted(
            f"{LOCK_FILE} is not committed at HEAD (git: {shown.stderr.strip() or 'no HEAD'}); "
            "commit the pipeline's results first"
        )
    try:  # DVC's own file, read from git's output (config.read_yaml reads params files)
        lock = yaml.safe_load(shown.stdout) or {}
    except yaml.YAMLError as exc:
        raise NotCommitted(f"{LOCK_FILE} at HEAD: not valid YAML ({exc})") from None
    return lock if isinstance(lock, dict) else {}


def recorded(lock: dict[str, Any], stage: str, kind: str) -> dict[str, str]:
    """path -> md5 of the files stage `stage` lists under `kind` (`outs`, `deps`); directory
    entries (`.dir` hashes) are left out."""
    entries = ((lock.get("stages") or {}).get(stage) or {}).get(kind) or []
    return {
        str(e["path"]): str(e["md5"])
        for e in entries
        if isinstance(e, dict) and "md5" in e and not str(e["md5"]).endswith(".dir")
    }


def verify_committed(root: Path, files: list[Path], records: tuple[tuple[str, str], ...]) -> None:
    """Raise NotCommitted unless each of `files` (relative to `root`) exists and has the md5
    that every (stage, kind) of `records` in `HEAD`'s dvc.lock lists for it; at least one of
    them must list it."""
    lock = committed_lock(root)
    listed = [(f"{stage} {kind}", recorded(lock, stage, kind)) for stage, kind in records]
    for file in files:
        key = file.as_posix()
        wants = {where: found[key] for where, found in listed if key in found}
        if not wants:
            raise NotCommitted(
                f"{LOCK_FILE} at HEAD records no {key}: commit the pipeline's results first"
            )
        path = root / file
        if not path.is_file():
            raise NotCommitted(f"{key}: missing from the workspace (dvc checkout restores it)")
        have = md5(path)
        for where, want in wants.items():
            if have != want:
                raise NotCommitted(
                    f"{key} (md5 {have[:12]}) is not the file {LOCK_FILE} at HEAD records in "
                    f"its {where} (md5 {want[:12]}): commit the pipeline's results "
                    "(or `dvc checkout` the committed ones) before promoting"
                )
