"""Results as rows: the `embedbench results` formats and the table `make eval` ends with."""

from __future__ import annotations

import json
from collections.abc import Sequence

import pandas as pd

from embedbench.results import Result

TABLE_COLUMNS = ["model", "task", "precision", "quantization", "dim", "variant", "main_score_name", "main_score",
                 "bytes_per_vector", "n_queries", "n_docs", "encode_seconds", "search_seconds"]


def results_frame(results: Sequence[Result]) -> pd.DataFrame:
    frame = pd.DataFrame([r.record() for r in results])
    if frame.empty:
        return frame
    return frame[["model", *[c for c in frame.columns if c != "model"]]]


def format_results(results: Sequence[Result], fmt: str) -> str:
    if fmt == "json":
        return json.dumps([r.record() for r in results], indent=2, ensure_ascii=False)
    frame = results_frame(results)
    if frame.empty:
        return "(no results)"
    if fmt == "csv":
        frame = frame.assign(metrics=[json.dumps(r.metrics, sort_keys=True) for r in results],
                             costs=[json.dumps(r.costs, sort_keys=True) if r.costs else "" for r in results])
        return frame.to_csv(index=False)
    table = frame[TABLE_COLUMNS].copy()
    table["main_score"] = table["main_score"].map(_score)
    return table.to_string(index=False)


def _score(value: float | None) -> str:
    """A main score; "–" where it was not computed (a two-stage search cut above its cutoff)."""
    return "–" if value is None or pd.isna(value) else f"{value:.4f}"
