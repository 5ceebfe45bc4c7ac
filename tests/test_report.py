"""embedbench.report: tables, figures and their numbers, from synthetic results written to disk."""

from __future__ import annotations

import hashlib
import itertools
import math
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from embedbench.report import build_grid, build_report, pareto_front
from embedbench.report.figures import (mrl_curves, precision_deltas, quality_vs_bytes, recall_curves, scale_curves,
                                       task_heatmap)
from embedbench.report.grid import Grid
from embedbench.report.html import write_html
from embedbench.report.leaderboard import build_leaderboard, write_leaderboard
from embedbench.report.reference import REPORTED
from embedbench.report.tradeoff import tradeoff_rows
from embedbench.results import Provenance, Result, read_per_query, read_results, write_result
from embedbench.scoring.stats import bootstrap_ci

BYTES = {"fp32": 4.0, "int8": 1.0, "binary": 1 / 8}
BASE = {"fp32": 0.62, "int8": 0.60, "binary": 0.52}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def make_result(model: str = "m", precision: str = "fp32", dim: int = 64, task: str = "T1", *, suite: str = "s",
                revision: str = "r1", dataset_hash: str | None = None, created_at: str = "2026-03-01T00:00:00+00:00",
                n_queries: int = 40, level: float | None = None) -> tuple[Result, dict[str, dict[str, float]]]:
    """A plausible result and its per-query file; scores are seeded by the identity, so reproducible."""
    seed = int.from_bytes(hashlib.sha256(f"{model}{revision}{precision}{dim}{task}{dataset_hash}".encode()).digest()[:4],
                          "little")
    rng = np.random.default_rng(seed)
    level = level if level is not None else BASE[precision] - (0.05 if dim < 64 else 0) + (0.04 if model == "b" else 0)
    main = np.clip(rng.normal(level, 0.2, n_queries), 0, 1)
    per_query = {"ndcg_at_10": {f"q{i}": float(v) for i, v in enumerate(main)}}
    for j, k in enumerate((1, 3, 5, 10, 20, 100, 1000)):
        per_query[f"recall_at_{k}"] = {f"q{i}": float(min(1.0, v + 0.04 * j)) for i, v in enumerate(main)}
    metrics = {name: float(np.mean(list(v.values()))) for name, v in per_query.items()}
    provenance = Provenance(
        embedbench_version="0.1.0", git_commit="0123456789abcdef0123456789abcdef01234567",
        packages={"numpy": np.__version__}, command=["embedbench", "eval", "--model", model],
        model_fingerprint=f"fp-{model}-{revision}", dataset_hash=dataset_hash or f"data-{task}", device="cpu",
        batch_size=32, max_length=512, truncated_share={"query": 0.0, "document": 0.01}, texts_encoded=100,
        texts_cached=0, created_at=created_at)
    result = Result(
        model=model, revision=revision, suite=suite, task=task, split="test", language="en", precision=precision,
        quantization="none" if precision == "fp32" else "posthoc", dim=dim, main_score_name="ndcg_at_10",
        main_score=metrics["ndcg_at_10"], metrics=metrics, n_queries=n_queries, n_docs=500,
        bytes_per_vector=int(dim * BYTES[precision]), encode_seconds=1.0, search_seconds=0.1, docs_per_second=None,
        provenance=provenance)
    return result, per_query


def standard_results(root: Path) -> Path:
    """Models a and b, fp32/int8/binary at 64 and 32 dims, tasks T1 and T2; b lacks binary T2."""
    for model, precision, dim, task in itertools.product("ab", ("fp32", "int8", "binary"), (64, 32), ("T1", "T2")):
        if not (model == "b" and precision == "binary" and task == "T2"):
            write_result(root, *make_result(model, precision, dim, task))
    return root


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[Path]]:
    results = standard_results(tmp_path_factory.mktemp("results"))
    out = tmp_path_factory.mktemp("reports")
    return results, out, build_report(results, out)


