"""Small formatting helpers shared by the markdown, CSV and HTML writers."""

from __future__ import annotations

import math

ABSENT = "–"  # a result is there but this number was not measured (past a two-stage rescore depth)
ABSENT_NOTE = (f"{ABSENT} = not measured: a two-stage search (binary+int8 / binary+fp32) returns only its "
               "--rescore-depth candidates, so a metric at a cutoff past that depth is not computed; it is "
               "missing, never a loss")


def score(value: float | None, digits: int = 4) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def delta(value: float | None, digits: int = 4) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:+.{digits}f}"


def integer(value: int | None) -> str:
    return "" if value is None else f"{value:,}"


def vector_size(value: int) -> str:
    """A dim or byte count; "–" for results without vectors (lexical baselines record 0)."""
    return f"{value:,}" if value > 0 else "–"


def md_cell(text: object) -> str:
    """Text safe inside a markdown table cell: pipes escaped, newlines and HTML brackets neutralised."""
    s = str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\r", " ").replace("\n", " ")
    return s.replace("<", "&lt;").replace(">", "&gt;")


def md_table(header: list[str], rows: list[list[str]], align: list[str] | None = None) -> str:
    align = align or ["---"] * len(header)
    lines = ["| " + " | ".join(md_cell(h) for h in header) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(rows_i) + " |" for rows_i in rows]
    return "\n".join(lines)
