"""Shared fixtures: tiny configs and a project directory that runs the real pipeline in seconds."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

#: Overrides that shrink a JapaneseVowels run to a few seconds.
TINY: dict[str, Any] = {
    "model": {"hidden_size": 8, "num_layers": 1},
    # One pass per epoch, one model (their own tests cover epoch_examples and ensemble).
    "train": {"max_epochs": 3, "batch_size": 64, "patience": 3, "epoch_examples": 0, "ensemble": 1},
    # One trial after another: the tests of side-by-side trials set tune.workers themselves;
    # no cross-validated choice before the search (its own tests set tune.choose).
    "tune": {"n_trials": 2, "max_epochs": 2, "workers": 1, "choose": {}},
    "benchmark": {"n_calls": 100, "warmup": 10, "throughput_calls": 2},
    # A 3-epoch model is not a good model (nor as good as the classical baseline); the gate's
    # own tests set real thresholds and turn the baseline check back on.
    "release": {"min_metric": 0.0, "baseline_alpha": None},
}


#: Seconds each of the slowest test files takes on the idle 2-core machine (the sum of its
#: tests' durations in `pytest --junitxml`), for the order below; a file not listed counts
#: 0.05 s a test. A stale figure only costs speed.
FILE_SECONDS: dict[str, float] = {
    "tests/integration/test_promotion.py": 97,
    "tests/integration/test_regression_pipeline.py": 97,
    "tests/integration/test_tune.py": 100,
    "tests/integration/test_forecast_pipeline.py": 84,
    "tests/integration/test_text_pipeline.py": 78,
    "tests/integration/test_registry_server.py": 76,
    "tests/integration/test_experiments.py": 75,
    "tests/integration/test_bad_inputs.py": 68,
    "tests/integration/test_default_project.py": 59,
    "tests/integration/test_ddp.py": 49,
    "tests/integration/test_secrets.py": 47,
    "tests/integration/test_labeling_pipeline.py": 41,
    "tests/integration/test_language_model_pipeline.py": 30,
    "tests/integration/test_ensemble_pipeline.py": 27,
    "tests/integration/test_serving_mlflow.py": 21,
    "tests/integration/test_tune_postgres.py": 21,
    "tests/integration/test_determinism.py": 14,
    "tests/unit/model/test_refit.py": 9,
    "tests/integration/test_mlflow_story.py": 7,
    "tests/unit/model/test_ensemble.py": 6,
}


#: The work unit of the test files that take `built_project` (see `pytest_xdist_make_scheduler`).
BUILT_GROUP = "files taking built_project"


def built_project_files() -> frozenset[str]:
    """The test files (paths from the repository root, as in node ids) with a test that takes
    the `built_project` fixture."""
    takes = re.compile(r"def test_\w+\([^)]*\bbuilt_project\b")
    return frozenset(
        path.relative_to(REPO).as_posix()
        for path in (REPO / "tests").rglob("test_*.py")
        if takes.search(path.read_text(encoding="utf-8"))
    )


def _work_unit(path: str, built: frozenset[str]) -> str:
    return BUILT_GROUP if path in built else path


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The slowest work units first, each unit's tests in their own order. `make test` hands
    whole units to its workers (`--dist loadfile --no-loadscope-reorder`, which keeps this
    order): longest first, the short files fill in at the end, so the workers finish together
    rather than one of them starting a two-minute file when the other has nothing left."""
    built = built_project_files()
    counts: dict[str, int] = {}
    for item in items:
        counts[item.location[0]] = counts.get(item.location[0], 0) + 1
    seconds: dict[str, float] = {}
    for path, n in counts.items():
        unit = _work_unit(path, built)
        seconds[unit] = seconds.get(unit, 0.0) + FILE_SECONDS.get(path, 0.05 * n)
    items.sort(key=lambda item: -seconds[_work_unit(item.location[0], built)])  # stable