@pytest.fixture(scope="module")
def grid(report: tuple[Path, Path, list[Path]]) -> Grid:
    results_dir = report[0]
    return Grid(read_results(results_dir), results_dir)


def scores_of(results_dir: Path) -> dict[tuple, float]:
    return {(r.model, r.precision, r.dim, r.task): r.main_score for r in read_results(results_dir)}


def brute_force_front(points: list[tuple[float, float]]) -> list[int]:
    return [i for i, (b, s) in enumerate(points)
            if not any(b2 <= b and s2 >= s and (b2 < b or s2 > s) for b2, s2 in points)]


# --- stats and Pareto ---------------------------------------------------------------------------

def test_bootstrap_ci_contains_mean_and_is_deterministic() -> None:
    values = np.random.default_rng(3).beta(2, 5, 200).tolist()
    low, high = bootstrap_ci(values, 1000, seed=0)
    assert low < float(np.mean(values)) < high
    assert (low, high) == bootstrap_ci(values, 1000, seed=0)
    assert (low, high) != bootstrap_ci(values, 1000, seed=1)
    assert bootstrap_ci([0.5] * 10) == (0.5, 0.5)
    narrow = bootstrap_ci(values, level=0.5)
    assert low <= narrow[0] <= narrow[1] <= high
    with pytest.raises(ValueError):
        bootstrap_ci([])


def test_pareto_front_is_exactly_the_non_dominated_points() -> None:
    assert pareto_front([(4, 0.5), (8, 0.6), (8, 0.55), (16, 0.6), (2, 0.5), (2, 0.5)]) == [1, 4, 5]
    assert pareto_front([]) == []
    rng = np.random.default_rng(0)
    for _ in range(200):
        n = int(rng.integers(1, 12))
        points = [(float(rng.choice([4, 8, 16, 32, 64])), float(rng.choice([0.4, 0.5, 0.6, 0.7]))) for _ in range(n)]
        assert pareto_front(points) == brute_force_front(points)
    assert pareto_front([(4, float("nan")), (8, 0.5)]) == [1]


# --- files --------------------------------------------------------------------------------------

def test_build_report_writes_every_file(report: tuple[Path, Path, list[Path]]) -> None:
    _, out, files = report
    names = {p.name for p in files}
    expected = {"leaderboard.md", "leaderboard.csv", "leaderboard.html", "reference.csv", "tradeoff.md",
                "tradeoff.csv", "index.md"}
    for fig in ("quality_vs_bytes", "task_heatmap", "precision_deltas", "recall_curves", "mrl_curves"):
        expected |= {f"{fig}.png", f"{fig}.svg"}
    assert expected <= names
    for path in files:
        assert path.parent == out and path.stat().st_size > 0
        if path.suffix == ".png":
            assert path.read_bytes()[:8] == PNG_MAGIC
        if path.suffix == ".svg":
            assert ET.parse(path).getroot().tag.endswith("svg")
    index = (out / "index.md").read_text()
    assert all(p.name in index for p in files if p.name != "index.md")
    # every figure is drawn except the scale curves (these results have no corpus sizes)
    assert [line for line in index.splitlines() if "skipped" in line] == [
        "- Main score vs corpus size: skipped (needs a model x precision evaluated at two or more corpus sizes "
        "(--corpus-size))"]


def test_figures_skipped_and_listed_when_data_is_missing(tmp_path: Path) -> None:
    results = tmp_path / "results"
    for task in ("T1", "T2"):
        write_result(results, *make_result("only", "fp32", 64, task))
    files = build_report(results, tmp_path / "out")
    names = {p.name for p in files}
    assert "task_heatmap.png" in names and "mrl_curves.png" not in names and "precision_deltas.svg" not in names
    index = (tmp_path / "out" / "index.md").read_text()
    assert "Main score vs embedding dimension (MRL truncation): skipped" in index
    assert "Mean score change vs the model's own fp32 (full dimension): skipped" in index


