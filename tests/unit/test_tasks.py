"""The `Task` interface's structural promises: one registry of task names, stages that never ask
which task they run, a torch-free serving side, and typed metadata that reads back as its
task's own type (bad files are a DataError naming them, never a traceback)."""

from __future__ import annotations

import ast
import importlib
import json
import pkgutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import get_args

import numpy as np
import pandas as pd
import pytest

import seqops.stages
import seqops.tasks
from seqops import onnx_contract as contract
from seqops.cli import main
from seqops.config import DataConfig, ForecastConfig, TaskName
from seqops.contracts import DataMeta, DataReport
from seqops.errors import DataError
from seqops.layout import Layout
from seqops.stages.prepare import write
from seqops.tasks import TASKS, get_task, read_bundle, read_data_report, read_meta
from seqops.tasks.base import Task
from seqops.tasks.parts.card import CardTask
from seqops.tasks.parts.evaluate import EvaluateTask
from seqops.tasks.parts.prepare import PrepareTask, get_prepare
from seqops.tasks.parts.release import ReleaseTask
from seqops.tasks.parts.serve import Codec, ServeTask, get_serve
from seqops.tasks.parts.train import TrainTask
from tests.unit.test_labeling_task import labeling_data

# -- (1) one registry ---------------------------------------------------------------------------


def test_config_task_names_and_the_registry_are_the_same_set() -> None:
    names = set(get_args(TaskName))
    assert names == set(TASKS), (
        f"only in config.TaskName: {sorted(names - set(TASKS))}; "
        f"only in seqops.tasks.TASKS: {sorted(set(TASKS) - names)}"
    )
    for name, task in TASKS.items():
        assert task.name == name and get_task(name) is task
        assert issubclass(task.meta_type, DataMeta)
        # the meta type's `task` field is the task's name, and defaults to it
        assert task.meta_type.model_fields["task"].default == name


def test_an_unknown_task_name_is_a_data_error_listing_the_known_ones() -> None:
    with pytest.raises(DataError) as err:
        get_task("no_such_task")
    assert "'no_such_task'" in str(err.value)
    assert all(name in str(err.value) for name in TASKS)


# -- (2) stages never ask which task they run ---------------------------------------------------

SRC = Path(seqops.__file__).resolve().parents[1]
STAGES = Path(seqops.stages.__file__).resolve().parent
#: Spelled out (not only read from TaskName) so a task added without listing it here still
#: has its name checked through `config.TaskName`.
TASK_NAMES = sorted(
    {"sequence_classification", "text_classification", "forecasting", "sequence_regression"}
    | set(get_args(TaskName))
)
#: Identifiers that betray a task branch: the old forecasting flag / module, the old text
#: preprocessing class.
FORBIDDEN_WORDS = ("forecasting", "TextPreprocessing")
#: Per-task classes of the pre-`Task` code, gone from src but still wrong in a stage.
LEGACY_CLASSES = {"TextPreprocessing", "ForecastPreprocessing", "ForecastTest"}


#: The per-stage interfaces every task's parts implement (`seqops.tasks.parts`).
PART_INTERFACES = (PrepareTask, TrainTask, EvaluateTask, ServeTask, ReleaseTask, CardTask)


def task_classes() -> set[str]:
    """Names of every task-specific class: `Task`, `DataMeta` and `Codec` subclasses defined in
    `seqops.tasks.*` and its packages (the interfaces themselves excluded), plus the legacy
    ones."""
    names = set(LEGACY_CLASSES)
    for info in pkgutil.walk_packages(seqops.tasks.__path__, "seqops.tasks."):
        module = importlib.import_module(info.name)
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, (Task, DataMeta, Codec))
                and value not in (Task, DataMeta, Codec, *PART_INTERFACES)
            ):
                names.add(value.__name__)
    return names


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of the docstring constants (prose may name a task; code may not)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if (
                body
                and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)
            ):
                found.add(id(body[0].value))
    return found


def _identifiers(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Name):
        return [node.id]
    if isinstance(node, ast.Attribute):
        return [node.attr]
    if isinstance(node, ast.arg):
        return [node.arg]
    if isinstance(node, ast.keyword) and node.arg:
        return [node.arg]
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [node.name]
    if isinstance(node, ast.alias):
        return [node.name, *([node.asname] if node.asname else [])]
    if isinstance(node, ast.ImportFrom) and node.module:
        return [node.module]
    return []


