"""Point labels that do not overlap: each label takes one of a fixed list of positions around its point
(four diagonals, above, below, right, left; then the diagonals farther out, with a leader line back to the
point). The positions of all labels are chosen together to keep every label's box inside the axes and clear
of the other labels, of every plotted marker and of the given axis-parallel lines, and as near its point
as that allows; when no choice is clear, the one with the least overlap wins. No randomness: the same
figure gets the same positions.

Call it after the figure's layout is final (fit_figure, then `fig.set_layout_engine("none")`): positions
are chosen in display coordinates, which a later layout pass would move.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from matplotlib.axes import Axes
from matplotlib.text import Annotation, Text
from matplotlib.transforms import Bbox

# (dx, dy) directions, in the order they are preferred, and the distances tried (points from the marker's edge).
DIRECTIONS = ((1, -1), (1, 1), (-1, -1), (-1, 1), (0, 1), (0, -1), (1, 0), (-1, 0))
DISTANCES = (4.0, 22.0, 40.0, 58.0, 76.0)  # one ring to the next: a label's height and margins
MARGIN_PT = 2.0  # clear space kept around every label box
RING_COST = 30.0  # what moving a label one ring farther out costs, against a pixel of line under it
LEADER_CROSSING = 200.0  # a leader line through a marker, a line or another label
SEARCH_BUDGET = 20_000  # label positions tried at most (a long frontier keeps the best found by then)

Point = tuple[float, float]
Segment = tuple[Point, Point]  # data coordinates, axis-parallel


def place_labels(ax: Axes, points: Sequence[Point], texts: Sequence[str], *, radius_pt: float,
                 markers: Sequence[Point] = (), marker_radius_pt: float = 4.0, lines: Sequence[Segment] = (),
                 fontsize: float = 10) -> list[Annotation]:
    """Label each of `points` (data coordinates, ringed markers of `radius_pt`) with its text; `markers`
    are the other plotted points to keep clear of, `lines` the axis-parallel segments labels should not
    sit on. The positions are chosen together (_choose), so a label squeezed against the axes' edge is not
    crowded out by its neighbours. Returns the annotations, in the order of `points`."""
    fig = ax.get_figure()
    renderer = fig.canvas.get_renderer()
    px = fig.dpi / 72.0
    to_px = ax.transData.transform
    area = ax.get_window_extent(renderer)
    obstacles = [_square(to_px(p), radius_pt * px) for p in points]
    obstacles += [_square(to_px(p), marker_radius_pt * px) for p in markers]
    segments = [(tuple(to_px(a)), tuple(to_px(b))) for a, b in lines]
    # Past the first ring a label has a leader line: only diagonal ones, which never run along an axis-parallel line.
    candidates = [(distance, (dx, dy)) for distance in DISTANCES for dx, dy in DIRECTIONS
                  if distance == DISTANCES[0] or (dx and dy)]
    rings = [DISTANCES.index(distance) for distance, _ in candidates]
    # Every label's box and leader line (None on the first ring) at every candidate position, and what that
    # costs before the other labels are placed: leaving the axes, covering a marker or the frontier line, a
    # leader crossing either, and the distance from the point.
    boxes: list[list[Bbox]] = []
    leaders: list[list[tuple[Point, Point] | None]] = []
    unary: list[list[float]] = []
    for i, (point, text) in enumerate(zip(points, texts)):
        probe = ax.annotate(text, point, xytext=(0, 0), textcoords="offset points", fontsize=fontsize)
        x, y = to_px(point)
        others = obstacles[:i] + obstacles[i + 1:]
        mine, lines_, costs = [], [], []
        for rank, (distance, (dx, dy)) in enumerate(candidates):
            offset = _offset(dx, dy, radius_pt + distance)
            _style(probe, offset, dx, dy)
            box = _grow(text_extent(probe, renderer), MARGIN_PT * px)
            start = (x + dx * radius_pt * px * 1.1, y + dy * radius_pt * px * 1.1)  # just outside its own ring
            leader = None if rings[rank] == 0 else (start, (x + offset[0] * px, y + offset[1] * px))
            cost = (100 * _outside(box, area) + 10 * sum(_overlap(box, o) for o in obstacles)
                    + sum(_crossing(box, seg) for seg in segments) + RING_COST * rings[rank] + rank)
            if leader is not None:
                cost += LEADER_CROSSING * (sum(_hits(leader, o) for o in others)
                                           + sum(_cuts(leader, seg) for seg in segments))
            mine.append(box)
            lines_.append(leader)
            costs.append(cost)
        probe.remove()
        boxes.append(mine)
        leaders.append(lines_)
        unary.append(costs)

    def pair(i: int, c: int, j: int, k: int) -> float:
        """Two labels' boxes overlapping, or a leader line through the other's box."""
        crossings = sum(1 for line, box in ((leaders[i][c], boxes[j][k]), (leaders[j][k], boxes[i][c]))
                        if line is not None and _hits(line, box))
        return 100 * _overlap(boxes[i][c], boxes[j][k]) + LEADER_CROSSING * crossings

    placed = _choose(unary, pair)
    out = []
    for point, text, choice in zip(points, texts, placed):
        distance, (dx, dy) = candidates[choice]
        offset = _offset(dx, dy, radius_pt + distance)
        # from the text's corner nearest the point (the anchor) to the ring: the line the search measured
        leader = {"arrowstyle": "-", "color": "0.35", "lw": 0.8, "shrinkA": 0, "shrinkB": radius_pt,
                  "relpos": ((1 - dx) / 2, (1 - dy) / 2)}
        ann = ax.annotate(text, point, xytext=offset, textcoords="offset points", fontsize=fontsize, zorder=5,
                          bbox={"boxstyle": "round,pad=0.15", "fc": "white", "alpha": 0.85, "lw": 0},
                          arrowprops=leader if distance > DISTANCES[0] else None)
        _style(ann, offset, dx, dy)
        out.append(ann)
    return out


def _choose(unary: list[list[float]], pair: Callable[[int, int, int, int], float]) -> list[int]:
    """Each label's candidate, minimising the total of the candidates' own costs (`unary[label][candidate]`)
    and of `pair(i, c, j, k)` over every two labels. A depth-first branch and bound, most constrained label
    first, seeded with the greedy answer and stopped after SEARCH_BUDGET positions tried; deterministic."""
    n = len(unary)
    order = sorted(range(n), key=lambda i: (sorted(unary[i])[:3], i))
    ranked = [sorted(range(len(unary[i])), key=lambda c: (unary[i][c], c)) for i in range(n)]
    rest = [0.0] * (n + 1)  # a lower bound on what the labels order[k:] add
    for k in range(n - 1, -1, -1):
        rest[k] = rest[k + 1] + unary[order[k]][ranked[order[k]][0]]
    chosen: dict[int, int] = {}

    def clash(i: int, c: int) -> float:
        return sum(pair(i, c, j, k) for j, k in chosen.items())

    total = 0.0
    for i in order:  # greedy: the bound to beat
        c = min(ranked[i], key=lambda c: (unary[i][c] + clash(i, c), c))
        total += unary[i][c] + clash(i, c)
        chosen[i] = c
    best_total, best = total, dict(chosen)
    chosen.clear()
    tried = 0

    def search(k: int, total: float) -> None:
        nonlocal best_total, best, tried
        if k == n:
            if total < best_total:
                best_total, best = total, dict(chosen)
            return
        i = order[k]
        for c in ranked[i]:
            if tried >= SEARCH_BUDGET or total + unary[i][c] + rest[k + 1] >= best_total:
                return  # `ranked` is ascending: no later candidate does better
            tried += 1
            cost = unary[i][c] + clash(i, c)
            chosen[i] = c
            search(k + 1, total + cost)
            del chosen[i]

    search(0, 0.0)
    return [best[i] for i in range(n)]


def text_extent(ann: Annotation, renderer) -> Bbox:
    """The label's text box in display pixels, without its leader line."""
    ann.update_positions(renderer)
    return Text.get_window_extent(ann, renderer)