# --- plotted numbers equal the results ----------------------------------------------------------

def test_heatmap_data_equals_main_scores(grid: Grid, tmp_path: Path, report) -> None:
    fd = task_heatmap(grid, tmp_path)
    scores = scores_of(report[0])
    assert fd.data["columns"] == ["T1", "T2"]
    for row, label, values in zip(grid.rows, fd.data["rows"], fd.data["values"]):
        assert label == row.label
        for task, value in zip(("T1", "T2"), values):
            expected = scores.get((row.key.model, row.precision, row.dim, task))
            assert (math.isnan(value) and expected is None) or value == expected


def test_deltas_equal_score_minus_own_fp32(grid: Grid, tmp_path: Path, report) -> None:
    scores = scores_of(report[0])
    for tr in tradeoff_rows(grid):
        model = tr.row.key.model
        for task, delta in tr.deltas.items():
            assert delta == pytest.approx(scores[(model, tr.row.precision, tr.row.dim, task.task)]
                                          - scores[(model, "fp32", 64, task.task)])
    fd = precision_deltas(grid, tmp_path)
    for model, precision in itertools.product("ab", ("int8", "binary")):
        tasks = ["T1"] if (model, precision) == ("b", "binary") else ["T1", "T2"]
        expected = np.mean([scores[(model, precision, 64, t)] - scores[(model, "fp32", 64, t)] for t in tasks])
        assert fd.data["deltas"][model][precision] == pytest.approx(expected)
    frame = pd.read_csv(report[1] / "tradeoff.csv")
    row = frame[(frame.model == "a") & (frame.precision == "int8") & (frame.dim == 32)].iloc[0]
    assert row["T1:delta_vs_fp32"] == pytest.approx(scores[("a", "int8", 32, "T1")] - scores[("a", "fp32", 64, "T1")])
    assert row["pages_per_gb"] == 2**30 // 32 and row["bytes_per_vector"] == 32


def test_quality_vs_bytes_plots_means_and_marks_the_pareto_points(grid: Grid, tmp_path: Path, report) -> None:
    fd = quality_vs_bytes(grid, tmp_path)
    scores = scores_of(report[0])
    points = fd.data["points"]
    assert fd.data["tasks"] == ["T1", "T2"] and fd.data["left_out"] == ["b · binary · 32d", "b · binary · 64d"]
    assert len(points) == 10
    for p in points:
        assert p["score"] == pytest.approx(np.mean([scores[(p["model"], p["precision"], p["dim"], t)]
                                                    for t in ("T1", "T2")]))
        assert p["bytes"] == int(p["dim"] * BYTES[p["precision"]])
    assert fd.data["front"] == brute_force_front([(p["bytes"], p["score"]) for p in points])


def test_recall_and_mrl_curves_plot_the_metrics(grid: Grid, tmp_path: Path, report) -> None:
    results = {(r.model, r.precision, r.dim, r.task): r for r in read_results(report[0])}
    fd = recall_curves(grid, tmp_path)
    assert fd.data["k"] == [1, 3, 5, 10, 20, 100, 1000]
    ys = fd.data["lines"]["a · int8"]
    assert ys == pytest.approx([np.mean([results[("a", "int8", 64, t)].metrics[f"recall_at_{k}"] for t in ("T1", "T2")])
                                for k in fd.data["k"]])
    fd = mrl_curves(grid, tmp_path)
    line = fd.data["lines"]["b · binary"]
    assert line["dims"] == [32, 64] and line["tasks"] == ["T1"]
    assert line["scores"] == [results[("b", "binary", d, "T1")].main_score for d in (32, 64)]


# --- leaderboard rules --------------------------------------------------------------------------

