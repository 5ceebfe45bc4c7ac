"""`embedbench list models|suites|tasks`: what the harness knows about, as rows, printed as a table or JSON."""

from __future__ import annotations

import json

from embedbench.data.suites import available_suites, load_suite
from embedbench.encoders.loading import model_registry, weights_available
from embedbench.encoders.presets import Preset


def list_rows(what: str, suite: str | None = None) -> list[dict[str, object]]:
    if what == "models":
        return [_model_row(name, entry) for name, entry in model_registry().items()]
    if what == "suites":
        return [_suite_row(name) for name in available_suites()]
    return _task_rows([suite] if suite else list(available_suites()))


def format_rows(rows: list[dict[str, object]], fmt: str) -> str:
    """`json`: a JSON list of the rows; `table`: aligned columns ("(none)" when there are no rows)."""
    if fmt == "json":
        return json.dumps(rows, indent=2)
    import pandas as pd

    return pd.DataFrame(rows).to_string(index=False) if rows else "(none)"


def _suite_row(name: str) -> dict[str, object]:
    s = load_suite(name)
    return {"suite": name, "tasks": len(s.tasks), "description": s.description.strip().split("\n")[0]}


def _task_rows(suites: list[str]) -> list[dict[str, object]]:
    return [
        {"suite": s.name, "task": t.name, "loader": t.loader, "language": t.language, "type": t.type,
         "main_score": t.main_score}
        for s in map(load_suite, suites)
        for t in s.tasks
    ]


def _model_row(name: str, entry: object) -> dict[str, object]:
    available = weights_available(entry) if isinstance(entry, Preset) else True  # a plugin brings its own
    return {"model": name, "source": entry.source, "dim": entry.dim, "pooling": entry.pooling,
            "native": ",".join(entry.native_precisions) or "-", "available": available}
