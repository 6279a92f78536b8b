"""Fixtures for the integration tests that need a real server: a throwaway PostgreSQL cluster.

The server comes from the PostgreSQL binaries on PATH or under /usr/lib/postgresql (CI installs
them with apt); a test using it is skipped, saying why, only where they are missing.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import _free_port


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    return str(candidates[-1]) if candidates else None


@contextlib.contextmanager
def _cluster(auth: list[str]) -> Iterator[tuple[int, Path]]:
    """A throwaway PostgreSQL cluster on a free 127.0.0.1 port with initdb's `auth` options;
    yields its port and the directory of its Unix socket (superuser `postgres`)."""
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if not (initdb and pg_ctl):
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) not installed")
    prefix: list[str] = []
    if os.geteuid() == 0:  # initdb refuses to run as root; use the packaged service user
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no 'postgres' user to own the cluster")
        prefix = ["runuser", "-u", "postgres", "--"]
    # Not pytest's tmp_path: its parents are private to root, the server user must enter it.
    root = Path(tempfile.mkdtemp(prefix="seqops-pg-"))
    data = root / "data"
    if prefix:
        os.chown(root, user.pw_uid, user.pw_gid)
    port = _free_port()
    subprocess.run(
        [*prefix, initdb, "-D", str(data), "-U", "postgres", *auth, "-E", "UTF8"],
        check=True,
        capture_output=True,
    )
    options = f"-p {port} -c listen_addresses=127.0.0.1 -k {root} -c max_connections=50"
    subprocess.run(
        [*prefix, pg_ctl, "-D", str(data), "-o", options, "-l", str(root / "log"), "-w", "start"],
        check=True,
        capture_output=True,
    )
    try:
        yield port, root
    finally:
        subprocess.run(
            [*prefix, pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop"],
            check=False,
            capture_output=True,
        )
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A throwaway PostgreSQL cluster on a free 127.0.0.1 port; yields its SQLAlchemy URL."""
    with _cluster(["--auth=trust"]) as (port, _):
        yield f"postgresql+psycopg2://postgres@127.0.0.1:{port}/postgres"


#: The role `postgres_password_url` creates; its password is the fixture's second value.
PG_USER = "seqops"


@pytest.fixture
def postgres_password_url() -> Iterator[tuple[str, str]]:
    """A throwaway PostgreSQL cluster whose TCP logins need a password (scram-sha-256), with a
    role `seqops` owning database `seqops`; yields its URL (no password: a bare
    `postgresql://`, as the README writes it) and the role's password (for PGPASSWORD)."""
    password = f"pg{secrets.token_hex(12)}"
    auth = ["--auth-local=trust", "--auth-host=scram-sha-256"]
    with _cluster(auth) as (port, socket_dir):
        psql = [_pg_bin("psql") or "psql", "-h", str(socket_dir), "-p", str(port), "-U"]
        sql = f"CREATE ROLE {PG_USER} LOGIN PASSWORD '{password}'"
        subprocess.run([*psql, "postgres", "-c", sql], check=True, capture_output=True)
        subprocess.run(
            [*psql, "postgres", "-c", f"CREATE DATABASE {PG_USER} OWNER {PG_USER}"],
            check=True,
            capture_output=True,
        )
        yield f"postgresql://{PG_USER}@127.0.0.1:{port}/{PG_USER}", password
