"""Credentials come from the environment and are never stored or printed.

The whole pipeline (`dvc repro`) tunes on a real PostgreSQL server whose TCP logins need a
password (`postgres_password_url`, scram-sha-256; the URL spelled `postgresql://` as the README
writes it, the password in PGPASSWORD) and tracks to a real `mlflow server --app-name
basic-auth` (user and password in MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD). Then
every file the run wrote (project with dvc.lock, .dvc/cache and git objects; the server's
backend store, artifact root and log; a pg_dump of the study database) and everything printed
are searched for both passwords: zero hits.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from mlflow import MlflowClient

from tests.conftest import BIN, _free_port, run, run_env, running_server, write_params
from tests.integration.conftest import _pg_bin

DVC, SEQOPS = str(BIN / "dvc"), str(BIN / "seqops")
ADMIN = "admin"


@pytest.fixture
def auth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, Path]]:
    """`mlflow server --app-name basic-auth` (SQLite backend store, proxied local artifacts) on
    a free 127.0.0.1 port; yields its URL, the admin password and the server's directory."""
    root = tmp_path_factory.mktemp("mlflow-auth-server")
    password = f"mlflow{secrets.token_hex(12)}"
    ini = root / "basic_auth.ini"
    ini.write_text(
        "[mlflow]\ndefault_permission = READ\n"
        f"database_uri = sqlite:///{root / 'basic_auth.db'}\nadmin_username = {ADMIN}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
    )
    env = run_env()
    env.update(
        MLFLOW_AUTH_CONFIG_PATH=str(ini),
        MLFLOW_AUTH_ADMIN_PASSWORD=password,  # creates the admin user on the first start
        MLFLOW_FLASK_SERVER_SECRET_KEY=secrets.token_hex(16),
        MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false",
    )
    cmd = [str(BIN / "mlflow"), "server", "--app-name", "basic-auth",
           "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
           "--artifacts-destination", str(root / "artifacts"), "--serve-artifacts",
           "--host", "127.0.0.1", "--port", str(_free_port()), "--workers", "1"]  # fmt: skip
    with running_server(cmd, root, env, "/health", root / "server.log") as url:
        _cheap_hash(root / "basic_auth.db", ADMIN, password)
        yield url, password, root


def _cheap_hash(auth_db: Path, user: str, password: str) -> None:
    """Store `user`'s password hash with 1,000 PBKDF2 rounds instead of werkzeug's default
    scrypt: the server checks the hash on every request (about 60 ms each with scrypt, some
    hundreds of requests per pipeline run). The password is still needed, and still never
    stored: only its hash is, as before."""
    import sqlite3

    from werkzeug.security import generate_password_hash

    with contextlib.closing(sqlite3.connect(auth_db)) as db, db:
        changed = db.execute(
            "UPDATE users SET password_hash = ? WHERE username = ?",
            (generate_password_hash(password, "pbkdf2:sha256:1000"), user),
        ).rowcount
    assert changed == 1, f"{auth_db}: no user {user!r} to re-hash"


def _status_without_credentials(url: str) -> int:
    try:
        with urllib.request.urlopen(f"{url}/api/2.0/mlflow/experiments/search?max_results=1"):
            return 200
    except urllib.error.HTTPError as err:
        return err.code


def _pg_dump(url: str, password: str) -> bytes:
    parts = urlsplit(url)
    dump = _pg_bin("pg_dump") or "pg_dump"
    proc = subprocess.run(
        [dump, "-h", str(parts.hostname), "-p", str(parts.port), "-U", str(parts.username),
         parts.path.lstrip("/")],
        env={**os.environ, "PGPASSWORD": password}, capture_output=True, check=True,
    )  # fmt: skip
    return proc.stdout


def _files_holding(needle: bytes, *roots: Path) -> list[str]:
    return [
        str(path)
        for root in roots
        for path in sorted(root.rglob("*"))
        if path.is_file() and not path.is_symlink() and needle in path.read_bytes()
    ]


