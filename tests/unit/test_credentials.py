"""Passwords never come from params or URIs: refused with a message saying how to pass them,
masked wherever a URI is shown; a bare `postgresql://` runs on the installed psycopg2."""

from __future__ import annotations

from pathlib import Path

import pytest

from seqops import credentials
from seqops.config import TrackingConfig, load_config
from seqops.errors import ConfigError
from seqops.tracking import resolve_uri
from seqops.tuning.study import storage_spec
from tests.conftest import write_params

SECRET = "s3cretPW"


@pytest.mark.parametrize(
    ("uri", "masked"),
    [
        (f"postgresql://u:{SECRET}@db.example.org:5433/optuna", "postgresql://u:***@db.example.org:5433/optuna"),
        (f"postgresql+psycopg2://u:{SECRET}@h/db", "postgresql+psycopg2://u:***@h/db"),
        (f"https://alice:{SECRET}@mlflow.example.org", "https://alice:***@mlflow.example.org"),
        (f"postgresql://u@h/db?sslmode=require&password={SECRET}", "postgresql://u@h/db?sslmode=require&password=***"),
    ],
)  # fmt: skip
def test_a_password_is_found_and_masked(uri: str, masked: str) -> None:
    assert credentials.has_password(uri)
    assert credentials.mask(uri) == masked
    assert SECRET not in credentials.mask(uri)


@pytest.mark.parametrize(
    "uri",
    [
        "postgresql://u@h/db",
        "postgresql://u:@h/db",
        "http://127.0.0.1:5000",
        "sqlite:///mlflow.db",
        "optuna/study.journal",
    ],
)
def test_uris_without_a_password_are_kept_as_they_are(uri: str) -> None:
    assert not credentials.has_password(uri)
    assert credentials.mask(uri) == uri


def test_a_bare_postgresql_url_gets_the_installed_driver() -> None:
    assert credentials.rdb_url("postgresql://u@h:5/db") == "postgresql+psycopg2://u@h:5/db"
    assert credentials.rdb_url("postgresql+psycopg2://u@h/db") == "postgresql+psycopg2://u@h/db"
    assert credentials.rdb_url("sqlite:///x.db") == "sqlite:///x.db"


def test_the_unreachable_message_names_host_and_port_but_no_password() -> None:
    url = f"postgresql+psycopg2://u:{SECRET}@10.0.0.7/db"
    line = credentials.connection_error("tune.storage", url, f"refused {SECRET}\n\tIs it up?")
    assert line == "tune.storage: cannot connect to the database at 10.0.0.7:5432: refused ***"


def _load(tmp_path: Path, extra: dict) -> ConfigError:
    with pytest.raises(ConfigError) as err:
        load_config(write_params(tmp_path / "params.yaml", extra))
    assert SECRET not in str(err.value)
    return err.value


def test_a_storage_password_in_params_is_refused_saying_how_to_pass_it(tmp_path: Path) -> None:
    err = _load(tmp_path, {"tune": {"storage": f"postgresql://u:{SECRET}@h/db"}})
    assert "tune.storage: holds a password" in str(err) and SECRET not in str(err)
    assert "PGPASSWORD" in str(err) and "~/.pgpass" in str(err)
    assert "tune.storage_env" in str(err)


def test_a_tracking_password_in_params_is_refused_saying_how_to_pass_it(tmp_path: Path) -> None:
    err = _load(tmp_path, {"tracking": {"uri": f"http://alice:{SECRET}@mlflow:5000"}})
    assert "tracking.uri: holds a password" in str(err) and SECRET not in str(err)
    assert "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD" in str(err)


def test_storage_and_storage_env_together_are_refused(tmp_path: Path) -> None:
    err = _load(tmp_path, {"tune": {"storage": "postgresql://u@h/db", "storage_env": "X"}})
    assert "tune.storage and tune.storage_env are both set" in str(err)


def test_a_password_in_mlflow_tracking_uri_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://alice:{SECRET}@mlflow:5000")
    with pytest.raises(ConfigError) as err:
        resolve_uri(TrackingConfig())
    message = str(err.value)
    assert message.startswith("MLFLOW_TRACKING_URI = 'http://alice:***@mlflow:5000' holds a")
    assert "MLFLOW_TRACKING_USERNAME" in message and SECRET not in message
    assert "\n" not in message


def test_tracking_uris_without_a_password_resolve(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "postgresql://alice@db/mlflow")
    assert resolve_uri(TrackingConfig()) == "postgresql+psycopg2://alice@db/mlflow"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    assert resolve_uri(TrackingConfig()) == "http://127.0.0.1:5000"


def test_the_storage_url_can_come_whole_from_a_named_environment_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = load_config(write_params(tmp_path / "p.yaml", {"tune": {"storage_env": "STUDY_DB"}}))
    monkeypatch.setenv("STUDY_DB", f"postgresql://u:{SECRET}@h/db")
    assert storage_spec(cfg.tune, tmp_path, "s") == f"postgresql+psycopg2://u:{SECRET}@h/db"
    monkeypatch.delenv("STUDY_DB")
    with pytest.raises(ConfigError, match="the environment variable STUDY_DB is not set"):
        storage_spec(cfg.tune, tmp_path, "s")


def _dvc_config(root: Path, text: str) -> Path:
    (root / ".dvc").mkdir(exist_ok=True)
    (root / ".dvc" / "config").write_text(text)
    return root


def test_remote_secrets_in_the_tracked_dvc_config_are_named_never_shown(tmp_path: Path) -> None:
    root = _dvc_config(
        tmp_path,
        "[core]\n    remote = storage\n"
        "['remote \"storage\"']\n    url = s3://bucket/seqops\n"
        f"    access_key_id = AKIA{SECRET}\n    secret_access_key = {SECRET}\n"
        "['remote \"web\"']\n    url = https://dvc.example.org\n    user = bob\n"
        f"    password = {SECRET}\n",
    )
    found = credentials.tracked_dvc_secrets(root)
    assert len(found) == 3, found
    assert all(SECRET not in line and "\n" not in line for line in found)
    assert "dvc remote modify --local storage secret_access_key <value>" in found[1]
    assert "remote 'web' holds 'password'" in found[2]


@pytest.mark.parametrize(
    "text",
    [
        "[core]\n    remote = storage\n['remote \"storage\"']\n    url = s3://bucket/seqops\n",
        "not an ini file at all [[[",
        "",
    ],
)
def test_a_dvc_config_without_secrets_gives_no_warning(tmp_path: Path, text: str) -> None:
    assert credentials.tracked_dvc_secrets(_dvc_config(tmp_path, text)) == []
    assert credentials.tracked_dvc_secrets(tmp_path / "elsewhere") == []


def test_seqops_warns_on_stderr_and_still_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from seqops.cli import main

    _dvc_config(tmp_path, f"['remote \"s\"']\n    url = s3://b/x\n    password = {SECRET}\n")
    (tmp_path / "params.yaml").write_text("seed: 1\nseed: 2\n")  # refused after the warning
    monkeypatch.chdir(tmp_path)
    assert main(["prepare"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("seqops prepare: warning: ") and "'password'" in err[0], err
    assert err[1].startswith("seqops prepare: error: "), err
    assert SECRET not in "\n".join(err)