def _class_names(node: ast.AST) -> list[str]:
    """Class names in `isinstance`'s second argument (a name, `module.Name`, or a tuple)."""
    if isinstance(node, ast.Tuple):
        return [name for elt in node.elts for name in _class_names(elt)]
    if isinstance(node, ast.Name):
        return [node.id]
    if isinstance(node, ast.Attribute):
        return [node.attr]
    return []


def task_branches(source: str, filename: str, classes: set[str]) -> list[str]:
    """`file:line: why` for every task name literal, forbidden identifier and `isinstance` on a
    task-specific class in `source`."""
    tree = ast.parse(source, filename)
    docstrings = _docstrings(tree)
    found = []
    for node in ast.walk(tree):
        line = getattr(node, "lineno", None)
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in docstrings
        ):
            for name in TASK_NAMES:
                if name in node.value:
                    found.append(f"{filename}:{line}: task name {name!r} in {node.value!r}")
        for ident in _identifiers(node):
            for word in FORBIDDEN_WORDS:
                if word.lower() in ident.lower():
                    found.append(f"{filename}:{line}: identifier {ident!r} contains {word!r}")
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "isinstance"
            and len(node.args) == 2
        ):
            for name in _class_names(node.args[1]):
                if name in classes:
                    found.append(f"{filename}:{line}: isinstance(..., {name}) on a task class")
    return sorted(set(found), key=lambda v: (v.split(":")[0], int(v.split(":")[1]), v))


def test_the_scan_catches_each_kind_of_task_branch() -> None:
    classes = task_classes()
    assert {"SequenceClassification", "ForecastMeta", "TextCodec", "TextMeta"} <= classes
    bad = (
        '"""A stage about forecasting: prose may say so."""\n'  # 1: docstring, allowed
        'if cfg.data.task == "forecasting":\n'  # 2
        "    pass\n"
        "flag = meta.forecasting\n"  # 4
        "from seqops.tasks.forecasting import forecast_test\n"  # 5
        "pre = TextPreprocessing.load(path)\n"  # 6
        "if isinstance(meta, (ForecastMeta, int)):\n"  # 7
        "    pass\n"
        'print(f"text_classification: {x}")\n'  # 9
        "ok = isinstance(meta, DataMeta) and get_task(meta.task).output\n"  # 10: generic
    )
    found = task_branches(bad, "stage.py", classes)
    lines = sorted({int(v.split(":")[1]) for v in found})
    assert lines == [2, 4, 5, 6, 7, 9], "\n".join(found)
    assert "stage.py:7: isinstance(..., ForecastMeta) on a task class" in found


def test_no_stage_knows_which_task_it_runs() -> None:
    classes = task_classes()
    modules = sorted(STAGES.glob("*.py"))
    assert {m.stem for m in modules} >= {"prepare", "train", "evaluate", "export", "release"}
    found = [
        violation
        for module in modules
        for violation in task_branches(module.read_text(), str(module.relative_to(SRC)), classes)
    ]
    assert not found, (
        "stages must go through the Task interface (seqops.tasks), not branch on the task:\n"
        + "\n".join(found)
    )


# -- (3) the serving side is torch-free ---------------------------------------------------------


def assert_imports_without_torch(modules: list[str]) -> None:
    """Import `modules` in a fresh interpreter: torch and Lightning never loaded (the check of
    `tests.conftest.assert_predict_succeeds_without_torch`, for imports rather than a CLI
    command)."""
    script = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "print('torch' in sys.modules, 'lightning' in sys.modules)\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.stdout.split() == ["False", "False"], proc.stdout + proc.stderr


def test_serving_and_every_task_module_import_without_torch() -> None:
    task_modules = [
        info.name for info in pkgutil.iter_modules(seqops.tasks.__path__, "seqops.tasks.")
    ]
    assert {"seqops.tasks.base", "seqops.tasks.forecasting", "seqops.tasks.text"} <= set(
        task_modules
    )
    # Each task's seam and serve part: what `seqops predict` imports through `get_serve`.
    parts = [f"{type(task).__module__.rpartition('.')[0]}.{part}" for task in TASKS.values()
             for part in ("task", "serve")]  # fmt: skip
    assert_imports_without_torch(
        ["seqops.serving", "seqops.tasks", *task_modules, *parts, "seqops.contracts"]
    )


# -- (4) typed metadata round-trips, bad files are named -----------------------------------------


