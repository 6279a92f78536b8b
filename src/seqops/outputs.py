"""Atomic writers for stage outputs: a killed or failed stage never leaves a half-written file.

Each writer writes a temporary sibling and renames it over the target (`os.replace` is atomic
on one filesystem). Directories are built beside the target and swapped in at the end.

Temporary files and directories are created like `open()` / `mkdir` create them (0666 / 0777
less the umask: 0644 / 0755 by default), not `tempfile`'s private 0600 / 0700, so every output
gets the same mode whichever writer made it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

#: Fault injection for the kill tests: the step after which a command SIGKILLs itself
#: (`seqops promote`'s `registry.PROMOTION_STEPS`, export's `onnx_export.EXPORT_STEPS`).
KILL_AT_ENV = "SEQOPS_KILL_AT"


def kill_point(step: str) -> None:
    """SIGKILL this process when `SEQOPS_KILL_AT` names `step` (tests only; a no-op otherwise)."""
    if os.environ.get(KILL_AT_ENV) == step:
        os.kill(os.getpid(), signal.SIGKILL)


def _temp_name(path: Path, suffix: str = ".tmp") -> Path:
    return path.with_name(f".{path.name}.{secrets.token_hex(4)}{suffix}")


def _create_file(path: Path) -> tuple[int, Path]:
    """A new, uniquely named temporary sibling of `path`, opened for writing, mode 0666 less
    the umask (what `open()` would give the file itself)."""
    while True:
        tmp = _temp_name(path)
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), tmp
        except FileExistsError:
            continue


def make_temp_dir(parent: Path, prefix: str) -> Path:
    """A new, uniquely named directory `parent/<prefix><random>`, mode 0777 less the umask."""
    parent.mkdir(parents=True, exist_ok=True)
    while True:
        tmp = parent / f"{prefix}{secrets.token_hex(4)}"
        try:
            tmp.mkdir(0o777)
            return tmp
        except FileExistsError:
            continue


def write_bytes(path: str | Path, data: bytes) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _create_file(path)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def write_text(path: str | Path, text: str) -> Path:
    return write_bytes(path, text.encode())


def write_json(path: str | Path, obj: Any) -> Path:
    return write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def write_yaml(path: str | Path, obj: Any) -> Path:
    return write_text(path, yaml.safe_dump(obj, sort_keys=False))


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path to write a file to; it replaces `path` only on success.

    The temporary file is created new (`O_EXCL`, a random name beside `path`) before the
    caller's writer opens it by name: a file or a symlink planted at a predictable name is
    never written through."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _create_file(path)
    os.close(fd)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield an empty temporary directory that replaces `path` only on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = make_temp_dir(path.parent, f".{path.name}.")
    try:
        yield tmp
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def remove(*paths: str | Path) -> None:
    """Delete stale outputs before a stage starts, so a failure cannot leave old ones behind."""
    for p in map(Path, paths):
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()


def sha256(path: Path) -> str:
    """The hex sha256 of a file's bytes (read in chunks: ONNX files can be large)."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def hash_dir(path: Path) -> str:
    """sha256 over the files of a directory (names and bytes), order-independent."""
    digest = hashlib.sha256()
    for f in sorted(p for p in path.iterdir() if p.is_file()):
        digest.update(f.name.encode())
        digest.update(hashlib.sha256(f.read_bytes()).digest())
    return digest.hexdigest()