def _offset(dx: int, dy: int, r: float) -> Point:
    return (dx * r, dy * r)


def _style(ann: Annotation, offset: Point, dx: int, dy: int) -> None:
    ann.set_position(offset)  # an Annotation's position is its text offset (xyann)
    ann.set_horizontalalignment({1: "left", -1: "right", 0: "center"}[dx])
    ann.set_verticalalignment({1: "bottom", -1: "top", 0: "center"}[dy])


def _square(center, half: float) -> Bbox:
    x, y = center
    return Bbox.from_extents(x - half, y - half, x + half, y + half)


def _grow(box: Bbox, by: float) -> Bbox:
    return Bbox.from_extents(box.x0 - by, box.y0 - by, box.x1 + by, box.y1 + by)


def _overlap(a: Bbox, b: Bbox) -> float:
    w = min(a.x1, b.x1) - max(a.x0, b.x0)
    h = min(a.y1, b.y1) - max(a.y0, b.y0)
    return w * h if w > 0 and h > 0 else 0.0


def _outside(box: Bbox, area: Bbox) -> float:
    return box.width * box.height - _overlap(box, area)


def _crossing(box: Bbox, segment: Segment) -> float:
    """Length of an axis-parallel segment inside the box (pixels)."""
    (x0, y0), (x1, y1) = segment
    if abs(y0 - y1) < 1e-9 and box.y0 < y0 < box.y1:
        return max(0.0, min(box.x1, max(x0, x1)) - max(box.x0, min(x0, x1)))
    if abs(x0 - x1) < 1e-9 and box.x0 < x0 < box.x1:
        return max(0.0, min(box.y1, max(y0, y1)) - max(box.y0, min(y0, y1)))
    return 0.0


def _hits(line: tuple[Point, Point], box: Bbox) -> bool:
    """Whether a segment passes through a box (Liang-Barsky clipping)."""
    (x0, y0), (x1, y1) = line
    lo, hi = 0.0, 1.0
    for p, q in ((x0 - x1, x0 - box.x0), (x1 - x0, box.x1 - x0), (y0 - y1, y0 - box.y0), (y1 - y0, box.y1 - y0)):
        if p == 0:
            if q < 0:
                return False
            continue
        t = q / p
        if p < 0:
            lo = max(lo, t)
        else:
            hi = min(hi, t)
        if lo > hi:
            return False
    return True


def _cuts(line: tuple[Point, Point], segment: Segment) -> bool:
    """Whether a segment crosses an axis-parallel one."""
    (x0, y0), (x1, y1) = line
    (a0, b0), (a1, b1) = segment
    if abs(b0 - b1) < 1e-9:  # horizontal at y = b0
        if y0 == y1:
            return False
        t = (b0 - y0) / (y1 - y0)
        return 0 <= t <= 1 and min(a0, a1) <= x0 + t * (x1 - x0) <= max(a0, a1)
    if x0 == x1:
        return False
    t = (a0 - x0) / (x1 - x0)  # vertical at x = a0
    return 0 <= t <= 1 and min(b0, b1) <= y0 + t * (y1 - y0) <= max(b0, b1)