def _long_sequences(path: Path, label: Callable[[int], object], n: int = 24) -> Path:
    """`n` long-format sequences of 2 features, 4 to 9 steps, labelled `label(i)`."""
    rng = np.random.default_rng(0)
    rows = [
        {"id": f"s{i:02d}", "time": t, "a": float(rng.normal()), "b": float(rng.normal() + i % 2),
         "label": label(i)}
        for i in range(n)
        for t in range(4 + i % 6)
    ]  # fmt: skip
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def _classification(tmp: Path) -> DataConfig:
    path = _long_sequences(tmp / "seqs.csv", lambda i: "up" if i % 2 else "down")
    return DataConfig(dataset=None, path=path, val_fraction=0.25, test_fraction=0.25)


def _text(tmp: Path) -> DataConfig:
    words = {"pos": ["fine", "warm", "good"], "neg": ["dull", "cold", "bad"]}
    rows = [
        {"text": f"a {words[label][i % 3]} film {i}", "label": label}
        for i in range(24)
        for label in ("pos", "neg")
    ]
    path = tmp / "texts.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return DataConfig(task="text_classification", dataset=None, path=path)


def _forecasting(tmp: Path) -> DataConfig:
    t = np.arange(72)
    frame = pd.DataFrame(
        {
            "month": pd.date_range("2000-01-01", periods=len(t), freq="MS"),
            "y": 10 + 0.1 * t + np.sin(2 * np.pi * t / 12),
        }
    )
    path = tmp / "series.csv"
    frame.to_csv(path, index=False)
    return DataConfig(
        task="forecasting",
        dataset=None,
        path=path,
        time_column="month",
        forecast=ForecastConfig(lookback=12, horizon=3),
    )


def _regression(tmp: Path) -> DataConfig:
    path = _long_sequences(tmp / "seqs.csv", lambda i: 0.5 * i, n=30)
    return DataConfig(
        task="sequence_regression", dataset=None, path=path, val_fraction=0.2, test_fraction=0.2
    )


def _language_model(tmp: Path) -> DataConfig:
    folder = tmp / "documents"
    folder.mkdir()
    for i, name in enumerate(["one", "two", "three", "four"]):
        (folder / f"{name}.txt").write_text(f"A short text, number {i}.\nIt ends here.\n")
    return DataConfig(
        task="language_modeling",
        dataset=None,
        path=folder,
        val_documents=["three"],
        test_documents=["four"],
        block_tokens=16,
    )


#: Tiny raw data for each task's own prepare (the metadata is built by the code, not by hand).
DATA: dict[str, Callable[[Path], DataConfig]] = {
    "sequence_classification": _classification,
    "text_classification": _text,
    "forecasting": _forecasting,
    "sequence_regression": _regression,
    "sequence_labeling": labeling_data,
    "language_modeling": _language_model,
}


def test_every_task_has_round_trip_data() -> None:
    assert set(DATA) == set(TASKS)