@pytest.hookimpl(optionalhook=True, tryfirst=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """`--dist loadfile`, with every file that takes `built_project` in one work unit: the
    tiny project is built by one worker (about 40 s of a core) instead of by each."""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    built = built_project_files()

    class BuiltProjectOnOneWorker(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return _work_unit(super()._split_scope(nodeid), built)

    return BuiltProjectOnOneWorker(config, log)


def merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """`extra` over `base`, mapping by mapping; an empty mapping replaces (`choose: {}`)."""
    out = dict(base)
    for key, value in extra.items():
        nested = isinstance(value, dict) and value and isinstance(out.get(key), dict)
        out[key] = merge(out[key], value) if nested else value
    return out


def preset_params(name: str) -> dict[str, Any]:
    """params.yaml with the preset `params/<name>.yaml` applied, as `seqops preset` writes it."""
    from seqops import presets

    return presets.merged(REPO / "params.yaml", REPO / "params" / f"{name}.yaml")


def write_params(path: Path, extra: dict[str, Any] | None = None) -> Path:
    base = yaml.safe_load((REPO / "params.yaml").read_text())
    path.write_text(yaml.safe_dump(merge(merge(base, TINY), extra or {}), sort_keys=False))
    return path


def run_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["DVC_NO_ANALYTICS"] = "1"
    return env


#: `seqops` commands that read a bundle, the reports or the registry: `run` calls them in this
#: process (the console script's own `main`, in the project's directory and environment),
#: which spares each call about 3 CPU-s of importing MLflow and pandas again. Stages, which DVC runs
#: as processes, and any command given extra environment (a SIGKILL point) get a process.
IN_PROCESS = frozenset({"promote", "release", "lineage", "predict"})


def run(
    cmd: list[str], cwd: Path, check: bool = True, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a command with the test environment (plus `env`); raise on failure when `check`."""
    if Path(cmd[0]) == BIN / "seqops" and len(cmd) > 1 and cmd[1] in IN_PROCESS and not env:
        proc = _seqops_in_process(cmd, cwd)
    else:
        proc = subprocess.run(
            cmd, cwd=cwd, env={**run_env(), **(env or {})}, capture_output=True, text=True
        )
    if check and proc.returncode != 0:
        raise AssertionError(f"{cmd} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def _seqops_in_process(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """`seqops <cmd[1:]>` through `seqops.cli.main` in `cwd` with `run_env()`, stdout and
    stderr captured, and the process state it touches (environment, working directory,
    MLflow's tracking and registry URIs, active experiment and run, cached stores) put back
    afterwards."""
    import io

    import mlflow
    from mlflow.tracking import fluent
    from mlflow.tracking._model_registry import utils as registry_utils
    from mlflow.tracking._tracking_service import utils as tracking_utils

    from seqops.cli import main

    saved_env, saved_cwd = dict(os.environ), Path.cwd()
    saved = (
        tracking_utils._tracking_uri,
        registry_utils._registry_uri,
        fluent._active_experiment_id,
    )
    out, err = io.StringIO(), io.StringIO()
    forget_mlflow_stores()
    env = run_env()
    os.environ.clear()
    os.environ.update(env)
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(cmd[1:])
            except SystemExit as exc:  # argparse
                code = exc.code if isinstance(exc.code, int) else 2
    finally:
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
        while mlflow.active_run():
            mlflow.end_run()
        tracking_utils._tracking_uri, registry_utils._registry_uri = saved[:2]
        fluent._active_experiment_id = saved[2]
        fluent._last_active_run_id.set(None)
        forget_mlflow_stores()
    return subprocess.CompletedProcess(cmd, code, out.getvalue(), err.getvalue())


def assert_predict_succeeds_without_torch(args: list[str]) -> None:
    """Run `seqops <args>` in a fresh interpreter: exit 0, torch and Lightning never loaded,
    nor MLflow for a local bundle (a `models:/` URI needs it to reach the registry)."""
    script = (
        "import sys\n"
        "from seqops.cli import main\n"
        f"rc = main({args!r})\n"
        "print(rc, 'torch' in sys.modules, 'lightning' in sys.modules, 'mlflow' in sys.modules)\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    registry = any(str(arg).startswith("models:/") for arg in args)
    expected = ["0", "False", "False", str(registry)]
    assert proc.stdout.split() == expected, proc.stdout + proc.stderr


SERVER_START_TIMEOUT_S = 120


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def running_server(
    cmd: list[str], cwd: Path, env: dict[str, str], ready_path: str, log_file: Path
) -> Iterator[str]:
    """Start `cmd` (which must listen on the port its `--port`/`-p` names) in its own session,
    wait until `ready_path` answers 200 and yield the base URL; kill the session afterwards
    (MLflow's servers fork workers)."""
    port = cmd[cmd.index("--port" if "--port" in cmd else "-p") + 1]
    log = log_file.open("w")
    proc = subprocess.Popen(
        cmd, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"server exited ({proc.returncode}):\n{log_file.read_text()}")
            try:
                with urllib.request.urlopen(f"{base}{ready_path}", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"server not up in {SERVER_START_TIMEOUT_S}s:\n{log_file.read_text()}")
            time.sleep(0.5)
        yield base
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


@contextlib.contextmanager
def serve_model(root: Path, model_uri: str) -> Iterator[str]:
    """`mlflow models serve` for `model_uri` (tracking store `root/mlflow.db`) on a free
    127.0.0.1 port; yields its base URL and kills the server's whole session afterwards."""
    env = run_env()
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{root / 'mlflow.db'}"
    cmd = [str(BIN / "mlflow"), "models", "serve", "-m", model_uri, "--env-manager", "local",
           "-h", "127.0.0.1", "-p", str(_free_port())]  # fmt: skip
    with running_server(cmd, root, env, "/ping", root / "server.log") as base:
        yield base


def invoke(base: str, frame: pd.DataFrame) -> tuple[int, dict[str, Any]]:
    """POST `frame` to the server's /invocations (dataframe_split); status and JSON body."""
    body = json.dumps({"dataframe_split": json.loads(frame.to_json(orient="split", index=False))})
    request = urllib.request.Request(
        f"{base}/invocations", body.encode(), {"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def make_project(root: Path) -> Path:
    """A git + DVC project at `root` with this repo's dvc.yaml, code, data/raw/, presets and
    tiny params."""
    shutil.copytree(REPO / "src", root / "src", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "dvc.yaml", root / "dvc.yaml")
    shutil.copy(REPO / ".gitignore", root / ".gitignore")
    shutil.copytree(REPO / "data" / "raw", root / "data" / "raw")
    shutil.copytree(REPO / "params", root / "params")
    write_params(root / "params.yaml")
    run(["git", "init", "-q"], root)
    run([str(BIN / "dvc"), "init", "-q"], root)
    shutil.copy(REPO / ".dvcignore", root / ".dvcignore")
    run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "add", "-A"], root)
    run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init"], root)
    return root


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A git + DVC project in a temp dir with this repo's dvc.yaml, code, data/raw/ and tiny
    params, nothing run yet."""
    return make_project(tmp_path)


@pytest.fixture(scope="session")
def _built_snapshot(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The tiny project after one whole `dvc repro`, built once per test process: the project
    path and a pristine copy of it (`repro.log` beside them holds that run's output)."""
    root = tmp_path_factory.mktemp("built")
    built = make_project(root / "project")
    log = run([str(BIN / "dvc"), "repro"], built).stdout
    (root / "repro.log").write_text(log)
    snapshot = root / "snapshot"
    shutil.copytree(built, snapshot, symlinks=True)
    return built, snapshot


@pytest.fixture
def built_project(_built_snapshot: tuple[Path, Path]) -> Iterator[Path]:
    """The tiny project right after its first `dvc repro` (uncommitted, as `project` would be).

    Restored from the pristine copy at the path it was built in, because MLflow's store, the
    Optuna journal and `models/run.json` hold absolute paths; a test may change it freely."""
    built, snapshot = _built_snapshot
    forget_mlflow_stores()
    shutil.rmtree(built, ignore_errors=True)
    shutil.copytree(snapshot, built, symlinks=True)
    yield built
    forget_mlflow_stores()


def forget_mlflow_stores() -> None:
    """Drop the stores MLflow caches per URI in this process, with their SQLAlchemy engines: a
    pooled connection would go on reading a replaced `mlflow.db`'s old inode."""
    if "mlflow" not in sys.modules:
        return
    from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore as Registry
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore as Tracking
    from mlflow.tracking._model_registry.registry import ModelRegistryStoreRegistry
    from mlflow.tracking._tracking_service.registry import TrackingStoreRegistry

    TrackingStoreRegistry._get_store_with_resolved_uri.cache_clear()
    ModelRegistryStoreRegistry._get_store_with_resolved_uri.cache_clear()
    for store in (Tracking, Registry):
        while store._engine_map:
            store._engine_map.popitem()[1].dispose()


def built_repro_log(project: Path) -> str:
    """What the first `dvc repro` of `built_project` printed."""
    return (project.parent / "repro.log").read_text()
