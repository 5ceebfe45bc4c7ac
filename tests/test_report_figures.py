"""Figures that read at a glance: point labels that do not overlap, no label cut at the figure's edge, and
axes that name the one metric they plot or say "main score (mixed metrics)".

Every figure is measured as saved: `save` is wrapped to keep the Figure, which is then drawn on an Agg
canvas and its text extents (renderer pixels) compared with each other and with the figure's bounds."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.text import Annotation, Text
from matplotlib.transforms import Bbox
from test_report import make_result

import embedbench.report.curves
import embedbench.report.figures
from embedbench.report.figures import mrl_curves, precision_deltas, quality_vs_bytes, task_heatmap
from embedbench.report.grid import Grid
from embedbench.results import Result

MIXED = "main score (mixed metrics)"
METRICS = ("ndcg_at_10", "recall_at_10", "recall_at_100")


def result(model: str, precision: str, dim: int, nbytes: int, score: float, task: str = "T1", *,
           metric: str = "ndcg_at_10", variant: dict | None = None) -> Result:
    r, _ = make_result(model, "fp32", dim, task)
    return r.model_copy(update={"precision": precision, "quantization": "none" if precision == "fp32" else "posthoc",
                                "bytes_per_vector": nbytes, "main_score": score, "main_score_name": metric,
                                "variant": variant or {}})


# The committed minilm-l6 baselines: fp32 and int8 close in score, two octaves apart in bytes.
BASELINE = [("minilm-l6", "fp32", 384, 1536, 0.7087), ("minilm-l6", "int8", 384, 384, 0.7081),
            ("minilm-l6", "binary", 384, 48, 0.6754)]
# hashing and minilm-l6 at 4 precisions x 2 dims (`--limit-queries 100`): five Pareto points with long labels,
# three of them within 0.003 of each other at the top.
RICH = [("minilm-l6", "fp32", 384, 1536, 0.717), ("minilm-l6", "fp32", 128, 512, 0.687),
        ("minilm-l6", "int8", 384, 384, 0.715), ("minilm-l6", "int8", 128, 128, 0.689),
        ("minilm-l6", "binary", 384, 48, 0.690), ("minilm-l6", "binary", 128, 16, 0.606),
        ("minilm-l6", "binary+int8", 384, 432, 0.713), ("minilm-l6", "binary+int8", 128, 144, 0.660),
        ("hashing", "fp32", 384, 1536, 0.616), ("hashing", "fp32", 128, 512, 0.536),
        ("hashing", "int8", 384, 384, 0.596), ("hashing", "int8", 128, 128, 0.520),
        ("hashing", "binary", 384, 48, 0.551), ("hashing", "binary", 128, 16, 0.385),
        ("hashing", "binary+int8", 384, 432, 0.574), ("hashing", "binary+int8", 128, 144, 0.428)]
# Eight points, every one on the frontier, all within 0.01 of each other.
CROWDED = [("m", p, d, b, s) for p, d, b, s in [
    ("binary", 128, 16, 0.700), ("binary", 256, 32, 0.702), ("binary", 384, 48, 0.704), ("int8", 128, 128, 0.705),
    ("int8", 256, 256, 0.706), ("int8", 384, 384, 0.707), ("fp32", 256, 1024, 0.708), ("fp32", 384, 1536, 0.709)]]


def grid_of(points: list[tuple], *, tasks: tuple[str, ...] = ("T1",), metrics: tuple[str, ...] = ("ndcg_at_10",),
            long_labels: bool = False) -> Grid:
    results = []
    for (model, precision, dim, nbytes, score), (j, task) in itertools.product(points, enumerate(tasks)):
        variant = None
        if long_labels:
            variant = {"limit_queries": 100, **({"rescore_depth": 100} if "+" in precision else {})}
        results.append(result(model, precision, dim, nbytes, score - 0.01 * j, task,
                              metric=metrics[j % len(metrics)], variant=variant))
    return Grid(results)


@pytest.fixture
def drawn(monkeypatch: pytest.MonkeyPatch) -> list[Figure]:
    """Every figure the figure functions save, drawn afterwards on an Agg canvas."""
    figures: list[Figure] = []
    for module in (embedbench.report.figures, embedbench.report.curves):
        def keep(fig, out_dir, name, _save=module.save):
            files = _save(fig, out_dir, name)
            figures.append(fig)
            return files
        monkeypatch.setattr(module, "save", keep)
    return figures


def renderer_of(fig: Figure):
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return canvas.get_renderer()


def point_labels(ax: Axes, renderer) -> dict[str, Bbox]:
    """The annotations' text boxes (leader lines left out), by label text."""
    boxes = {}
    for ann in ax.texts:
        if isinstance(ann, Annotation):
            ann.update_positions(renderer)
            boxes[ann.get_text()] = Text.get_window_extent(ann, renderer)
    return boxes


