"""Report figures (PNG + SVG on matplotlib's Agg canvas). Every function returns a FigureData with
exactly the numbers it plotted, so tests can compare them with the results; `skipped` says why a
figure was not drawn when the results lack the data for it."""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path

import matplotlib
import matplotlib.lines
import numpy as np
from matplotlib.axes import Axes
from matplotlib.ticker import FuncFormatter, NullFormatter

from embedbench.report.curves import mrl_curves, recall_curves, scale_curves
from embedbench.report.fmt import ABSENT
from embedbench.report.grid import Grid
from embedbench.report.labels import place_labels
from embedbench.report.plotting import (MARKERS, MIN_PLOT, MIXED_METRICS, STYLE, FigureData, fit_figure, legend_outside,
                                        metric_name, model_colors, new_figure, precision_sorted, save)
from embedbench.report.tradeoff import comparable, pareto_front, tradeoff_rows

__all__ = ["FigureData", "index_tradeoff", "quality_vs_bytes", "task_heatmap", "precision_deltas", "recall_curves", "mrl_curves", "scale_curves",
           "write_figures"]


def quality_vs_bytes(grid: Grid, out_dir: Path) -> FigureData:
    fd = FigureData("quality_vs_bytes", "Quality vs bytes per vector (Pareto frontier marked)")
    candidates = [tr for tr in tradeoff_rows(grid) if tr.row.bytes_per_vector > 0]
    rows, tasks = comparable(candidates)
    if len(rows) < 2 or not tasks:
        fd.skipped = "needs at least two vector results (bytes per vector > 0) on a common set of tasks"
        return fd
    points = [{"label": tr.row.label, "model": tr.row.model_label, "precision": tr.row.precision,
               "dim": tr.row.dim, "bytes": tr.row.bytes_per_vector, "score": tr.mean_over(tasks)} for tr in rows]
    front = pareto_front([(p["bytes"], p["score"]) for p in points])
    fd.data = {"points": points, "front": front, "tasks": [grid.task_label(t) for t in tasks],
               "left_out": sorted(tr.row.label for tr in candidates if all(tr is not r for r in rows))}
    if fd.data["left_out"]:
        fd.note = f"left out (not evaluated on all of {', '.join(fd.data['tasks'])}): {'; '.join(fd.data['left_out'])}"
    metric = metric_name(tr.row.cells[t] for tr in rows for t in tasks)
    front_points = sorted((points[i] for i in front), key=lambda p: p["bytes"])
    with matplotlib.rc_context(STYLE):
        fig = new_figure(10, 6)
        ax = fig.add_subplot()
        _scatter_by_model_and_precision(ax, points)
        steps = _draw_pareto_front(ax, front_points)
        ax.set_xscale("log", base=2)
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.margins(x=0.1, y=0.12)  # room for the labels of the outermost points
        ax.set_xlabel("bytes per vector (log scale)")
        ax.set_ylabel(f"{metric}, mean over {len(tasks)} task(s) (0-1)")
        ax.set_title(fd.title)
        ax.grid(True, which="both", alpha=0.3)
        legend_outside(ax)
        fit_figure(fig, min_axes=MIN_PLOT)
        fig.set_layout_engine("none")  # labels are placed in display coordinates: the layout stays as it is now
        place_labels(ax, [(p["bytes"], p["score"]) for p in front_points], [p["label"] for p in front_points],
                     radius_pt=FRONT_RING_PT, markers=[(p["bytes"], p["score"]) for p in points],
                     marker_radius_pt=MARKER_PT, lines=steps)
        fd.files = save(fig, out_dir, fd.name)
    return fd


MARKER_PT = 4.5      # half the width of a plotted marker (s=55)
FRONT_RING_PT = 8.0  # half the width of the ring round a Pareto point (s=180), with its line


