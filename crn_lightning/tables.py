"""Markdown tables, the package's one writer (sweep summaries, evaluate's summary, notebooks)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return f"{value:,}" if isinstance(value, int) else str(value).replace("|", "\\|")


def markdown_table(records: Sequence[Mapping[str, Any]]) -> str:
    """Records (dicts) as a Markdown table; columns from all records' keys in order, floats
    to 4 significant digits, blanks where a record lacks a column."""
    columns = list(dict.fromkeys(k for r in records for k in r))
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(r.get(c, "")) for c in columns) + " |" for r in records]
    return "\n".join(lines)