def overlaps(a: Bbox, b: Bbox) -> bool:
    return min(a.x1, b.x1) > max(a.x0, b.x0) and min(a.y1, b.y1) > max(a.y0, b.y0)


def inside(box: Bbox, bounds: Bbox, tol: float = 0.5) -> bool:
    return (box.x0 >= bounds.x0 - tol and box.y0 >= bounds.y0 - tol and box.x1 <= bounds.x1 + tol
            and box.y1 <= bounds.y1 + tol)


def cut_labels(fig: Figure, renderer) -> list[str]:
    """Every title, axis label (colour bar's included), legend text, point label and tick-label block that
    reaches past the figure's edge."""
    out = []
    for ax in fig.axes:
        texts = [ax.title, ax.xaxis.label, ax.yaxis.label, *ax.texts]
        legend = ax.get_legend()
        if legend is not None:
            texts += legend.get_texts()
        for text in texts:
            if text.get_text() and text.get_visible():
                box = (Text.get_window_extent(text, renderer) if isinstance(text, Annotation)
                       else text.get_window_extent(renderer))
                if not inside(box, fig.bbox):
                    out.append(text.get_text())
        if not inside(ax.get_tightbbox(renderer), fig.bbox):
            out.append(f"axes {ax.get_label() or ax.get_title()!r} with its tick labels")
    return out


# --- point labels ---------------------------------------------------------------------------------

@pytest.mark.parametrize("points,long_labels", [(BASELINE, False), (RICH, True), (CROWDED, False)],
                         ids=["baseline", "rich", "crowded"])
def test_quality_vs_bytes_point_labels_do_not_overlap(points, long_labels, drawn, tmp_path) -> None:
    fd = quality_vs_bytes(grid_of(points, long_labels=long_labels), tmp_path)
    (fig,) = drawn
    ax = fig.axes[0]
    renderer = renderer_of(fig)
    labels = point_labels(ax, renderer)
    front = {fd.data["points"][i]["label"] for i in fd.data["front"]}
    assert set(labels) == front and len(front) >= 3
    for (a, box_a), (b, box_b) in itertools.combinations(labels.items(), 2):
        assert not overlaps(box_a, box_b), f"labels {a!r} and {b!r} overlap"
    area = ax.get_window_extent(renderer)
    marks = ax.transData.transform([(p["bytes"], p["score"]) for p in fd.data["points"]])
    for text, box in labels.items():
        assert inside(box, area), f"label {text!r} leaves the plot"
        covered = [tuple(m) for m in marks if box.contains(*m)]
        assert not covered, f"label {text!r} covers a plotted point"


def test_point_labels_are_placed_the_same_every_time(drawn, tmp_path) -> None:
    quality_vs_bytes(grid_of(RICH, long_labels=True), tmp_path / "a")
    quality_vs_bytes(grid_of(RICH, long_labels=True), tmp_path / "b")
    first, second = ([box.get_points().round(3).tolist() for box in point_labels(f.axes[0], renderer_of(f)).values()]
                     for f in drawn)
    assert first == second
    png = "quality_vs_bytes.png"
    assert (tmp_path / "a" / png).read_bytes() == (tmp_path / "b" / png).read_bytes()


# --- nothing cut at the figure's edge -------------------------------------------------------------

