"""Credentials for the Optuna storage and the MLflow tracking store: from the environment only.

A password in `params.yaml` or in `MLFLOW_TRACKING_URI` would be copied into `dvc.lock`, DVC's
run cache, `models/run.json`, MLflow params and the console, so a URI holding one is refused
with a message saying how to pass it instead:

- PostgreSQL (`tune.storage`, a `postgresql://` tracking store): libpq reads `PGPASSWORD` or
  the password file `~/.pgpass` (`PGPASSFILE`); or `tune.storage_env` names an environment
  variable holding the whole Optuna storage URL, read at run time and never stored.
- An MLflow tracking server: `MLFLOW_TRACKING_USERNAME` / `MLFLOW_TRACKING_PASSWORD`, which
  MLflow reads itself.

    has_password(uri)    # a password in the user info (`USER:PASSWORD@HOST`) or `?password=`
    mask(uri)            # the same URI with the password as `***`: what may be shown
    rdb_url(uri)         # `postgresql://` on the installed psycopg2 driver
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

MASK = "***"

#: How to pass each kind of password instead of writing it into a URI.
STORAGE_ADVICE = (
    "put it in PGPASSWORD or the password file ~/.pgpass (PGPASSFILE), or the whole URL in an "
    "environment variable named by tune.storage_env"
)
TRACKING_ADVICE = (
    "put the user and password in MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD "
    "(or, for a PostgreSQL store, in PGPASSWORD or ~/.pgpass)"
)

#: The PostgreSQL driver seqops installs (the `postgres` extra); SQLAlchemy's default for a
#: bare `postgresql://` is psycopg 3, which is not installed.
POSTGRES_DRIVER = "postgresql+psycopg2"

_QUERY_SECRETS = ("password", "passwd", "pwd")


def has_password(uri: str) -> bool:
    """Whether `uri` carries a password: `user:PASSWORD@host`, or a `password=` query key."""
    if "://" not in uri:
        return False
    parts = urlsplit(uri)
    if parts.password:
        return True
    return any(k.lower() in _QUERY_SECRETS and v for k, v in parse_qsl(parts.query))


def mask(uri: str) -> str:
    """`uri` with its password (in the user info or the query) replaced by `***`."""
    if not has_password(uri):
        return uri
    parts = urlsplit(uri)
    netloc = parts.netloc
    if parts.password:
        userinfo, _, hostport = netloc.rpartition("@")
        netloc = f"{userinfo.split(':', 1)[0]}:{MASK}@{hostport}"
    query = urlencode(
        [(k, MASK if k.lower() in _QUERY_SECRETS else v) for k, v in parse_qsl(parts.query)],
        safe="*",
    )
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def refusal(where: str, uri: str, advice: str) -> str:
    """The one-line message refusing `uri` (from `where`) because it holds a password."""
    return (
        f"{where} = {mask(uri)!r} holds a password, which would be copied into outputs, "
        f"MLflow and the logs: remove it from the URI and {advice}"
    )


def rdb_url(url: str) -> str:
    """A bare `postgresql://` URL pointed at the installed psycopg2 driver; others unchanged."""
    scheme, sep, rest = url.partition("://")
    if sep and scheme == "postgresql":
        return f"{POSTGRES_DRIVER}://{rest}"
    return url


def endpoint(url: str) -> str:
    """`host:port` of a URL, for messages (never its user or password)."""
    parts = urlsplit(url)
    host = parts.hostname or "localhost"
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    default = 5432 if parts.scheme.startswith("postgresql") else None
    return f"{host}:{port or default}" if (port or default) else host


def connection_error(where: str, url: str, reason: object) -> str:
    """One line saying the database at `url` could not be reached, and the driver's reason
    (its first line, with the password masked should the driver have echoed it)."""
    first = next((line.strip() for line in str(reason).splitlines() if line.strip()), "")
    password = urlsplit(url).password
    if password:
        first = first.replace(password, MASK)
    return f"{where}: cannot connect to the database at {endpoint(url)}: {first}"


#: Schemes of stores reached over the network (a `+driver` suffix allowed), with their ports.
_DEFAULT_PORTS = {"http": 80, "https": 443, "postgresql": 5432, "mysql": 3306, "mssql": 1433}

#: Seconds a stage waits for a store's port to answer before it refuses to start.
REACH_TIMEOUT_S = 5.0


def unreachable(url: str, timeout: float = REACH_TIMEOUT_S) -> str | None:
    """Why the server of network store `url` cannot be reached (None when its port accepts a
    connection, or when `url` is no network store): a TCP connect with a `timeout`, so a
    stopped server fails a stage in seconds, not after MLflow's minutes of HTTP retries.
    The reason names `host:port`, never the user or password."""
    import socket

    parts = urlsplit(url)
    scheme = parts.scheme.split("+")[0]
    if scheme not in _DEFAULT_PORTS:
        return None
    try:
        port = parts.port or _DEFAULT_PORTS[scheme]
    except ValueError:
        return f"the port of {parts.hostname or '?'} is not a number"
    host = parts.hostname
    if not host:
        return "the URI names no host"
    where = f"{f'[{host}]' if ':' in host else host}:{port}"
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except TimeoutError:
        return f"{where} did not answer within {timeout:g} s"
    except OSError as exc:
        return f"{where} cannot be reached ({exc.strerror or type(exc).__name__})"


#: Options of DVC remotes that hold a secret (s3, gs, azure, ssh, http, webdav, gdrive, oss):
#: in `.dvc/config` they are committed to git; `dvc remote modify --local` writes them to the
#: untracked `.dvc/config.local` instead.
DVC_SECRET_OPTIONS = frozenset(
    {
        "password",
        "access_key_id",
        "secret_access_key",
        "session_token",
        "account_key",
        "sas_token",
        "connection_string",
        "client_secret",
        "gdrive_client_secret",
        "key_secret",
        "oss_key_secret",
        "oss_key_id",
        "token",
        "custom_auth_header_value",
        "passphrase",
    }
)

#: Largest `.dvc/config` read (a few remotes' worth).
_MAX_DVC_CONFIG = 1 << 20


def tracked_dvc_secrets(root: Path) -> list[str]:
    """Warnings, one line each, for the secret options of DVC remotes (or of `core`) written
    in `root/.dvc/config`, the file git tracks, with the `dvc remote modify --local` command
    that moves each to `.dvc/config.local`. The values are never read into a message."""
    import configparser

    config = root / ".dvc" / "config"
    if not config.is_file() or config.stat().st_size > _MAX_DVC_CONFIG:
        return []
    parser = configparser.RawConfigParser(strict=False, interpolation=None)
    try:
        parser.read_string(config.read_text(encoding="utf-8"), source=str(config))
    except (configparser.Error, UnicodeDecodeError):
        return []
    found = []
    for section in parser.sections():
        kind, _, name = section.strip("'\" ").partition(" ")
        name = name.strip("'\" ")
        for option in parser.options(section):
            if option.lower() not in DVC_SECRET_OPTIONS or not parser.get(section, option):
                continue
            if kind == "remote" and name:
                fix = f"dvc remote modify --local {name} {option} <value>"
                where = f"remote {name!r}"
            else:
                fix = f"dvc config --local {kind}.{option} <value>"
                where = f"section {kind!r}"
            found.append(
                f"{config}: {where} holds {option!r}, which git commits with the repository; "
                f"remove it there and set it with `{fix}` (.dvc/config.local is not tracked)"
            )
    return found