def _scatter_by_model_and_precision(ax: Axes, points: list[dict]) -> None:
    """One colour per model, one marker per precision."""
    colors = model_colors([p["model"] for p in points])
    for model in sorted(colors):
        for prec in precision_sorted({p["precision"] for p in points if p["model"] == model}):
            mine = [p for p in points if p["model"] == model and p["precision"] == prec]
            ax.scatter([p["bytes"] for p in mine], [p["score"] for p in mine], color=colors[model], s=55,
                       marker=MARKERS.get(prec, "X"), zorder=3, label=f"{model} · {prec}")


def _draw_pareto_front(ax: Axes, front: list[dict]) -> list[tuple[tuple[float, float], tuple[float, float]]]:
    """The frontier as a step line through ringed points; returns the line's segments (data coordinates).
    The points' labels are placed once the layout is final (labels.place_labels)."""
    xs, ys = [p["bytes"] for p in front], [p["score"] for p in front]
    ax.step(xs, ys, where="post", color="black", lw=1.5, zorder=2, label="Pareto frontier")
    ax.scatter(xs, ys, s=180, facecolors="none", edgecolors="black", linewidths=1.8, zorder=4)
    segments = []
    for (x0, y0), (x1, y1) in zip(zip(xs, ys), zip(xs[1:], ys[1:])):
        segments += [((x0, y0), (x1, y0)), ((x1, y0), (x1, y1))]
    return segments


def task_heatmap(grid: Grid, out_dir: Path) -> FigureData:
    fd = FigureData("task_heatmap", "Main score per task")
    if not grid.rows or not grid.tasks:
        fd.skipped = "no results"
        return fd
    values = [[row.score(t) if t in row.cells else math.nan for t in grid.tasks] for row in grid.rows]
    fd.data = {"rows": [r.label for r in grid.rows], "columns": [grid.task_label(t) for t in grid.tasks],
               "values": values}
    arr = np.array(values, dtype=float)
    with matplotlib.rc_context(STYLE):
        # a first guess (row labels at ~0.08 in a character); fit_figure below makes it exact
        label_inches = 0.08 * max(len(label) for label in fd.data["rows"])
        fig = new_figure(2.5 + label_inches + HEATMAP_CELL[0] * len(grid.tasks), 2.2 + 0.45 * len(grid.rows))
        ax = fig.add_subplot()
        cmap = matplotlib.colormaps["viridis"].with_extremes(bad="#e8e8e8")
        image = ax.imshow(np.ma.masked_invalid(arr), cmap=cmap, aspect="auto")
        finite = arr[np.isfinite(arr)]
        mid = (finite.min() + finite.max()) / 2 if finite.size else 0.5
        for i, j in np.ndindex(arr.shape):
            missing = math.isnan(arr[i, j])
            blank = ABSENT if grid.rows[i].absent(grid.tasks[j]) else "n/a"
            ax.text(j, i, blank if missing else f"{arr[i, j]:.3f}", ha="center", va="center", fontsize=10,
                    color="#555555" if missing else ("white" if arr[i, j] < mid else "black"))
        ax.set_xticks(range(len(grid.tasks)), _column_labels(grid, fd.data["columns"]), rotation=30, ha="right",
                      rotation_mode="anchor")
        ax.set_yticks(range(len(grid.rows)), fd.data["rows"])
        ax.set_xlabel("task")
        ax.set_ylabel("model · precision · dim")
        ax.set_title(fd.title)
        colorbar = fig.colorbar(image, ax=ax)
        colorbar.set_label(metric_name(r for row in grid.rows for r in row.cells.values()), labelpad=8)
        fit_figure(fig, min_axes=(HEATMAP_CELL[0] * len(grid.tasks), HEATMAP_CELL[1] * len(grid.rows)))
        fd.files = save(fig, out_dir, fd.name)
    return fd


HEATMAP_CELL = (1.3, 0.42)  # inches: room for a score in each cell and for the rotated task names under them