@pytest.fixture(scope="module", params=sorted(TASKS))
def prepared(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """A task name and the project layout its prepare (and `stages.prepare.write`) filled."""
    name = request.param
    root = tmp_path_factory.mktemp(name)
    data = DATA[name](root)
    assert data.task == name
    result = get_prepare(name).prepare(data, seed=0)
    layout = Layout(root)
    write(result, layout)
    return name, result, layout, data


def test_read_meta_returns_the_tasks_own_type(prepared) -> None:  # type: ignore[no-untyped-def]
    name, result, layout, _ = prepared
    task = get_task(name)
    # the task's own type (a task with several inputs: the subclass of its type for the input)
    assert isinstance(result.meta, task.meta_type) and type(result.meta) is not DataMeta
    meta = read_meta(layout.processed_meta)
    assert type(meta) is type(result.meta)
    assert meta == result.meta
    report = read_data_report(layout.data_report)
    assert report.task == name and type(report) is not DataReport


def test_read_bundle_keeps_the_tasks_own_type(prepared) -> None:  # type: ignore[no-untyped-def]
    from seqops.onnx_export import make_bundle

    name, result, layout, data = prepared
    task = get_serve(name)
    bundle = make_bundle(result.meta, task, data, max_length=result.meta.max_train_length)
    path = layout.models / contract.PREPROCESSING_FILE
    bundle.write(path)
    raw = json.loads(path.read_text())
    assert raw["data"]["task"] == name
    assert set(raw) == {"data", "id_column", "time_column", "max_length", "onnx"}
    back = read_bundle(path)
    assert type(back.data) is type(result.meta)
    assert back == bundle
    # the bundle's metadata serialises as its own type, not as the DataMeta base
    assert raw["data"] == json.loads(result.meta.model_dump_json(exclude_none=True))


def _raw_meta(prepared) -> dict:  # type: ignore[no-untyped-def]
    _, _, layout, _ = prepared
    return json.loads(layout.processed_meta.read_text())


def test_a_meta_with_an_unknown_task_names_the_file(prepared, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "preprocessing.json"
    unknown = {**_raw_meta(prepared), "task": "no_such_task"}
    path.write_text(json.dumps(unknown))
    with pytest.raises(DataError) as err:
        read_meta(path)
    assert str(err.value).startswith(f"{path}: ") and "'no_such_task'" in str(err.value)
    # ... and as a bundle's `data`
    path.write_text(json.dumps({"data": unknown, "id_column": "id", "time_column": "t"}))
    with pytest.raises(DataError) as err:
        read_bundle(path)
    assert str(err.value).startswith(f"{path}: ") and "'no_such_task'" in str(err.value)


def test_a_meta_of_another_tasks_shape_names_the_file(prepared, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    name = prepared[0]
    other = next(n for n in sorted(TASKS) if n != name)
    path = tmp_path / "preprocessing.json"
    path.write_text(json.dumps({**_raw_meta(prepared), "task": other}))
    with pytest.raises(DataError) as err:
        read_meta(path)
    assert str(err.value).startswith(f"{path}: not a valid {get_task(other).meta_type.__name__}")


BAD_FILES = {
    "a list": "[]",
    "null": "null",
    "no task": json.dumps({"input": "x", "feature_names": ["a"], "label_names": []}),
    "task not a string": json.dumps({"task": 3}),
    "not JSON": "{",
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_a_malformed_meta_is_a_data_error_naming_the_file(tmp_path: Path, case: str) -> None:
    path = tmp_path / "preprocessing.json"
    path.write_text(BAD_FILES[case])
    with pytest.raises(DataError) as err:
        read_meta(path)
    assert str(err.value).startswith(f"{path}: ")


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_a_malformed_bundle_is_a_data_error_naming_the_file(tmp_path: Path, case: str) -> None:
    path = tmp_path / "preprocessing.json"
    path.write_text(BAD_FILES[case])
    with pytest.raises(DataError) as err:
        read_bundle(path)
    assert str(err.value).startswith(f"{path}: ")
    # the same file nested as a bundle's `data`
    if case != "not JSON":
        nested = {"data": json.loads(BAD_FILES[case]), "id_column": "id", "time_column": "t"}
        path.write_text(json.dumps(nested))
        with pytest.raises(DataError) as err:
            read_bundle(path)
        assert str(err.value).startswith(f"{path}: ")


def test_a_missing_meta_is_a_data_error_naming_the_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found"):
        read_meta(tmp_path / "preprocessing.json")


@pytest.mark.parametrize("case", ["a list", "null", "no task"])
def test_predict_on_a_malformed_bundle_exits_2_with_one_line(
    tmp_path: Path, case: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.unit.bundles import reseal

    (tmp_path / contract.PREPROCESSING_FILE).write_text(BAD_FILES[case])
    reseal(tmp_path)  # the integrity record vouches for it: the parser is what refuses it
    (tmp_path / "in.csv").write_text("id,time,a\ns,0,1.0\n")
    rc = main(["predict", "--model", str(tmp_path), "--input", str(tmp_path / "in.csv")])
    err = capsys.readouterr().err
    assert rc == 2
    reason = {
        "a list": "expected a JSON object, got list (re-run the stage)",
        "null": "expected a JSON object, got null (re-run the stage)",
        "no task": "no 'data' object (written by an older seqops? re-run export)",
    }[case]
    assert err.strip().splitlines() == [
        f"seqops predict: error: {tmp_path / contract.PREPROCESSING_FILE}: {reason}"
    ]


def test_the_stages_after_training_never_import_lightning() -> None:
    """evaluate, export and benchmark load the network without Lightning (its import alone
    costs seconds per stage); only training and tuning need it."""
    script = (
        "import sys\n"
        "import seqops.stages.evaluate, seqops.stages.export, seqops.stages.benchmark\n"
        "import seqops.latency, seqops.model.runtime\n"
        "print('lightning' in sys.modules)\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.stdout.split() == ["False"], proc.stdout + proc.stderr
