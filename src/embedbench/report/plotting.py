"""Shared figure plumbing: the FigureData record, house style, colours/markers, saving PNG + SVG."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import matplotlib
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from embedbench.atomic import atomic_write
from embedbench.report.grid import PRECISION_ORDER, Grid

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


def score_unit(grid: Grid) -> str:
    names = sorted({r.main_score_name for row in grid.rows for r in row.cells.values()})
    return f"{', '.join(names)}, 0-1" if names else "0-1"


def legend_outside(ax: Axes, **kwargs: object) -> None:
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, **kwargs)


def new_figure(width: float, height: float) -> Figure:
    """A figure on matplotlib's Agg canvas, with no pyplot (global) state involved."""
    return Figure(figsize=(width, height), layout="constrained")


def save(fig: Figure, out_dir: Path, name: str) -> list[Path]:
    png = atomic_write(out_dir / f"{name}.png", lambda f: fig.savefig(f, format="png", dpi=150,
                                                                      metadata={"Software": None}))
    svg = atomic_write(out_dir / f"{name}.svg", lambda f: fig.savefig(f, format="svg",
                                                                      metadata={"Date": None, "Creator": None}))
    return [png, svg]