def test_leaderboard_ci_from_per_query_file(report) -> None:
    results_dir, out, _ = report
    frame = pd.read_csv(out / "leaderboard.csv")
    r = next(r for r in read_results(results_dir) if (r.model, r.precision, r.dim, r.task) == ("a", "int8", 64, "T2"))
    row = frame[(frame.model == "a") & (frame.precision == "int8") & (frame.dim == 64)].iloc[0]
    low, high = bootstrap_ci(read_per_query(results_dir, r)["ndcg_at_10"].values())  # the gate's resamples too
    assert (row["T2:ci_low"], row["T2:ci_high"]) == pytest.approx((low, high))
    assert row["T2:ci_low"] <= row["T2"] <= row["T2:ci_high"]
    assert row["T2:dataset_hash"] == "data-T2"


def test_averages_skip_incomplete_rows(report) -> None:
    _, out, _ = report
    frame = pd.read_csv(out / "leaderboard.csv")
    incomplete = frame[(frame.model == "b") & (frame.precision == "binary")]
    assert len(incomplete) == 2 and incomplete["s:mean"].isna().all()
    complete = frame[(frame.model == "a") & (frame.precision == "fp32") & (frame.dim == 64)].iloc[0]
    assert complete["s:mean"] == pytest.approx((complete["T1"] + complete["T2"]) / 2)
    md = (out / "leaderboard.md").read_text()
    assert "b · binary · 64d: no result for T2" in md
    best = frame[frame["s:mean:best"]]
    assert list(best.model) == ["b"] and list(best.precision) == ["fp32"] and list(best.dim) == [64]


def test_two_revisions_are_never_averaged_together(tmp_path: Path) -> None:
    results = tmp_path / "results"
    write_result(results, *make_result("m", "fp32", 64, "T1", revision="rev-old"))
    write_result(results, *make_result("m", "fp32", 64, "T2", revision="rev-new"))
    write_result(results, *make_result("m", "fp32", 64, "T1", revision="rev-new"))
    build_report(results, tmp_path / "out")
    frame = pd.read_csv(tmp_path / "out" / "leaderboard.csv")
    assert sorted(frame.revision) == ["rev-new", "rev-old"]
    old = frame[frame.revision == "rev-old"].iloc[0]
    new = frame[frame.revision == "rev-new"].iloc[0]
    assert math.isnan(old["s:mean"]) and math.isnan(old["T2"])
    assert new["s:mean"] == pytest.approx((new["T1"] + new["T2"]) / 2)
    assert "m@rev-old" in (tmp_path / "out" / "leaderboard.md").read_text()


def test_different_dataset_hashes_are_separate_flagged_rows(tmp_path: Path) -> None:
    results = tmp_path / "results"
    write_result(results / "run1", *make_result("m", "fp32", 64, "T1", dataset_hash="old", created_at="2026-01-01"))
    write_result(results / "run2", *make_result("m", "fp32", 64, "T1", dataset_hash="new", created_at="2026-02-01"))
    write_result(results / "run2", *make_result("m", "int8", 64, "T1", dataset_hash="new", created_at="2026-02-01"))
    grid = Grid(read_results(results), results)
    fp32 = [row for row in grid.rows if row.precision == "fp32"]
    assert len(fp32) == 2
    assert [row.cells[next(iter(row.cells))].provenance.dataset_hash for row in fp32] == ["new", "old"]
    assert all(row.flags for row in fp32)
    lb = build_leaderboard(grid)
    assert any("different data" in note for note in lb.footnotes())
    older = next(lr for lr in lb.rows if lr.row.key.data_tag == 1)
    assert older.cells["T1"].other_data and not older.cells["T1"].best
    (int8,) = [tr for tr in tradeoff_rows(grid) if tr.row.precision == "int8"]
    assert set(int8.deltas) == {next(iter(int8.row.cells))}  # compared with the fp32 result on the same data
    assert int8.deltas[next(iter(int8.row.cells))] == pytest.approx(
        int8.row.first.main_score - fp32[0].first.main_score)


