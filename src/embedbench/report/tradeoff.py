"""The quantization trade-off: quality against bytes per vector, for every model x precision x dim.

Each row's delta is against the same model's own fp32 result at its full (largest evaluated)
dimension, task by task, only on tasks both have evaluated on the same data.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from embedbench.atomic import atomic_write_text
from embedbench.report import fmt
from embedbench.report.fmt import ABSENT, ABSENT_NOTE
from embedbench.report.grid import Grid, Row, TaskKey


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices (ascending) of the non-dominated (bytes, score) points: those with no other point that
    has bytes <= and score >= and is strictly better in one. Equal points do not dominate each other;
    points with a NaN coordinate are never on the front."""
    if not points:
        return []
    arr = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    b, s = arr[:, 0], arr[:, 1]
    ok = ~(np.isnan(b) | np.isnan(s))
    front = []
    for i in np.flatnonzero(ok):
        dominated = ok & (b <= b[i]) & (s >= s[i]) & ((b < b[i]) | (s > s[i]))
        if not dominated.any():
            front.append(int(i))
    return front


@dataclass
class TradeoffRow:
    row: Row
    reference: Row | None  # the same model's fp32 row at full dim
    scores: dict[TaskKey, float]  # measured main scores only
    deltas: dict[TaskKey, float] = field(default_factory=dict)
    absent: list[TaskKey] = field(default_factory=list)  # results whose main score was not measured

    @property
    def mean(self) -> float | None:
        return _mean(list(self.scores.values()))

    @property
    def mean_delta(self) -> float | None:
        return _mean(list(self.deltas.values()))

    def task_data(self) -> frozenset[tuple[TaskKey, str]]:
        """The (task, dataset) pairs this row has a measured score for: what comparisons may use."""
        return frozenset((t, r.provenance.dataset_hash) for t, r in self.row.cells.items() if t in self.scores)

    def mean_over(self, tasks: Sequence[TaskKey]) -> float | None:
        if not tasks or any(t not in self.scores for t in tasks):
            return None
        return _mean([self.scores[t] for t in tasks])


def _rounded(value: float | None) -> int | None:
    return None if value is None else int(round(value))


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _references(grid: Grid) -> dict[tuple, list[Row]]:
    """Each model's (name, revision, variant) exact fp32 rows at its largest evaluated dim, newest data
    first; keyed by the variant without its index, so a faiss index's row compares with exact fp32."""
    by_model: dict[tuple, list[Row]] = {}
    for r in grid.rows:
        if r.precision == "fp32" and r.index == "exact":
            by_model.setdefault((r.key.model, r.key.revision, r.base_variant), []).append(r)
    out = {}
    for model, rows in by_model.items():
        top = max(r.dim for r in rows)
        out[model] = sorted((r for r in rows if r.dim == top), key=lambda r: r.key.data_tag)
    return out


def tradeoff_rows(grid: Grid) -> list[TradeoffRow]:
    out = []
    references = _references(grid)
    for row in grid.rows:
        refs = references.get((row.key.model, row.key.revision, row.base_variant), [])
        tr = TradeoffRow(row, refs[0] if refs else None,
                         {t: r.main_score for t, r in row.cells.items() if r.main_score is not None},
                         absent=[t for t, r in row.cells.items() if r.main_score is None])
        for t in tr.scores:
            r = row.cells[t]
            same_data = [ref.cells[t] for ref in refs if t in ref.cells and ref.cells[t].main_score is not None
                         and ref.cells[t].provenance.dataset_hash == r.provenance.dataset_hash]
            if same_data:
                tr.deltas[t] = r.main_score - same_data[0].main_score
        out.append(tr)
    return out


def common_tasks(rows: Sequence[TradeoffRow]) -> list[TaskKey]:
    """Tasks every row has, on the same data (dataset hash)."""
    if not rows:
        return []
    common = rows[0].task_data()
    for r in rows[1:]:
        common &= r.task_data()
    return sorted({t for t, _ in common})


def comparable(rows: Sequence[TradeoffRow]) -> tuple[list[TradeoffRow], list[TaskKey]]:
    """The rows and task set for a figure comparing rows on one mean: among the rows' task sets and
    their pairwise intersections, the one that uses the most (row, task) scores; rows lacking it are
    left out (and the figure says so)."""
    sets = {r.task_data() for r in rows}
    candidates = sets | {a & b for a in sets for b in sets if a & b}
    if not candidates:
        return [], []
    def used(s: frozenset) -> tuple:
        return (sum(s <= r.task_data() for r in rows) * len(s), len(s), sorted(map(str, s)))
    best = max(candidates, key=used)
    return [r for r in rows if best <= r.task_data()], sorted({t for t, _ in best})


