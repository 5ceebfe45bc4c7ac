"""Shared figure plumbing: the FigureData record, house style, colours/markers, the metric an axis names,
fitting a figure around its labels and saving PNG + SVG."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from embedbench.atomic import atomic_write
from embedbench.report.grid import PRECISION_ORDER
from embedbench.results import Result

STYLE = {"font.size": 11, "axes.titlesize": 12, "axes.labelsize": 11, "legend.fontsize": 10,
         "xtick.labelsize": 10, "ytick.labelsize": 10, "svg.hashsalt": "embedbench", "svg.fonttype": "none"}
MARKERS = {"fp32": "o", "fp16": "D", "int8": "s", "int8:posthoc": "s", "binary": "^", "binary:posthoc": "^",
           "binary+int8": "v", "binary+fp32": "P"}
LINESTYLES = {"fp32": "-", "fp16": "-", "int8": "--", "int8:posthoc": "--", "binary": ":", "binary:posthoc": ":"}


@dataclass
class FigureData:
    """What a figure function drew: `data` holds exactly the plotted numbers."""

    name: str
    title: str
    files: list[Path] = field(default_factory=list)
    data: dict = field(default_factory=dict)
    skipped: str = ""  # why the figure was not drawn
    note: str = ""     # what a drawn figure leaves out


def precision_sorted(precisions: set[str] | list[str]) -> list[str]:
    return sorted(set(precisions), key=lambda p: (PRECISION_ORDER.get(p, 99), p))


def model_colors(models: list[str]) -> dict[str, tuple]:
    cmap = matplotlib.colormaps["tab10" if len(set(models)) <= 10 else "tab20"]
    return {m: cmap(i % cmap.N) for i, m in enumerate(sorted(set(models)))}


MIXED_METRICS = "main score (mixed metrics)"


def metric_name(results: Iterable[Result]) -> str:
    """What an axis of main scores measures: the metric's name when every plotted result's main score is
    that one metric, else MIXED_METRICS (a mean over tasks that rank by different metrics)."""
    names = {r.main_score_name for r in results}
    return names.pop() if len(names) == 1 else MIXED_METRICS


def legend_outside(ax: Axes, **kwargs: object) -> None:
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, **kwargs)


def new_figure(width: float, height: float) -> Figure:
    """A figure on matplotlib's Agg canvas, with no pyplot (global) state involved."""
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)  # a renderer to measure text with (fit_figure, labels.place_labels)
    return fig


MIN_PLOT = (6.5, 4.0)  # inches: the smallest plot area a figure with a legend beside it keeps
MAX_INCHES = 40.0
PAD_INCHES = 0.08


def fit_figure(fig: Figure, min_axes: tuple[float, float] | None = None) -> None:
    """Grow the figure until everything drawn lies inside it and (with `min_axes`, inches) every plot
    axes (not a colour bar) is at least that wide and tall. Constrained layout makes room for a label's
    thickness but not for its length: a y label longer than the figure is tall, a colour-bar label longer
    than its bar, a title wider than its axes would be cut at the figure's edge. Deterministic."""
    for _ in range(6):
        fig.canvas.draw()  # runs the layout engine
        renderer = fig.canvas.get_renderer()
        width, height = fig.get_size_inches()
        box = fig.get_tightbbox(renderer)  # inches
        # A centred label that sticks out on one side needs twice that: its centre moves by half the growth.
        over_w, over_h = max(-box.x0, box.x1 - width), max(-box.y0, box.y1 - height)
        grow_w = 2 * (over_w + PAD_INCHES) if over_w > 0 else 0.0
        grow_h = 2 * (over_h + PAD_INCHES) if over_h > 0 else 0.0
        if min_axes is not None:
            for ax in fig.axes:
                if ax.get_label() == "<colorbar>":
                    continue
                pos = ax.get_position()
                grow_w = max(grow_w, min_axes[0] - pos.width * width)
                grow_h = max(grow_h, min_axes[1] - pos.height * height)
        if grow_w <= 0.01 and grow_h <= 0.01:
            return
        fig.set_size_inches(min(MAX_INCHES, width + max(grow_w, 0.0)), min(MAX_INCHES, height + max(grow_h, 0.0)))
        if fig.get_size_inches().tolist() == [width, height]:
            return


def save(fig: Figure, out_dir: Path, name: str) -> list[Path]:
    """PNG + SVG of the figure, grown to hold every label (fit_figure); `bbox_inches="tight"` keeps even a
    label no layout could place inside the saved image."""
    fit_figure(fig)
    tight = {"bbox_inches": "tight", "pad_inches": PAD_INCHES}
    png = atomic_write(out_dir / f"{name}.png", lambda f: fig.savefig(f, format="png", dpi=150, **tight,
                                                                      metadata={"Software": None}))
    svg = atomic_write(out_dir / f"{name}.svg", lambda f: fig.savefig(f, format="svg", **tight,
                                                                      metadata={"Date": None, "Creator": None}))
    return [png, svg]
