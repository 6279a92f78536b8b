"""Two tune workers share one study in a real PostgreSQL server (started here, on 127.0.0.1).

The server comes from the PostgreSQL binaries on PATH or under /usr/lib/postgresql (CI installs
them with apt); the test is skipped, saying why, only where they are missing.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from tests.conftest import BIN, run
from tests.integration.test_tune import _params

SEQOPS = str(BIN / "seqops")


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    return str(candidates[-1]) if candidates else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A throwaway PostgreSQL cluster on a free port; yields its SQLAlchemy URL."""
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
        [*prefix, initdb, "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"],
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
        yield f"postgresql+psycopg2://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            [*prefix, pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop"],
            check=False,
            capture_output=True,
        )
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.slow
@pytest.mark.postgres
def test_two_workers_finish_exactly_n_trials_in_one_postgres_study(
    project: Path, postgres_url: str
) -> None:
    n_trials = 6
    _params(project, n_trials=n_trials, storage=postgres_url)
    run([SEQOPS, "prepare"], project)
    run([SEQOPS, "tune", "--workers", "2"], project)

    report = json.loads((project / "reports" / "tune.json").read_text())
    assert report["storage"] == postgres_url.replace("postgres@", "postgres@")  # no password
    assert not (project / "optuna").exists()  # nothing went to the default journal file
    study = optuna.load_study(study_name=report["study"], storage=postgres_url)
    trials = study.get_trials()
    assert sorted(t.number for t in trials) == list(range(n_trials))  # none lost or doubled
    assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)
    workers = {t.user_attrs["seqops.worker"] for t in trials}
    assert len(workers) == 2  # both processes took trials
    assert report["n_trials"] == n_trials
    assert report["complete"] + report["pruned"] == n_trials

    # A second run of the same search finds the budget spent and runs nothing.
    again = run([SEQOPS, "tune", "--workers", "2"], project)
    assert f"{n_trials} finished trials kept, 0 orphaned marked failed, 0 to run" in again.stdout
    assert len(study.get_trials()) == n_trials
