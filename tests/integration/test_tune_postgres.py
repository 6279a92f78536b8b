"""Two tune workers share one study in a real PostgreSQL server (started on 127.0.0.1 by the
`postgres_url` fixture in tests/integration/conftest.py; skipped, saying why, where the
PostgreSQL binaries are missing).
"""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from tests.conftest import BIN, run
from tests.integration.test_tune import _params

SEQOPS = str(BIN / "seqops")


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
