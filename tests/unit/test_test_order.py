"""How `make test` splits the suite over its workers (tests/conftest.py): the files that take
the built tiny project form one work unit, and the slowest units come first."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from tests.conftest import (
    BUILT_GROUP,
    _work_unit,
    built_project_files,
    pytest_collection_modifyitems,
)


def _items(*paths: str) -> list[Any]:
    return [SimpleNamespace(location=(path, 0, f"test_{i}")) for i, path in enumerate(paths)]


def test_the_files_taking_the_built_project_are_found_and_grouped() -> None:
    built = built_project_files()
    assert "tests/integration/test_promotion.py" in built  # a multi-line signature
    assert "tests/integration/test_determinism.py" in built
    assert "tests/integration/test_text_pipeline.py" not in built  # imports from one, takes none
    assert _work_unit("tests/integration/test_promotion.py", built) == BUILT_GROUP
    assert _work_unit("tests/unit/test_gate.py", built) == "tests/unit/test_gate.py"


def test_the_slowest_units_come_first_each_in_one_piece_in_its_own_order() -> None:
    items = _items(
        "tests/unit/test_gate.py",
        "tests/integration/test_regression_pipeline.py",
        "tests/unit/test_gate.py",
        "tests/integration/test_determinism.py",
        "tests/integration/test_regression_pipeline.py",
        "tests/integration/test_promotion.py",
    )
    names = {id(item): item.location[2] for item in items}
    pytest_collection_modifyitems(items)  # type: ignore[arg-type]
    order = [(item.location[0].split("/")[-1], names[id(item)]) for item in items]
    # determinism + promotion (one unit, their sum) > regression > an unlisted unit file
    assert order == [
        ("test_determinism.py", "test_3"),
        ("test_promotion.py", "test_5"),
        ("test_regression_pipeline.py", "test_1"),
        ("test_regression_pipeline.py", "test_4"),
        ("test_gate.py", "test_0"),
        ("test_gate.py", "test_2"),
    ]