def test_reference_rows_are_separate_and_never_best(tmp_path: Path) -> None:
    results = tmp_path / "results"
    write_result(results, *make_result("pplx-embed-v1-4b", "int8", 64, "T1", level=0.2))
    write_result(results, *make_result("other", "int8", 64, "T1", level=0.1))
    build_report(results, tmp_path / "out")
    frame = pd.read_csv(tmp_path / "out" / "leaderboard.csv")
    assert list(frame.model) == ["other", "pplx-embed-v1-4b"]
    assert list(frame["T1:best"]) == [False, True]
    reference = pd.read_csv(tmp_path / "out" / "reference.csv")
    assert len(reference) == len(REPORTED) and set(reference.reported_by) == {"authors"}
    assert 69.66 in set(reference.value_percent) and 81.96 in set(reference.value_percent)
    md = (tmp_path / "out" / "leaderboard.md").read_text()
    measured, reported = md.split("## Reported by authors")
    assert "69.66" not in measured and "**" not in reported and "arXiv:2602.11151" in reported


def from_suite(result: Result, suite: str, tasks: dict[str, tuple[str, int | None]]) -> Result:
    """`result` as the engine writes it when run from `suite`, whose tasks are {name: (type, corpus size)}."""
    task_type, corpus_size = tasks[result.task]
    return result.model_copy(update={"suite": suite, "suite_tasks": list(tasks), "task_type": task_type,
                                     "corpus_size": corpus_size})


def test_suite_task_types_are_the_ones_the_results_recorded(tmp_path: Path) -> None:
    suite = "mini"
    tasks = {"A": ("Retrieval", None), "B": ("Retrieval", None), "C": ("ToolRetrieval", None)}
    results = tmp_path / "results"
    for task, level in (("A", 0.2), ("B", 0.4), ("C", 0.9)):
        result, per_query = make_result("m", "fp32", 64, task, level=level)
        write_result(results, from_suite(result, suite, tasks), per_query)
    result, per_query = make_result("m", "int8", 64, "A")
    write_result(results, from_suite(result, suite, tasks), per_query)
    build_report(results, tmp_path / "out")
    frame = pd.read_csv(tmp_path / "out" / "leaderboard.csv")
    full = frame[frame.precision == "fp32"].iloc[0]
    assert full[f"{suite}:mean"] == pytest.approx((full.A + full.B + full.C) / 3)
    assert full[f"{suite}:mean_by_type"] == pytest.approx(((full.A + full.B) / 2 + full.C) / 2)
    assert frame[frame.precision == "int8"][f"{suite}:mean"].isna().all()


def test_a_suite_task_without_any_result_blanks_the_mean(tmp_path: Path) -> None:
    tasks = {"A": ("Retrieval", None), "B": ("Retrieval", None)}  # B was never run: not in the results at all
    results = tmp_path / "results"
    result, per_query = make_result("m", "fp32", 64, "A")
    write_result(results, from_suite(result, "mini", tasks), per_query)
    grid = build_grid(read_results(results), results)
    assert grid.suite_mean(grid.rows[0], "mini") == (None, "no result for B")


def test_multilingual_suite_task_is_the_mean_of_its_language_results(tmp_path: Path) -> None:
    suite, tasks = "multi", {"M": ("Retrieval", None), "S": ("Retrieval", None)}
    results = tmp_path / "results"
    scores = {}
    for task, language, level in (("M", "de", 0.2), ("M", "en", 0.6), ("S", "en", 0.9)):
        result, per_query = make_result("m", "fp32", 64, task, level=level)
        result = from_suite(result.model_copy(update={"language": language}), suite, tasks)
        write_result(results, result, per_query)
        scores[(task, language)] = result.main_score
    build_report(results, tmp_path / "out")
    row = pd.read_csv(tmp_path / "out" / "leaderboard.csv").iloc[0]
    task_mean = (scores[("M", "de")] + scores[("M", "en")]) / 2
    assert row[f"{suite}:mean"] == pytest.approx((task_mean + scores[("S", "en")]) / 2)


