"""Tasks do not import each other: what two tasks share lives in a module that is not a task
(`seqops.tasks.base`, `seqops.tasks.classifier`, `seqops.tasks.long_format`, `seqops.stats`),
so changing one task never changes another's code, nor the import closure of its stages."""

from __future__ import annotations

import ast
from pathlib import Path

from seqops.tasks import TASKS

SRC = Path(__file__).resolve().parents[2] / "src"


def _task_modules() -> dict[str, str]:
    """Task name → the dotted module (or package) that holds it."""
    found = {}
    for name, task in TASKS.items():
        module = type(task).__module__
        parts = module.split(".")
        # seqops.tasks.<task>.<part> is a task split into a package: the package is the task.
        found[name] = ".".join(parts[:3]) if len(parts) > 3 else module
    return found


def _imports(path: Path) -> set[str]:
    """Every module `path` imports, at module level or inside functions, type-only ones too."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _files(module: str) -> list[Path]:
    path = SRC / Path(*module.split("."))
    return sorted(path.rglob("*.py")) if path.is_dir() else [path.with_suffix(".py")]


def test_no_task_imports_another_task() -> None:
    modules = _task_modules()
    assert len(set(modules.values())) == len(modules), modules  # one module or package each
    found = []
    for name, module in modules.items():
        others = {m for other, m in modules.items() if other != name}
        for path in _files(module):
            for imported in _imports(path):
                hits = [o for o in others if imported == o or imported.startswith(f"{o}.")]
                found += [f"{path.relative_to(SRC)} ({name}) imports {o}" for o in hits]
    assert not found, "\n".join(sorted(set(found)))


def test_the_scan_sees_an_import_of_another_task(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from seqops.tasks.classification import padded_panel\n")
    assert "seqops.tasks.classification" in _imports(module)


#: Names only the sequence-labeling task may use: its name, its classes, its data formats.
LABELING_WORDS = ("sequence_labeling", "SequenceLabeling", "LabelingMeta", "conll", "wnut")


def test_no_module_outside_the_tasks_names_the_labeling_task() -> None:
    """Per-step support outside `seqops.tasks` is generic (per-step heads, masked losses, CRF,
    Viterbi, ONNX time axes); only `config.py`, which declares every task name and its params,
    may name the task."""
    package = SRC / "seqops"
    found = [
        f"{path.relative_to(SRC)}: {word}"
        for path in sorted(package.rglob("*.py"))
        if "tasks" not in path.relative_to(package).parts and path.name != "config.py"
        for word in LABELING_WORDS
        if word.lower() in path.read_text().lower()
    ]
    assert not found, "\n".join(found)
