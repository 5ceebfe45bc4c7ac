"""`embedbench report`: leaderboards, the quantization trade-off and figures, from results only.

Everything a report shows comes from the result files (suite membership included, see suites.py):
nothing here reads suite files, loads data or a model, so the same results give the same report.

    build_report(results_dir, out_dir) -> list[Path]   every file written, index.md last

Files: leaderboard.md / .csv / .html, reference.csv (numbers reported by the model authors),
tradeoff.md / .csv, figures as PNG + SVG, and index.md listing them (and any figure skipped, why).
"""

from __future__ import annotations

from pathlib import Path

from embedbench.atomic import atomic_write_text
from embedbench.errors import EmbedbenchError
from embedbench.report.figures import write_figures
from embedbench.report.grid import Grid
from embedbench.report.cost import Prices, write_cost
from embedbench.report.html import write_html
from embedbench.report.leaderboard import build_leaderboard, write_leaderboard
from embedbench.report.plotting import FigureData
from embedbench.report.tradeoff import pareto_front, write_tradeoff
from embedbench.results import Result, read_results
from embedbench.results.latency import read_latencies
from embedbench.scoring.stats import bootstrap_ci

__all__ = ["build_report", "build_grid", "bootstrap_ci", "pareto_front", "FigureData", "Grid"]

_DESCRIPTIONS = {
    "leaderboard.md": "leaderboard (markdown), with the reported-by-authors table",
    "leaderboard.csv": "leaderboard (CSV): scores, 95% CIs, dataset hashes, best flags",
    "leaderboard.html": "interactive leaderboard: sort, filter, provenance per number",
    "reference.csv": "numbers reported by the model authors (not measured here)",
    "tradeoff.md": "quantization trade-off: score, delta vs own fp32, bytes and vectors per GiB",
    "tradeoff.csv": "quantization trade-off (CSV)",
    "cost.md": "cost of ownership of 10^9 pages per model x precision x index: storage, speed, encoding cost",
    "cost.csv": "cost of ownership (CSV)",
}


def build_grid(results: list[Result], results_dir: Path | None = None) -> Grid:
    return Grid(results, results_dir)


def build_report(results_dir: Path, out_dir: Path, *, price_per_mtok: float | None = None,
                 gpu_hour_cost: float | None = None) -> list[Path]:
    """Read every result under `results_dir` and write the reports into `out_dir`; returns the files.

    `price_per_mtok` / `gpu_hour_cost` (as given by the user, never assumed) price embedding 10^9 pages
    in cost.md."""
    results_dir, out_dir = Path(results_dir), Path(out_dir)
    results = read_results(results_dir)
    if not results:
        raise EmbedbenchError(f"no results under {results_dir}: run `embedbench eval` first")
    out_dir.mkdir(parents=True, exist_ok=True)
    grid = Grid(results, results_dir)
    lb = build_leaderboard(grid)
    files = write_leaderboard(lb, out_dir)
    files.append(write_html(lb, out_dir))
    files += write_tradeoff(grid, out_dir)
    files += write_cost(results, read_latencies(results_dir), out_dir, Prices(price_per_mtok, gpu_hour_cost))
    figures = write_figures(grid, out_dir)
    for fd in figures:
        files += fd.files
    files.append(write_index(out_dir, files, figures, len(results)))
    return files


def write_index(out_dir: Path, files: list[Path], figures: list[FigureData], n_results: int) -> Path:
    lines = ["# embedbench report", "", f"Built from {n_results} result(s).", "", "## Tables", ""]
    lines += [f"- [{p.name}]({p.name}): {_DESCRIPTIONS.get(p.name, '')}" for p in files if p.name in _DESCRIPTIONS]
    lines += ["", "## Figures", ""]
    for fd in figures:
        if fd.skipped:
            lines.append(f"- {fd.title}: skipped ({fd.skipped})")
        else:
            links = ", ".join(f"[{p.suffix[1:].upper()}]({p.name})" for p in fd.files)
            lines.append(f"- {fd.title}: {links}" + (f" — {fd.note}" if fd.note else ""))
    return atomic_write_text(out_dir / "index.md", "\n".join(lines) + "\n")