@pytest.mark.slow
@pytest.mark.postgres
def test_no_password_is_stored_or_printed(
    project: Path,
    postgres_password_url: tuple[str, str],
    auth_server: tuple[str, str, Path],
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pg_url, pg_password = postgres_password_url
    url, mlflow_password, server_root = auth_server
    assert pg_url.startswith("postgresql://")  # the README's spelling, no driver named
    write_params(project / "params.yaml", {"tune": {"storage": pg_url}})
    credentials = {
        "PGPASSWORD": pg_password,
        "MLFLOW_TRACKING_URI": url,
        "MLFLOW_TRACKING_USERNAME": ADMIN,
        "MLFLOW_TRACKING_PASSWORD": mlflow_password,
    }
    console: list[str] = []

    def seqops(*args: str, env: dict[str, str], cwd: Path = project) -> tuple[int, str]:
        proc = run([SEQOPS, *args], cwd, check=False, env=env)
        console.extend([proc.stdout, proc.stderr])
        return proc.returncode, proc.stderr

    # Both servers really need their password.
    assert _status_without_credentials(url) == 401
    console.append(run([DVC, "repro", "prepare"], project, env=credentials).stdout)
    code, err = seqops("tune", env={**credentials, "PGPASSWORD": ""})
    assert code == 2 and "Traceback" not in err, err
    assert err.strip().splitlines()[-1].startswith("seqops tune: error: tune.storage: cannot"), err

    # A password written into a URI is refused, saying how to pass it instead.
    bad = tmp_path_factory.mktemp("bad")
    host = pg_url.split("@", 1)[1]
    write_params(bad / "params.yaml", {"tune": {"storage": f"postgresql://x:{pg_password}@{host}"}})
    code, err = seqops("tune", "--params", str(bad / "params.yaml"), env=credentials)
    assert code == 2 and "PGPASSWORD" in err and "tune.storage_env" in err, err
    inline = url.replace("://", f"://{ADMIN}:{mlflow_password}@")
    code, err = seqops("tune", env={**credentials, "MLFLOW_TRACKING_URI": inline})
    assert code == 2 and "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD" in err, err

    proc = run([DVC, "repro"], project, env=credentials)
    console.extend([proc.stdout, proc.stderr])

    # The run went where it should, reaching both servers with the environment's credentials.
    tune = yaml.safe_load((project / "reports" / "tune.json").read_text())
    assert tune["storage"] == pg_url.replace("postgresql://", "postgresql+psycopg2://")
    assert tune["complete"] >= 1
    for name, value in credentials.items():
        monkeypatch.setenv(name, value)
    client = MlflowClient(tracking_uri=url)
    parent = client.get_run(tune["parent_run_id"])
    assert parent.data.params["tune.storage"] == pg_url
    assert client.get_registered_model("seqops").name == "seqops"
    assert not (project / "mlflow.db").exists()

    dump = _pg_dump(pg_url, pg_password)
    assert b"seqops.worker" in dump  # the study is in there
    for password in (pg_password, mlflow_password):
        secret = password.encode()
        assert _files_holding(secret, project, server_root) == []
        assert secret not in dump
        assert [text for text in console if password in text] == []


@pytest.mark.slow
def test_an_unreachable_storage_server_is_one_line_naming_host_and_port(project: Path) -> None:
    port = _free_port()  # nothing listens there
    write_params(
        project / "params.yaml", {"tune": {"storage": f"postgresql://u@127.0.0.1:{port}/db"}}
    )
    run([SEQOPS, "prepare"], project)
    proc = run([SEQOPS, "tune"], project, check=False, env={"PGPASSWORD": "pw-never-shown"})
    assert proc.returncode == 2
    (line,) = proc.stderr.strip().splitlines()
    expected = (
        f"seqops tune: error: tune.storage: cannot connect to the database at 127.0.0.1:{port}"
    )
    assert line.startswith(expected), line
    assert "pw-never-shown" not in proc.stdout + proc.stderr
    assert not (project / "models" / "best_params.yaml").exists()
