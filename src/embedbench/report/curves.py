"""Line figures: Recall@k curves, MRL dimension curves and corpus-size scale curves (see figures.py for
the conventions)."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import matplotlib
import numpy as np

from embedbench.report.grid import Grid
from embedbench.report.plotting import (LINESTYLES, MARKERS, MIN_PLOT, STYLE, FigureData, fit_figure, legend_outside,
                                        metric_name, model_colors, new_figure, precision_sorted, save)
from embedbench.report.tradeoff import TradeoffRow, common_tasks, comparable, tradeoff_rows

RECALL_KS = (1, 3, 5, 10, 20, 100, 1000)


def _full_dim_rows(grid: Grid) -> list[TradeoffRow]:
    best: dict[tuple, TradeoffRow] = {}
    for tr in tradeoff_rows(grid):
        key = (tr.row.key, tr.row.precision)
        if key not in best or tr.row.dim > best[key].row.dim:
            best[key] = tr
    return list(best.values())


def _plot_lines(ax, lines: dict[tuple[str, str], tuple[list, list]]) -> None:
    colors = model_colors([m for m, _ in lines])
    for model in sorted(colors):
        for prec in precision_sorted({p for m, p in lines if m == model}):
            xs, ys = lines[(model, prec)]
            ax.plot(xs, ys, color=colors[model], marker=MARKERS.get(prec, "X"), linestyle=LINESTYLES.get(prec, "-."),
                    label=f"{model} · {prec}")


def _save_line_figure(fd: FigureData, out_dir: Path, lines: dict[tuple[str, str], tuple[list, list]],
                      ticks: list[int], *, base: int, xlabel: str, ylabel: str) -> None:
    """One panel of lines on a log x axis with a tick at each of `ticks`; its files go into fd.files."""
    with matplotlib.rc_context(STYLE):
        fig = new_figure(10, 6)
        ax = fig.add_subplot()
        _plot_lines(ax, lines)
        ax.set_xscale("log", base=base)
        ax.set_xticks(ticks, [str(t) for t in ticks])
        ax.minorticks_off()
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_title(fd.title)
        ax.grid(True, alpha=0.3)
        legend_outside(ax)
        fit_figure(fig, min_axes=MIN_PLOT)
        fd.files = save(fig, out_dir, fd.name)


def recall_curves(grid: Grid, out_dir: Path) -> FigureData:
    fd = FigureData("recall_curves", "Recall@k (mean over common tasks, each model's full dimension)")
    candidates = _full_dim_rows(grid)
    rows, tasks = comparable(candidates)
    # A k some row did not measure (past its two-stage rescore depth) is a gap in that row's line only.
    measured = {id(tr): {k for k in RECALL_KS if tasks and all(
        tr.row.cells[t].metrics.get(f"recall_at_{k}") is not None for t in tasks)} for tr in rows}
    ks = [k for k in RECALL_KS if any(k in measured[id(tr)] for tr in rows)]
    if not rows or len(ks) < 2:
        fd.skipped = "needs recall_at_k for at least two k on a common set of tasks"
        return fd
    lines = {(tr.row.model_label, tr.row.precision):
             [float(np.mean([tr.row.cells[t].metrics[f"recall_at_{k}"] for t in tasks]))
              if k in measured[id(tr)] else None for k in ks] for tr in rows}
    fd.data = {"k": ks, "lines": {f"{m} · {p}": ys for (m, p), ys in lines.items()},
               "tasks": [grid.task_label(t) for t in tasks],
               "left_out": sorted(f"{tr.row.model_label} · {tr.row.precision}" for tr in candidates
                                  if all(tr is not r for r in rows))}
    if fd.data["left_out"]:
        fd.note = f"left out (not evaluated on all of {', '.join(fd.data['tasks'])}): {'; '.join(fd.data['left_out'])}"
    _save_line_figure(fd, out_dir, {key: (ks, [np.nan if y is None else y for y in ys]) for key, ys in lines.items()},
                      ks, base=10, xlabel="k (documents retrieved, log scale)",
                      ylabel=f"Recall@k, mean over {len(tasks)} task(s) (0-1)")
    return fd


def mrl_curves(grid: Grid, out_dir: Path) -> FigureData:
    fd = FigureData("mrl_curves", "Main score vs embedding dimension (MRL truncation)")
    groups: dict[tuple, list[TradeoffRow]] = defaultdict(list)
    for tr in tradeoff_rows(grid):
        if tr.row.dim > 0:
            groups[(tr.row.model_label, tr.row.precision)].append(tr)
    lines = {}
    plotted = []  # the results behind the plotted means
    for key, trs in sorted(groups.items()):
        tasks = common_tasks(trs)
        if len(trs) >= 2 and tasks:
            trs = sorted(trs, key=lambda t: t.row.dim)
            lines[key] = {"dims": [t.row.dim for t in trs], "scores": [t.mean_over(tasks) for t in trs],
                          "tasks": [grid.task_label(t) for t in tasks]}
            plotted += [t.row.cells[task] for t in trs for task in tasks]
    if not lines:
        fd.skipped = "needs a model x precision evaluated at two or more dimensions"
        return fd
    fd.data = {"lines": {f"{m} · {p}": line for (m, p), line in lines.items()}}
    _save_line_figure(fd, out_dir, {key: (line["dims"], line["scores"]) for key, line in lines.items()},
                      sorted({d for line in lines.values() for d in line["dims"]}), base=2,
                      xlabel="embedding dimension (log scale)",
                      ylabel=f"{metric_name(plotted)}, mean over tasks (0-1)")
    return fd


def scale_curves(grid: Grid, out_dir: Path) -> FigureData:
    """Main score against corpus size (results whose variant has a corpus_size, e.g. the synthetic
    suites run with --corpus-size 1e3,1e4,...): one panel per task, one line per model x precision
    (x dim when a model ran at several)."""
    fd = FigureData("scale_curves", "Main score vs corpus size")
    panels, names, metrics = _scale_points(grid)
    if not panels:
        fd.skipped = "needs a model x precision evaluated at two or more corpus sizes (--corpus-size)"
        return fd
    fd.data = {names[p]: {f"{m}@{r[:12]} · {prec} · {d}": {"sizes": sorted(v), "scores": [v[s] for s in sorted(v)]}
                          for (m, r, prec, d), v in lines.items()} for p, lines in sorted(panels.items())}
    with matplotlib.rc_context(STYLE):
        fig = new_figure(10, 4.5 * len(panels))
        for i, (panel, lines) in enumerate(sorted(panels.items())):
            ax = fig.add_subplot(len(panels), 1, i + 1)
            _plot_lines(ax, _scale_lines(lines))
            ax.set_xscale("log")
            ax.set_xlabel("corpus size (documents, log scale)")
            ax.set_ylabel(f"{metrics[panel]} (0-1)")
            ax.set_title(names[panel])
            ax.grid(True, alpha=0.3)
            legend_outside(ax)
        fit_figure(fig, min_axes=MIN_PLOT)
        fd.files = save(fig, out_dir, fd.name)
    return fd


ScaleLines = dict[tuple[str, str, str, int], dict[int, float]]  # (model, revision, precision, dim) -> {size: score}


def _scale_points(grid: Grid) -> tuple[dict[tuple, ScaleLines], dict[tuple, str], dict[tuple, str]]:
    """({panel (a task): its lines with two or more sizes}, {panel: its title}, {panel: its metric}); panels
    without such a line are left out."""
    points: dict[tuple, ScaleLines] = defaultdict(lambda: defaultdict(dict))
    results: dict[tuple, list] = defaultdict(list)
    labels: dict[tuple, str] = {}
    for row in grid.rows:
        for task, result in row.cells.items():
            size = result.variant.get("corpus_size")
            if size is None or result.main_score is None:
                continue
            panel = (task.suite, task.task, task.split, task.language)
            labels[panel] = grid.task_label(task)
            results[panel].append(result)
            points[panel][(result.model, result.revision, row.precision, row.dim)][int(size)] = result.main_score
    metrics = {p: metric_name(rs) for p, rs in results.items()}
    names = {p: f"{labels[p]} ({metrics[p]})" for p in labels}
    panels = {p: {k: v for k, v in lines.items() if len(v) >= 2} for p, lines in points.items()}
    return {p: lines for p, lines in panels.items() if lines}, names, metrics


def _scale_lines(lines: ScaleLines) -> dict[tuple[str, str], tuple[list, list]]:
    """A panel's lines keyed (model label, precision); the label names the dim where a model ran at several."""
    dims_per_model = defaultdict(set)
    for m, _, _, d in lines:
        dims_per_model[m].add(d)
    plotted = {}
    for (m, _, prec, d), v in lines.items():
        label_model = m if len(dims_per_model[m]) == 1 else f"{m} · {d}d"
        plotted[(label_model, prec)] = (sorted(v), [v[s] for s in sorted(v)])
    return plotted
