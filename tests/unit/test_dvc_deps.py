"""dvc.yaml's code deps are exactly what each stage imports, so `dvc repro` never keeps a stale
output after a code change and never reruns a stage for code it does not run.

Every stage's `cmd` is `seqops <name>`, which runs the module `seqops.stages.<name>`. Its
import closure is derived statically (`ast`) over `src/seqops/`:

- every `import seqops...`, `from seqops... import ...` and relative import counts, at module
  level and inside functions (a lazy import is a real dep), except in `if TYPE_CHECKING:`;
- `from seqops.x import y` where `y` is a submodule resolves to the submodule's file;
- a string literal naming a seqops module (`python -m seqops.latency`) counts as an import;
- package `__init__.py` files are deps: importing `seqops.data.windows` runs
  `seqops/__init__.py` and `seqops/data/__init__.py` first, and whatever they import. A
  directory dep (`src/seqops/model`) stands for every .py file under it, `__init__.py` included;
- `seqops/cli.py`, the `seqops` entry point shared by every stage, only dispatches to the stage
  module and is not a dep.

A stage's deps under `src/` must equal that closure; on failure the message lists the missing
and the extra files and the deps a correct dvc.yaml holds. Stage modules must not import other
stage modules (shared code belongs in the library).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
SRC = REPO / "src"
PACKAGE = "seqops"
STAGES_PACKAGE = f"{PACKAGE}.stages"


@cache
def modules() -> dict[str, Path]:
    """Every module under src/seqops by dotted name; a package maps to its __init__.py."""
    found: dict[str, Path] = {}
    for path in sorted((SRC / PACKAGE).rglob("*.py")):
        parts = path.relative_to(SRC).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def is_package(module: str) -> bool:
    return modules()[module].name == "__init__.py"


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _runtime_nodes(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node, without the bodies of `if TYPE_CHECKING:` blocks (their `else` runs)."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
        else:
            stack.extend(ast.iter_child_nodes(node))


def _from_base(module: str, node: ast.ImportFrom) -> str:
    """The absolute module a `from ... import` reads from (relative imports resolved)."""
    if not node.level:
        return node.module or ""
    package = module.split(".") if is_package(module) else module.split(".")[:-1]
    anchor = package[: len(package) - node.level + 1]
    return ".".join([*anchor, *([node.module] if node.module else [])])


@cache
def imports(module: str) -> frozenset[str]:
    """The seqops modules (packages included) that running `module` imports or runs by name."""
    tree = ast.parse(modules()[module].read_text(), str(modules()[module]))
    targets: set[str] = set()
    for node in _runtime_nodes(tree):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _from_base(module, node)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                targets.add(sub if sub in modules() else base)
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and node.value in modules()
            and not is_package(node.value)
        ):
            targets.add(node.value)
    ours = {t for t in targets if t == PACKAGE or t.startswith(f"{PACKAGE}.")}
    unknown = ours - modules().keys()
    assert not unknown, f"{module} imports {sorted(unknown)}, not modules under src/{PACKAGE}"
    return frozenset(ours)


def closure(root: str) -> dict[str, str | None]:
    """Every module running `root` runs: its imports, directly or transitively, and the
    packages holding each (run first). Each maps to the module that first brought it in
    (None for `root`): the chain that explains each dep."""
    parents: dict[str, str | None] = {root: None}
    queue = [root]
    while queue:
        module = queue.pop(0)
        package = module.rpartition(".")[0]
        for target in sorted(imports(module) | ({package} if package else set())):
            if target not in parents:
                parents[target] = module
                queue.append(target)
    return parents


def chain(parents: dict[str, str | None], module: str) -> str:
    links = [module]
    while (parent := parents[links[-1]]) is not None:
        links.append(parent)
    return " -> ".join(reversed(links))


def rel(path: Path) -> str:
    return path.relative_to(REPO).as_posix()


def stage_closure(stage: str) -> dict[str, str | None]:
    module = f"{STAGES_PACKAGE}.{stage}"
    if module not in modules():
        pytest.fail(f"stage '{stage}': no module src/{PACKAGE}/stages/{stage}.py", pytrace=False)
    return closure(module)


def listed_files(deps: list[str]) -> set[str]:
    """The .py files a stage's `src/` deps stand for (a directory: every .py file under it);
    an entry that is no file or directory stands for itself."""
    files: set[str] = set()
    for dep in deps:
        path = REPO / dep
        if path.is_dir():
            files.update(rel(p) for p in path.rglob("*.py"))
        else:
            files.add(dep)
    return files


def _dep_path(entry: str | dict[str, Any]) -> str:
    return entry if isinstance(entry, str) else next(iter(entry))


def dvc_stages() -> dict[str, dict[str, Any]]:
    stages: dict[str, dict[str, Any]] = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    return stages


STAGES = sorted(dvc_stages())


def test_every_stage_runs_its_own_module() -> None:
    problems = []
    for name, stage in dvc_stages().items():
        if stage.get("cmd") != f"{PACKAGE} {name}":
            problems.append(f"{name}: cmd is {stage.get('cmd')!r}, expected '{PACKAGE} {name}'")
        if f"{STAGES_PACKAGE}.{name}" not in modules():
            problems.append(f"{name}: no module src/{PACKAGE}/stages/{name}.py")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("stage", STAGES)
def test_code_deps_are_the_import_closure(stage: str) -> None:
    deps = [_dep_path(d) for d in dvc_stages()[stage].get("deps", [])]
    code = [d for d in deps if d.startswith("src/")]
    parents = stage_closure(stage)
    by_file = {rel(modules()[m]): m for m in parents}
    expected, listed = set(by_file), listed_files(code)
    if expected == listed:
        return
    correct = sorted(expected) + [d for d in deps if not d.startswith("src/")]
    missing = [f"    {f}    ({chain(parents, by_file[f])})" for f in sorted(expected - listed)]
    extra = [f"    {f}" for f in sorted(listed - expected)]
    lines = [
        f"dvc.yaml stage '{stage}': code deps differ from the import closure",
        "  missing (imported, not listed):",
        *(missing or ["    (none)"]),
        "  extra (listed, not imported):",
        *(extra or ["    (none)"]),
        "  a correct deps list:",
        "    deps:",
        *(f"      - {d}" for d in correct),
    ]
    pytest.fail("\n".join(lines), pytrace=False)


@pytest.mark.parametrize("stage", STAGES)
def test_stages_do_not_import_other_stages(stage: str) -> None:
    parents = stage_closure(stage)
    others = sorted(
        m for m in parents if m.startswith(f"{STAGES_PACKAGE}.") and parents[m] is not None
    )
    assert not others, f"stage '{stage}' imports other stages:\n" + "\n".join(
        f"  {chain(parents, m)}" for m in others
    )


def card_modules() -> list[str]:
    """The model card's code: `seqops.model_card`, the card-part interface and registry, and
    every module under `seqops.tasks` whose name ends in `card` (each task's card part and
    the shared classifier one)."""
    found = [
        m
        for m in modules()
        if m.startswith(f"{PACKAGE}.tasks.") and m.rpartition(".")[2].endswith("card")
    ]
    return sorted({f"{PACKAGE}.model_card", *found})


def test_every_task_has_a_card_module() -> None:
    from seqops.tasks import TASKS

    cards = card_modules()
    for task in TASKS.values():
        package = type(task).__module__.rpartition(".")[0]
        assert f"{package}.card" in cards, f"{task.name}: no {package}.card"


@pytest.mark.parametrize("stage", ["prepare", "tune", "train", "evaluate", "export"])
def test_no_stage_before_release_imports_a_model_card(stage: str) -> None:
    """A model card's wording is release's only: editing one must leave prepare, tune, train,
    evaluate and export up to date in `dvc status` (their deps are their import closures)."""
    parents = stage_closure(stage)
    found = [chain(parents, m) for m in card_modules() if m in parents]
    assert not found, f"stage '{stage}' imports model-card code:\n" + "\n".join(
        f"  {c}" for c in found
    )


def test_release_imports_every_model_card() -> None:
    parents = stage_closure("release")
    assert set(card_modules()) <= set(parents)


def part_modules(part: str) -> list[str]:
    """A stage's task code: the part interface and registry `seqops.tasks.parts.<part>`, and
    every module under `seqops.tasks` named `<part>` or ending in `_<part>` (each task's
    part, the shared classifier one, and a task's own helpers for that stage such as
    `sequence_labeling.series_prepare`)."""
    found = [
        m
        for m in modules()
        if m.startswith(f"{PACKAGE}.tasks.")
        and (m.rpartition(".")[2] == part or m.rpartition(".")[2].endswith(f"_{part}"))
    ]
    return sorted({f"{PACKAGE}.tasks.parts.{part}", *found})


#: Training-only modules outside the train parts: the padded batches, a language model's
#: stateful loaders and its window batching.
TRAINING_ONLY = (
    f"{PACKAGE}.data.batches",
    f"{PACKAGE}.tasks.language_modeling.loaders",
    f"{PACKAGE}.tasks.language_modeling.batching",
)
#: Readers of raw data only prepare runs: CoNLL files, a language model's document folder.
PREPARE_ONLY = (
    f"{PACKAGE}.tasks.sequence_labeling.conll",
    f"{PACKAGE}.tasks.language_modeling.corpus",
)


@pytest.mark.parametrize("part", ["prepare", "train"])
def test_every_task_has_a_part_for_prepare_and_train(part: str) -> None:
    from seqops.tasks import TASKS

    for task in TASKS.values():
        package = type(task).__module__.rpartition(".")[0]
        assert f"{package}.{part}" in part_modules(part), f"{task.name}: no {package}.{part}"


def test_prepare_imports_no_training_code() -> None:
    """Editing a train part, a loader or the model must leave prepare up to date in
    `dvc status`: no train part, no `seqops.model` module, no batching in its closure."""
    parents = stage_closure("prepare")
    training = [*part_modules("train"), *TRAINING_ONLY]
    found = [
        chain(parents, m)
        for m in parents
        if m in training or m == f"{PACKAGE}.model" or m.startswith(f"{PACKAGE}.model.")
    ]
    assert not found, "stage 'prepare' imports training code:\n" + "\n".join(
        f"  {c}" for c in found
    )


@pytest.mark.parametrize("stage", ["tune", "train"])
def test_tune_and_train_import_no_prepare_code(stage: str) -> None:
    """Editing a prepare part or a raw-data reader must leave tune and train up to date in
    `dvc status` (their inputs are prepare's outputs, not its code)."""
    parents = stage_closure(stage)
    found = [chain(parents, m) for m in [*part_modules("prepare"), *PREPARE_ONLY] if m in parents]
    assert not found, f"stage '{stage}' imports prepare code:\n" + "\n".join(
        f"  {c}" for c in found
    )
