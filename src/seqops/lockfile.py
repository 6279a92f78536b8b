"""Is the workspace what the commit says? The files `dvc.lock` at `HEAD` records, checked.

    verify_committed(Path("."), [Path("models/model.onnx"), ...])   # raises NotCommitted
    verify_fresh(Path("."), [Path("reports/metrics.json"), ...])    # raises StaleReport

`seqops promote` judges and ships the model in the workspace; the commit (its `dvc.lock`) is
what a reviewer, a tag and a fresh clone see. Promotion refuses unless each file it reads is
byte for byte the one `HEAD`'s `dvc.lock` records (DVC's md5 of a file is the plain md5 of its
bytes), in every stage that records it: the export stage's outputs and the release stage's
inputs, so a committed lock whose release stage judged another model is refused too.

A report is stale when the params it was made under are not today's: `dvc.lock` records, per
stage, the params values the stage ran with (and the files it read and wrote). A file is stale
when the stage that wrote it, or a stage upstream of that one, recorded a value that
`params.yaml` no longer holds; the refusal names the stale files and the first changed param.
`verify_committed` checks this against `HEAD`'s lock, `verify_fresh` against the workspace's
(the one `dvc repro` updates after each stage).
"""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path
from typing import Any

import yaml

from seqops.config import read_yaml
from seqops.errors import SeqopsError

LOCK_FILE = "dvc.lock"


class NotCommitted(SeqopsError):
    """The workspace's model or the reports its verdict reads differ from what `dvc.lock` at
    `HEAD` records (edited, retrained without committing, or never committed)."""

    exit_code = 4


class StaleReport(NotCommitted):
    """A report (or model) was made under params that `params.yaml` no longer holds: the
    pipeline was not re-run (`dvc repro`) after the params changed."""


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


def workspace_lock(root: Path) -> dict[str, Any] | None:
    """The workspace's `dvc.lock`, or None where there is none (the pipeline never ran under
    DVC: nothing records what the reports were made from)."""
    path = root / LOCK_FILE
    if not path.is_file():
        return None
    try:
        lock = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise NotCommitted(f"{path}: cannot be read ({exc})") from None
    return lock if isinstance(lock, dict) else {}


_ABSENT = "(absent)"


def _lookup(params: Any, dotted: str) -> Any:
    """The value at `dotted` (`data.id_column`) in a params tree, or `_ABSENT`."""
    for key in dotted.split("."):
        if not isinstance(params, dict) or key not in params:
            return _ABSENT
        params = params[key]
    return params


def _number(value: Any) -> float | None:
    """A number, or a string YAML 1.1 left unparsed (`1e-05`), as a float; else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(value) if isinstance(value, str) else None
    except ValueError:
        return None


#: What YAML 1.1 (`config.read_yaml`) reads as a boolean and YAML 1.2 (DVC) as a string.
_YAML11_BOOLS = {"true": True, "yes": True, "on": True, "false": False, "no": False, "off": False}


def _boolean(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    return _YAML11_BOOLS.get(value.lower()) if isinstance(value, str) else None


def _same(recorded: Any, current: Any) -> bool:
    """Equal as params values: DVC reads and writes YAML 1.2, `config.read_yaml` reads params
    as YAML 1.1, so `1e-5` or `yes` may come back as a string on one side only."""
    if isinstance(recorded, dict) and isinstance(current, dict):
        return recorded.keys() == current.keys() and all(
            _same(recorded[k], current[k]) for k in recorded
        )
    if isinstance(recorded, list) and isinstance(current, list):
        return len(recorded) == len(current) and all(map(_same, recorded, current))
    if isinstance(recorded, bool) or isinstance(current, bool):
        return _boolean(recorded) is not None and _boolean(recorded) == _boolean(current)
    a, b = _number(recorded), _number(current)
    return a == b if a is not None and b is not None else recorded == current


def _difference(key: str, was: Any, now: Any) -> str | None:
    """`key: X when it ran, Y now` at the first differing leaf under `key`, or None."""
    if _same(was, now):
        return None
    if isinstance(was, dict) and isinstance(now, dict):
        for sub in sorted(was.keys() | now.keys(), key=str):
            found = _difference(f"{key}.{sub}", was.get(sub, _ABSENT), now.get(sub, _ABSENT))
            if found:
                return found
    return f"{key}: {was!r} when it ran, {now!r} now"


def _changed_param(root: Path, stage: dict[str, Any]) -> str | None:
    """`file key: X when it ran, Y now` for the first param the stage recorded that differs
    today."""
    for file, values in (stage.get("params") or {}).items():
        current = read_yaml(root / file)
        for key, was in (values or {}).items():
            found = _difference(str(key), was, _lookup(current, str(key)))
            if found:
                return f"{file} {found}"
    return None


def _paths(stage: dict[str, Any], kind: str) -> list[str]:
    return [str(e["path"]) for e in stage.get(kind) or [] if isinstance(e, dict) and "path" in e]


def _overlaps(a: str, b: str) -> bool:
    return a == b or a.startswith(f"{b}/") or b.startswith(f"{a}/")


def stale_stages(root: Path, lock: dict[str, Any]) -> dict[str, str]:
    """stage -> why, for each stage of `lock` whose recorded params are not today's, and each
    stage downstream of one (it read a file such a stage wrote)."""
    stages = {str(k): v for k, v in (lock.get("stages") or {}).items() if isinstance(v, dict)}
    stale = {name: why for name, s in stages.items() if (why := _changed_param(root, s))}
    grew = True
    while grew:
        grew = False
        for name, stage in stages.items():
            if name in stale:
                continue
            for upstream in list(stale):
                if any(_overlaps(d, o) for d in _paths(stage, "deps")
                       for o in _paths(stages[upstream], "outs")):  # fmt: skip
                    stale[name], grew = stale[upstream], True
                    break
    return stale


def verify_fresh(root: Path, files: list[Path], lock: dict[str, Any] | None = None) -> None:
    """Raise StaleReport naming those of `files` (relative to `root`) a stage wrote under
    params `params.yaml` no longer holds, or downstream of one; `lock` defaults to the
    workspace's dvc.lock (none: nothing to check)."""
    lock = workspace_lock(root) if lock is None else lock
    if not lock:
        return
    stale = stale_stages(root, lock)
    stages = lock.get("stages") or {}
    found: dict[str, str] = {}
    for file in files:
        key = file.as_posix()
        for name, why in stale.items():
            if key in _paths(stages[name], "outs"):
                found[key] = why
    if found:
        names = ", ".join(found)
        verb = "is" if len(found) == 1 else "are"
        raise StaleReport(
            f"{names} {verb} stale: made under other params ({next(iter(found.values()))}); "
            "re-run `dvc repro` (and commit its results)"
        )


def verify_committed(root: Path, files: list[Path], records: tuple[tuple[str, str], ...]) -> None:
    """Raise NotCommitted unless each of `files` (relative to `root`) exists and has the md5
    that every (stage, kind) of `records` in `HEAD`'s dvc.lock lists for it; at least one of
    them must list it. Raise StaleReport when one of them was made under params
    `params.yaml` no longer holds (`verify_fresh` against that lock)."""
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
    verify_fresh(root, files, lock)