def _column_labels(grid: Grid, labels: list[str]) -> list[str]:
    """Task names; under each its metric, when the colour bar says the metrics are mixed."""
    per_task = [[row.cells[t] for row in grid.rows if t in row.cells] for t in grid.tasks]
    if metric_name(r for results in per_task for r in results) != MIXED_METRICS:
        return labels
    return [f"{label}\n{metric_name(results)}" for label, results in zip(labels, per_task)]


def precision_deltas(grid: Grid, out_dir: Path) -> FigureData:
    fd = FigureData("precision_deltas", "Mean score change vs the model's own fp32 (full dimension)")
    deltas: dict[str, dict[str, float]] = defaultdict(dict)
    used = []
    for tr in tradeoff_rows(grid):
        ref = tr.reference
        if ref is None or tr.row.precision == "fp32" or tr.row.dim != ref.dim or tr.mean_delta is None:
            continue
        deltas[tr.row.model_label][tr.row.precision] = tr.mean_delta
        used.append(tr)
    if not deltas:
        fd.skipped = "needs a model with fp32 and another precision at the same (full) dimension"
        return fd
    models = sorted(deltas)
    precisions = precision_sorted({p for d in deltas.values() for p in d})
    compared = [r for tr in used for t in tr.deltas for r in (tr.row.cells[t], tr.reference.cells[t])]
    fd.data = {"models": models, "precisions": precisions, "deltas": {m: dict(deltas[m]) for m in models}}
    with matplotlib.rc_context(STYLE):
        fig = new_figure(max(7.0, 1.2 * len(models) * len(precisions) + 3), 5.5)
        ax = fig.add_subplot()
        width = 0.8 / len(precisions)
        for j, prec in enumerate(precisions):
            xs = [i + (j - (len(precisions) - 1) / 2) * width for i in range(len(models))]
            bars = ax.bar(xs, [deltas[m].get(prec, math.nan) for m in models], width=width, label=prec)
            ax.bar_label(bars, fmt="%+.3f", fontsize=10, padding=2)
        ax.axhline(0, color="black", lw=1)
        ax.set_xticks(range(len(models)), models, rotation=20, ha="right")
        ax.set_xlabel("model")
        ax.set_ylabel(f"Δ {metric_name(compared)} vs own fp32, mean over tasks")
        ax.set_title(fd.title)
        ax.use_sticky_edges = False  # room above 0 too, where a small loss's bar and label sit
        ax.margins(y=0.12)
        legend_outside(ax, title="precision")
        ax.grid(True, axis="y", alpha=0.3)
        fd.files = save(fig, out_dir, fd.name)
    return fd


INDEX_MARKERS = {"exact": "o", "hnsw": "^", "ivf": "s", "sq8": "D", "ivfpq": "v", "binary-hnsw": "P"}