@pytest.mark.parametrize("points,long_labels", [(BASELINE, False), (RICH, True)], ids=["baseline", "rich"])
def test_no_label_is_cut_at_the_figure_edge(points, long_labels, drawn, tmp_path) -> None:
    grid = grid_of(points, tasks=("BFCLToolRetrieval", "SyntheticQuery2Doc", "SyntheticQuery2Query"),
                   metrics=METRICS, long_labels=long_labels)
    for make in (quality_vs_bytes, task_heatmap, precision_deltas, mrl_curves):
        assert not make(grid, tmp_path).skipped or make is mrl_curves
    assert len(drawn) >= 3
    for fig in drawn:
        assert cut_labels(fig, renderer_of(fig)) == [], fig.axes[0].get_title()


def test_heatmap_colour_bar_label_fits_a_three_row_heatmap(drawn, tmp_path) -> None:
    task_heatmap(grid_of(BASELINE, tasks=("BFCLToolRetrieval", "SyntheticQuery2Doc", "SyntheticQuery2Query"),
                         metrics=METRICS), tmp_path)
    (fig,) = drawn
    renderer = renderer_of(fig)
    colorbar = next(ax for ax in fig.axes if ax.get_label() == "<colorbar>")
    label = colorbar.yaxis.label
    assert label.get_text() == MIXED
    assert inside(label.get_window_extent(renderer), fig.bbox)


HEATMAP_TASKS = ("BFCLToolRetrieval", "SyntheticQuery2Doc", "SyntheticQuery2Query")
CONTEXTUAL = {"context": "late-chunking", "limit_queries": 100, "rescore_depth": 100}


@pytest.mark.parametrize("grid", [
    grid_of(RICH, tasks=HEATMAP_TASKS, metrics=METRICS, long_labels=True),
    Grid([result("pplx-embed-context-v1-0.6b", precision, 1024, 1024, 0.6, task, metric=metric, variant=CONTEXTUAL)
          for precision in ("fp32", "int8", "binary", "binary+int8") for task, metric in zip(HEATMAP_TASKS, METRICS)]),
], ids=["rich", "contextual-variant"])
def test_heatmap_keeps_its_cells_wide_beside_long_row_labels(grid, drawn, tmp_path) -> None:
    """Row labels as long as a variant makes them: the cells keep room for their scores, the rotated task
    names under them do not overlap, and no row label is cut at the figure's left edge."""
    task_heatmap(grid, tmp_path)
    (fig,) = drawn
    renderer = renderer_of(fig)
    ax = fig.axes[0]
    assert cut_labels(fig, renderer) == []
    cell_inches = ax.get_window_extent(renderer).width / fig.dpi / len(HEATMAP_TASKS)
    assert cell_inches >= 1.0
    shapes = [rotated_box(t, renderer) for t in ax.get_xticklabels() if t.get_text()]
    assert len(shapes) == 3
    for a, b in itertools.combinations(shapes, 2):
        assert not convex_overlap(a, b)


def rotated_box(text: Text, renderer) -> np.ndarray:
    """The corners of a text rotated by 0 < angle < 90 degrees (its extent is the upright box around them)."""
    box = text.get_window_extent(renderer)
    c, s = math.cos(math.radians(text.get_rotation())), math.sin(math.radians(text.get_rotation()))
    w = (box.width * c - box.height * s) / (c * c - s * s)
    h = (box.height * c - box.width * s) / (c * c - s * s)
    x0, y0 = box.x0, box.y0
    return np.array([(x0 + h * s, y0), (x0 + h * s + w * c, y0 + w * s), (x0 + w * c, y0 + w * s + h * c),
                     (x0, y0 + h * c)])


def convex_overlap(p: np.ndarray, q: np.ndarray) -> bool:
    """Separating-axis test of two convex polygons (corners in order)."""
    for poly in (p, q):
        for a, b in zip(poly, np.roll(poly, -1, axis=0)):
            normal = np.array([a[1] - b[1], b[0] - a[0]])
            pp, qq = p @ normal, q @ normal
            if pp.max() <= qq.min() or qq.max() <= pp.min():
                return False
    return True


# --- the metric an axis names ---------------------------------------------------------------------

