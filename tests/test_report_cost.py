"""The report's index axis and cost of ownership: from results and latency records only, prices never assumed."""

from __future__ import annotations

import faiss
import pandas as pd
import pytest

from embedbench.engine.runner import evaluate
from embedbench.report.cost import PAGES, Prices, write_cost
from embedbench.report.figures import index_tradeoff
from embedbench.report.grid import Grid
from embedbench.report.tradeoff import tradeoff_frame, write_tradeoff
from embedbench.results import read_results
from embedbench.results.latency import LatencyRecord, read_latencies, write_latency


@pytest.fixture(scope="module")
def results_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("cost")
    suite = root / "s.yaml"
    suite.write_text("name: s\ntasks:\n  - {name: S, loader: synthetic-q2d, main_score: ndcg_at_10, "
                     "options: {n_queries: 40, languages: [en]}}\n")
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        evaluate("hashing", suite=str(suite), corpus_sizes=[2000], precisions="fp32,binary", index="exact,sq8",
                 results_dir=root / "results", cache_dir=root / "cache")
    finally:
        faiss.omp_set_num_threads(before)
    revision = read_results(root / "results")[0].revision
    write_latency(root / "results", LatencyRecord(
        model="hashing", revision=revision, device="cpu", dtype="float32", batch_size=32, threads=1, warmup=3,
        repeats=10, latency_p50_ms=1.0, latency_p99_ms=2.0, latency_queries=10, queries_per_second=500.0,
        pages_per_second=250.0, n_pages=64, tokens_per_page=300.0, tokens_per_second=75000.0, texts="t",
        machine="m", embedbench_version="0", command=[], created_at="2026-01-01T00:00:00+00:00"))
    return root / "results"


def _cost(out):
    return pd.read_csv(out / "cost.csv").set_index(["precision", "index"])


def _write_cost(results_dir, out, prices=Prices()):
    return write_cost(read_results(results_dir), read_latencies(results_dir), out, prices)


def test_cost_of_a_billion_pages_from_the_measured_inputs(results_dir, tmp_path):
    _write_cost(results_dir, tmp_path, Prices(per_mtok=0.02, gpu_hour=2.5))
    cost = _cost(tmp_path)
    results = {(r.precision, (r.variant.get("index") or "exact")): r for r in read_results(results_dir)}
    for key, r in results.items():
        row = cost.loc[key]
        per_vector = r.costs["bytes_per_vector"]
        assert row["bytes_per_vector"] == pytest.approx(per_vector)
        assert row["storage_tb_per_1e9_pages"] == pytest.approx(per_vector * PAGES / 1e12)
        assert row["cost_per_1e9_pages_by_tokens"] == pytest.approx(300.0 * PAGES / 1e6 * 0.02)
        assert row["device_hours_per_1e9_pages"] == pytest.approx(PAGES / 250.0 / 3600)
        assert row["cost_per_1e9_pages_by_device_hours"] == pytest.approx(PAGES / 250.0 / 3600 * 2.5)
        assert row["qps"] == pytest.approx(r.costs["qps"])
    assert cost.loc[("fp32", "exact"), "bytes_per_vector"] == 4 * 384
    assert cost.loc[("fp32", "sq8"), "delta_vs_exact"] == pytest.approx(
        results[("fp32", "sq8")].main_score - results[("fp32", "exact")].main_score, abs=1e-6)


def test_no_price_no_cost(results_dir, tmp_path):
    _write_cost(results_dir, tmp_path)
    cost = _cost(tmp_path)
    assert cost["cost_per_1e9_pages_by_tokens"].isna().all()
    assert cost["cost_per_1e9_pages_by_device_hours"].isna().all()
    assert cost["tokens_per_page"].eq(300.0).all()  # measured inputs are still shown
    assert "none given: cost left blank" in (tmp_path / "cost.md").read_text()


def test_tradeoff_compares_an_index_with_exact_fp32(results_dir, tmp_path):
    grid = Grid(read_results(results_dir))
    frame = tradeoff_frame(grid).set_index(["precision", "index"])
    sq8, exact = frame.loc[("fp32", "sq8")], frame.loc[("fp32", "exact")]
    assert sq8["mean_delta_vs_fp32"] == pytest.approx(sq8["mean_main_score"] - exact["mean_main_score"])
    assert sq8["bytes_per_vector"] < exact["bytes_per_vector"] and sq8["qps"] > 0
    write_tradeoff(grid, tmp_path)
    assert "queries/s" in (tmp_path / "tradeoff.md").read_text()


def test_index_figure_plots_each_index_at_its_bytes_and_speed(results_dir, tmp_path):
    results = read_results(results_dir)
    fd = index_tradeoff(Grid(results), tmp_path)
    assert not fd.skipped and fd.files and fd.files[0].stat().st_size > 0
    got = {(p["series"].split(" · ")[1], p["index"]): (p["bytes"], p["qps"], p["score"]) for p in fd.data["points"]}
    want = {(r.precision, r.variant.get("index", "exact")): (r.bytes_per_vector, r.costs["qps"], r.main_score)
            for r in results}
    assert got.keys() == want.keys()
    for key, (b, qps, score) in want.items():
        assert got[key] == (b, pytest.approx(qps), pytest.approx(score))


def test_latency_records_are_not_results(results_dir):
    assert len(read_latencies(results_dir)) == 1
    assert all(r.model == "hashing" for r in read_results(results_dir))  # the scan never reads the record


@pytest.mark.parametrize("bad", [{"per_mtok": -1.0}, {"gpu_hour": float("nan")}])
def test_a_bad_price_is_one_line(bad):
    from embedbench.errors import EmbedbenchError

    with pytest.raises(EmbedbenchError, match="must be a number >= 0"):
        Prices(**bad)