def index_tradeoff(grid: Grid, out_dir: Path) -> FigureData:
    """Search indexes side by side: quality against index bytes per vector, and against queries per
    second, one marker per index kind, one colour per model x precision."""
    fd = FigureData("index_tradeoff", "Search indexes: quality vs bytes per vector and vs queries per second")
    candidates = [tr for tr in tradeoff_rows(grid) if tr.row.bytes_per_vector > 0]
    if not any(tr.row.index != "exact" for tr in candidates):
        fd.skipped = "no faiss index was evaluated (embedbench eval --index hnsw,...)"
        return fd
    rows, tasks = comparable(candidates)
    points = [{"label": tr.row.label, "series": f"{tr.row.model_label.split(' [')[0]} · {tr.row.precision} · "
               f"{tr.row.dim}d", "index": tr.row.index, "kind": tr.row.index.split(":")[0],
               "bytes": tr.row.bytes_per_vector, "qps": _row_qps(tr.row), "score": tr.mean_over(tasks)}
              for tr in rows]
    if len(points) < 2 or not tasks:
        fd.skipped = "needs at least two vector results on a common set of tasks"
        return fd
    fd.data = {"points": points, "tasks": [grid.task_label(t) for t in tasks],
               "left_out": sorted(tr.row.label for tr in candidates if all(tr is not r for r in rows))}
    if fd.data["left_out"]:
        fd.note = f"left out (not evaluated on all of {', '.join(fd.data['tasks'])}): {'; '.join(fd.data['left_out'])}"
    metric = metric_name(tr.row.cells[t] for tr in rows for t in tasks)
    colors = model_colors([p["series"] for p in points])
    with matplotlib.rc_context(STYLE):
        fig = new_figure(13, 5.5)
        left, right = fig.subplots(1, 2, sharey=True)
        for p in points:
            for ax, x in ((left, p["bytes"]), (right, p["qps"])):
                if x:
                    ax.scatter([x], [p["score"]], color=colors[p["series"]], s=60, zorder=3,
                               marker=INDEX_MARKERS.get(p["kind"], "X"), edgecolors="black", linewidths=0.4)
        for ax, xlabel in ((left, "bytes per vector (log scale)"), (right, "queries per second, batched (log scale)")):
            ax.set_xscale("log", base=2 if ax is left else 10)
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            ax.xaxis.set_minor_formatter(NullFormatter() if ax is left else FuncFormatter(_two_five))
            ax.set_xlabel(xlabel)
            ax.grid(True, which="both", alpha=0.3)
            ax.margins(x=0.15, y=0.15)
        left.set_ylabel(f"{metric}, mean over {len(tasks)} task(s) (0-1)")
        fig.suptitle(fd.title)
        handles = [matplotlib.lines.Line2D([], [], color=c, marker="o", linestyle="", label=s)
                   for s, c in sorted(colors.items())]
        handles += [matplotlib.lines.Line2D([], [], color="grey", marker=INDEX_MARKERS.get(k, "X"), linestyle="",
                                            markeredgecolor="black", label=k)
                    for k in sorted({p["kind"] for p in points}, key=list(INDEX_MARKERS).index)]
        legend_outside(right, handles=handles)
        fit_figure(fig, min_axes=MIN_PLOT)
        fig.set_layout_engine("none")  # labels are placed in display coordinates: the layout stays as it is now
        named = [p for p in points if p["qps"] and p["index"] != "exact"]
        place_labels(right, [(p["qps"], p["score"]) for p in named], [_short_index(p["index"]) for p in named],
                     radius_pt=MARKER_PT, markers=[(p["qps"], p["score"]) for p in points if p["qps"]],
                     marker_radius_pt=MARKER_PT, fontsize=8)
        fd.files = save(fig, out_dir, fd.name)
    return fd


def _two_five(value: float, _pos: object) -> str:
    """Minor tick labels of a log axis at 2 and 5 x 10^n only (a narrow decade otherwise shows one label)."""
    lead = value / 10 ** math.floor(math.log10(value)) if value > 0 else 0
    return f"{value:g}" if round(lead, 6) in (2.0, 5.0) else ""


def _row_qps(row: object) -> float | None:
    values = [float(v) for r in row.cells.values() if (v := (r.costs or {}).get("qps"))]
    return sum(values) / len(values) if values else None


def _short_index(spec: str) -> str:
    """``hnsw:m=32:ef=256:efc=40`` -> ``hnsw m32 ef256 efc40`` (annotation text)."""
    kind, *params = spec.split(":")
    return " ".join([kind, *(p.replace("=", "") for p in params if not p.startswith("seed="))])


FIGURES = (quality_vs_bytes, task_heatmap, precision_deltas, recall_curves, mrl_curves, scale_curves)


def write_figures(grid: Grid, out_dir: Path) -> list[FigureData]:
    """Every figure; the search-index figure only for results that include a faiss index."""
    indexed = any(row.index != "exact" for row in grid.rows)
    return [make(grid, out_dir) for make in (*FIGURES, *((index_tradeoff,) if indexed else ()))]