def test_scale_curves_plot_score_against_corpus_size(tmp_path: Path) -> None:
    results = tmp_path / "results"
    expected = {}
    for precision, size, level in itertools.product(("fp32", "binary"), (1000, 10000, 100000), (0.5,)):
        result, per_query = make_result("m", precision, 64, "Q2D", level=level - 0.05 * len(str(size)))
        result = result.model_copy(update={"variant": {"corpus_size": size}})
        write_result(results, result, per_query)
        expected[(precision, size)] = result.main_score
    write_result(results, *make_result("m", "fp32", 64, "Other"))  # no corpus size: not in the figure
    grid = build_grid(read_results(results), results)
    fd = scale_curves(grid, tmp_path)
    assert not fd.skipped and (tmp_path / "scale_curves.png").read_bytes().startswith(PNG_MAGIC)
    (panel,) = fd.data.values()
    for label, line in panel.items():
        precision = label.split(" · ")[1]
        assert line["sizes"] == [1000, 10000, 100000]
        assert line["scores"] == [expected[(precision, s)] for s in line["sizes"]]
    assert {label.split(" · ")[1] for label in panel} == {"fp32", "binary"}
    one_size = build_grid([r for r in read_results(results) if r.variant.get("corpus_size") in (None, 1000)])
    assert scale_curves(one_size, tmp_path / "none").skipped


def test_corpus_size_is_part_of_the_task_not_of_the_model_row(tmp_path: Path) -> None:
    suite = "mixed"  # S runs at 1,000 unless --corpus-size says otherwise, D at its loader's default 50,000
    tasks = {"A": ("Retrieval", None), "S": ("Query2Doc", 1000), "D": ("Query2Query", 50_000)}
    results = tmp_path / "results"
    scores = {}
    for task, size, level in (("A", None, 0.3), ("S", 1000, 0.8), ("S", 5000, 0.6), ("D", 50_000, 0.5)):
        result, per_query = make_result("m", "fp32", 64, task, level=level)
        if size:
            result = result.model_copy(update={"variant": {"corpus_size": size}})
        write_result(results, from_suite(result, suite, tasks), per_query)
        scores[(task, size)] = result.main_score
    grid = build_grid(read_results(results), results)
    (row,) = grid.rows
    assert len(row.cells) == 4
    mean, why = grid.suite_mean(row, suite)
    assert why == "" and mean == pytest.approx((scores[("A", None)] + scores[("S", 1000)] + scores[("D", 50_000)]) / 3)


def test_without_recorded_suite_facts_each_observed_size_is_a_suite_task(tmp_path: Path) -> None:
    """Results written before results recorded their suite's facts: the suite is what they hold."""
    results = tmp_path / "results"
    for model, sizes in (("full", (1000, 5000)), ("part", (1000,))):
        for size in sizes:
            result, per_query = make_result(model, "fp32", 64, "S")
            write_result(results, result.model_copy(update={"variant": {"corpus_size": size}}), per_query)
    grid = build_grid(read_results(results), results)
    full, part = sorted(grid.rows, key=lambda row: row.key.model)
    assert grid.suite_mean(full, "s")[0] == pytest.approx(sum(r.main_score for r in full.cells.values()) / 2)
    assert grid.suite_mean(part, "s") == (None, "no result for S (n=5,000)")


def test_markdown_escapes_cell_text(tmp_path: Path) -> None:
    results = tmp_path / "results"
    write_result(results, *make_result("org|model<b>", "fp32", 64, "T1"))
    build_report(results, tmp_path / "out")
    md = (tmp_path / "out" / "leaderboard.md").read_text()
    assert "org\\|model&lt;b&gt;" in md and "<b>" not in md