def axis_labels(fig: Figure) -> list[str]:
    """The y label of every plot and the colour bar's label: the axes that carry main scores."""
    return [ax.yaxis.label.get_text() for ax in fig.axes if ax.get_label() == "<colorbar>"
            or not any(a.get_label() == "<colorbar>" for a in fig.axes)]


@pytest.mark.parametrize("metrics,expected", [(("recall_at_10",), "recall_at_10"), (METRICS, MIXED)],
                         ids=["one-metric", "mixed"])
def test_score_axis_names_the_one_metric_or_says_mixed_once(metrics, expected, drawn, tmp_path) -> None:
    grid = grid_of(RICH, tasks=("A", "B", "C"), metrics=metrics)
    for make in (quality_vs_bytes, task_heatmap, precision_deltas, mrl_curves):
        assert not make(grid, tmp_path).skipped
    labels = [label for fig in drawn for label in axis_labels(fig)]
    assert len(labels) == 4
    for label in labels:
        assert label.count(expected) == 1, label
        others = [m for m in METRICS if m != expected] + ([] if expected == MIXED else [MIXED, "main score"])
        assert not [m for m in others if m in label], label
    heatmap = drawn[1]
    ticks = [t.get_text() for t in heatmap.axes[0].get_xticklabels()]
    if expected == MIXED:  # the colour bar says mixed: each task's column names its metric
        assert ticks == [f"{task}\n{metric}" for task, metric in zip("ABC", METRICS)]
    else:
        assert ticks == ["A", "B", "C"]


def test_a_mean_over_tasks_with_one_metric_names_it_even_when_other_tasks_differ(drawn, tmp_path) -> None:
    """The label follows the plotted results only: a task no row shares is not in the mean, nor in the label."""
    grid = Grid([result(m, p, d, b, s, "T1", metric="recall_at_10") for m, p, d, b, s in BASELINE]
                + [result("minilm-l6", "fp32", 384, 1536, 0.5, "Other", metric="ndcg_at_10")])
    fd = quality_vs_bytes(grid, tmp_path)
    assert fd.data["tasks"] == ["T1"]
    assert drawn[0].axes[0].get_ylabel().startswith("recall_at_10, mean over 1 task(s)")


# --- the label search -----------------------------------------------------------------------------

def test_label_search_finds_the_cheapest_positions_of_small_sets() -> None:
    """Against brute force over every assignment (the greedy first guess alone misses many of these)."""
    from embedbench.report.labels import _choose

    rng = np.random.default_rng(7)
    for _ in range(60):
        n, m = int(rng.integers(1, 5)), int(rng.integers(1, 7))
        unary = rng.choice([0.0, 0.0, 3.0, 40.0, 500.0], size=(n, m)).tolist()
        clashes = rng.choice([0.0, 0.0, 0.0, 1000.0], size=(n, m, n, m))
        clashes = np.maximum(clashes, clashes.transpose(2, 3, 0, 1))  # symmetric, as overlaps are

        def pair(i, c, j, k, clashes=clashes):
            return float(clashes[i, c, j, k])

        def total(a, unary=unary, pair=pair, n=n):
            return (sum(unary[i][a[i]] for i in range(n))
                    + sum(pair(i, a[i], j, a[j]) for i, j in itertools.combinations(range(n), 2)))

        best = min(total(a) for a in itertools.product(range(m), repeat=n))
        assert total(_choose(unary, pair)) == best


def test_scale_curves_name_each_panels_metric_and_fit(drawn, tmp_path) -> None:
    from embedbench.report.figures import scale_curves

    results = [result("m", precision, 64, 256, score, task, metric=metric).model_copy(
                   update={"variant": {"corpus_size": size}})
               for task, metric in (("Q2D", "recall_at_100"), ("Q2Q", "recall_at_10"))
               for precision, score in (("fp32", 0.8), ("binary", 0.7)) for size in (1000, 10_000)]
    assert not scale_curves(Grid(results), tmp_path).skipped
    (fig,) = drawn
    assert sorted(ax.get_ylabel() for ax in fig.axes) == ["recall_at_10 (0-1)", "recall_at_100 (0-1)"]
    assert cut_labels(fig, renderer_of(fig)) == []
