"""Markdown tables for the model card (the card's sections come from `seqops.model_card` and
each task's `card_*` methods)."""

from __future__ import annotations

from typing import Any


def cell(value: Any) -> str:
    """A table cell: `|` escaped (it would end the cell) and newlines folded."""
    return str(value).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def table(header: tuple[str, ...], rows: list[tuple[Any, ...]]) -> str:
    lines = ["| " + " | ".join(map(cell, header)) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def fmt(value: Any) -> str:
    """A value for a table cell: floats to 4 significant digits, None as a dash."""
    if isinstance(value, float):
        return f"{value:.4g}"
    return "—" if value is None else str(value)