# --- zero-shot marks (issue 13, item 7) ------------------------------------------------------------

def trained_on(result: Result, overlap: list[str] | None) -> Result:
    """`result` as the engine records it: in the model's training data (overlap), zero-shot ([]), or
    unknown (None: as a result written before the flag existed)."""
    if overlap is None:
        return result
    source = "mteb 2.26.24 model registry entry org/p"
    provenance = result.provenance.model_copy(update={"training_data_source": source})
    return result.model_copy(update={"zero_shot": not overlap, "training_overlap": overlap, "provenance": provenance})


@pytest.fixture(scope="module")
def zero_shot_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Suite s of tasks T1..T3: model p was trained on T1's data, q on none, old has no flags at all."""
    results, out = tmp_path_factory.mktemp("zs-results"), tmp_path_factory.mktemp("zs-out")
    tasks = {t: ("Retrieval", None) for t in ("T1", "T2", "T3")}
    for model, overlaps in (("p", (["NQ"], [], [])), ("q", ([], [], [])), ("old", (None, None, None))):
        for task, overlap in zip(tasks, overlaps):
            result, per_query = make_result(model, "fp32", 64, task)
            write_result(results, from_suite(trained_on(result, overlap), "s", tasks), per_query)
    lb = build_leaderboard(Grid(read_results(results), results))  # the tables only: no figures needed here
    write_leaderboard(lb, out)
    write_html(lb, out)
    return out


def markdown_rows(md: str) -> dict[str, dict[str, str]]:
    """The measured table's rows by model: {column header: cell text}."""
    lines = [line for line in md.split("## Reported by authors")[0].splitlines() if line.startswith("| ")]
    header = [h.strip() for h in lines[0].strip("|").split("|")]
    return {cells[0]: dict(zip(header, cells)) for line in lines[2:]
            if (cells := [c.strip() for c in line.strip("|").split("|")])}


def test_leaderboard_marks_scores_on_training_data_and_counts_them_in_means(zero_shot_report: Path) -> None:
    md = (zero_shot_report / "leaderboard.md").read_text()
    rows = markdown_rows(md)
    assert rows["p"]["T1"].endswith(" †") and not rows["p"]["T2"].endswith(("†", "?"))
    assert rows["p"]["s mean"].endswith(" (1/3 †)") and rows["p"]["s mean"].startswith("0.")
    assert rows["q"]["s mean"].replace("*", "").replace(".", "").isdigit()  # every task zero-shot: no mark
    assert all(rows["old"][t].endswith(" ?") for t in ("T1", "T2", "T3")) and rows["old"]["s mean"].endswith(" (3/3 ?)")
    assert "† = the task's data is in the model's training data" in md and "? = not known whether" in md
    frame = pd.read_csv(zero_shot_report / "leaderboard.csv").set_index("model")
    assert frame.loc["p", "T1:zero_shot"] == False and frame.loc["q", "T1:zero_shot"] == True  # noqa: E712
    assert pd.isna(frame.loc["old", "T1:zero_shot"])
    assert (frame.loc["p", "s:mean:tasks_in_training"], frame.loc["q", "s:mean:tasks_in_training"]) == (1, 0)
    assert frame.loc["old", "s:mean:tasks_training_unknown"] == 3


def test_leaderboard_html_marks_and_explains_training_data(zero_shot_report: Path) -> None:
    page = (zero_shot_report / "leaderboard.html").read_text()
    assert page.count("> (1/3 †)</span>") == 1 and page.count("> (3/3 ?)</span>") == 1
    assert "1 of 3 task(s) in the model&#x27;s training data: T1 (NQ)" in page  # the mean's tooltip
    assert "in training data: NQ (per mteb 2.26.24 model registry entry org/p)" in page  # task tooltip and details
    assert "training data unknown (not recorded for this model or result)" in page
    assert "<li>† = the task&#x27;s data is in the model&#x27;s training data" in page
