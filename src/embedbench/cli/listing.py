"""`embedbench list models|suites|tasks`: what the harness knows about, as rows."""

from __future__ import annotations

from embedbench.encoders.loading import model_registry, weights_available
from embedbench.encoders.presets import Preset
from embedbench.suites import available_suites, load_suite


def list_rows(what: str, suite: str | None = None) -> list[dict[str, object]]:
    if what == "models":
        return [_model_row(name, entry) for name, entry in model_registry().items()]
    if what == "suites":
        rows = []
        for name in available_suites():
            s = load_suite(name)
            rows.append({"suite": name, "tasks": len(s.tasks), "description": s.description.strip().split("\n")[0]})
        return rows
    suites = [suite] if suite else list(available_suites())
    return [
        {"suite": s.name, "task": t.name, "loader": t.loader, "language": t.language, "type": t.type,
         "main_score": t.main_score}
        for s in map(load_suite, suites)
        for t in s.tasks
    ]


def _model_row(name: str, entry: object) -> dict[str, object]:
    if isinstance(entry, Preset):
        return {"model": name, "source": entry.source, "dim": entry.dim, "pooling": entry.pooling,
                "native": ",".join(entry.native_precisions) or "-", "available": weights_available(entry)}
    return {"model": name, "source": entry.source, "dim": entry.dim, "pooling": entry.pooling,
            "native": ",".join(entry.native_precisions) or "-", "available": True}