def tradeoff_frame(grid: Grid) -> pd.DataFrame:
    records = []
    for tr in tradeoff_rows(grid):
        row = tr.row
        rec: dict[str, object] = {
            "model": row.key.model, "revision": row.key.revision, "variant": row.key.variant,
            "precision": row.precision, "quantization": row.quantization, "dim": row.dim, "index": row.index,
            "bytes_per_vector": row.bytes_per_vector, "pages_per_gb": row.pages_per_gb,
            "qps": _mean_cost(row, "qps"), "qps_single": _mean_cost(row, "qps_single"),
            "latency_p50_ms": _mean_cost(row, "latency_p50_ms"),
            "mean_main_score": tr.mean, "n_tasks": len(tr.scores), "n_tasks_not_measured": len(tr.absent),
            "reference": f"fp32 {tr.reference.dim}d" if tr.reference else "",
            "mean_delta_vs_fp32": tr.mean_delta, "n_tasks_compared": len(tr.deltas),
        }
        for t in grid.tasks:
            label = grid.task_label(t)
            rec[label] = ABSENT if t in tr.absent else tr.scores.get(t, math.nan)
            rec[f"{label}:delta_vs_fp32"] = tr.deltas.get(t, math.nan)
        records.append(rec)
    return pd.DataFrame(records)


def _mean_cost(row: Row, name: str) -> float | None:
    """The mean over the row's results of one measured cost (queries per second, latency), where recorded."""
    return _mean([float(v) for r in row.cells.values() if (v := (r.costs or {}).get(name)) is not None])


def _mean_text(tr: TradeoffRow) -> str:
    """The row's mean, saying over how many of its tasks when some were not measured."""
    text = fmt.score(tr.mean)
    if text and tr.absent:
        text += f" ({len(tr.scores)}/{len(tr.scores) + len(tr.absent)} tasks)"
    return text


def _delta_text(tr: TradeoffRow) -> str:
    text = fmt.delta(tr.mean_delta)
    if text and len(tr.deltas) < len(tr.scores):
        text += f" ({len(tr.deltas)}/{len(tr.scores)} tasks)"
    return text


def write_tradeoff(grid: Grid, out_dir: Path) -> list[Path]:
    rows = tradeoff_rows(grid)
    frame = tradeoff_frame(grid)
    csv_path = atomic_write_text(out_dir / "tradeoff.csv", frame.to_csv(index=False))
    indexed = any(tr.row.index != "exact" for tr in rows)  # the index columns appear when an index was run
    header = ["model", "precision", "dim", *(["index", "queries/s"] if indexed else []), "bytes/vector",
              "vectors/GiB", "mean main score", "Δ vs own fp32", *[grid.task_label(t) for t in grid.tasks]]
    body = []
    for tr in rows:
        r = tr.row
        index_cells = [fmt.md_cell(r.index), fmt.integer(_rounded(_mean_cost(r, "qps")))] if indexed else []
        body.append([fmt.md_cell(r.model_label), fmt.md_cell(r.precision), fmt.vector_size(r.dim), *index_cells,
                     fmt.vector_size(r.bytes_per_vector),
                     fmt.integer(r.pages_per_gb), _mean_text(tr), _delta_text(tr),
                     *[ABSENT if t in tr.absent else fmt.score(tr.scores.get(t)) for t in grid.tasks]])
    text = ["# Quantization trade-off", "",
            "Main score per task (0-1) and its mean over the tasks each row has; Δ is the mean, over the tasks both "
            "have (same dataset hash), of score minus the same model's own fp32 score at its largest evaluated "
            "dimension (a faiss index's row: the exact fp32 search of the same settings). vectors/GiB = "
            "floor(2^30 / bytes per vector); a faiss index's bytes are its serialized size per vector, and its "
            "queries/s a batched search of every query on this machine (a measurement, not a score).", "",
            fmt.md_table(header, body, ["---", "---"] + ["---:"] * (len(header) - 2)), ""]
    missing = sorted({tr.row.key.model for tr in rows if tr.reference is None})
    if missing:
        text += [f"No fp32 result to compare with for: {', '.join(fmt.md_cell(m) for m in missing)} (Δ left blank).", ""]
    if any(tr.absent for tr in rows):
        text += [ABSENT_NOTE + "; a row's mean is then over its measured tasks (k/n tasks).", ""]
    md_path = atomic_write_text(out_dir / "tradeoff.md", "\n".join(text))
    return [md_path, csv_path]
