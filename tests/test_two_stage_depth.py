"""Two-stage specs report nothing past their depth (issue 10, item 5).

binary+int8 / binary+fp32 return their --rescore-depth re-ranked candidates and nothing below, so a
metric at a cutoff k > depth would count the unreturned documents as misses. Those metrics are
absent: null in the JSON, "–" in tables, missing (never a loss) in the report.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest

from embedbench.errors import EmbedbenchError
from embedbench.scoring.metrics import K_VALUES, metric_cutoff
from embedbench.report import build_report
from embedbench.results import read_per_query, read_results, result_path
from embedbench.engine.runner import evaluate
from embedbench.results.table import format_results

from conftest import write_beir


def test_metrics_past_the_depth_are_absent_and_the_rest_are_kept(fake_encoder, beir_dir, tmp_path):
    out = tmp_path / "r"
    (r,) = evaluate(fake_encoder, dataset=f"beir:{beir_dir}", precisions="binary+int8", rescore_depth=20,
                    results_dir=out)
    absent = {name for name, v in r.metrics.items() if v is None}
    assert absent == {f"{f}_at_{k}" for f in ("ndcg", "recall", "mrr", "map", "precision") for k in (100, 1000)}
    assert r.metrics["recall_at_20"] is not None and r.metrics["rescore_overlap_at_10"] is not None
    stored = json.loads(result_path(out, r).read_text())
    assert stored["metrics"]["recall_at_100"] is None  # JSON null, not a number from a truncated list
    per_query = read_per_query(out, r)
    assert not absent & set(per_query) and "recall_at_20" in per_query


def test_a_depth_covering_the_corpus_measures_everything_like_the_second_stage(fake_encoder, beir_dir, tmp_path):
    # 40 documents, depth 40: every document is re-ranked by int8, so the ranking is int8's own.
    two, one = evaluate(fake_encoder, dataset=f"beir:{beir_dir}", precisions="binary+int8,int8",
                        rescore_depth=40, write=False)
    assert all(v is not None for v in two.metrics.values())
    assert {k: two.metrics[k] for k in one.metrics} == pytest.approx(one.metrics, abs=1e-12)


def test_an_absent_main_score_is_null_and_shown_as_a_dash(fake_encoder, beir_dir, tmp_path):
    out = tmp_path / "r"
    (r,) = evaluate(fake_encoder, dataset=f"beir:{beir_dir}", precisions="binary+fp32", rescore_depth=5,
                    results_dir=out)
    assert r.main_score_name == "ndcg_at_10" and r.main_score is None
    assert r.metrics["ndcg_at_5"] is not None
    assert json.loads(result_path(out, r).read_text())["main_score"] is None
    (stored,) = read_results(out)
    assert stored.main_score is None
    row = format_results([stored], "table").splitlines()[1]
    assert " – " in row and "None" not in row and "nan" not in row.lower()


def test_rag_k_past_the_depth_is_refused_before_anything_runs(fake_encoder, beir_dir, tmp_path):
    with pytest.raises(EmbedbenchError, match="--rag-k 8 is more passages than a two-stage search returns"):
        evaluate(fake_encoder, dataset=f"beir:{beir_dir}", precisions="binary+int8", rescore_depth=5,
                 generator=object(), rag_k=8, results_dir=tmp_path / "r")
    assert not (tmp_path / "r").exists() and fake_encoder.calls == []


@pytest.fixture
def two_task_report(fake_encoder, tmp_path):
    """T1 ranks by ndcg_at_1 (measured at depth 5), T2 by ndcg_at_10 (not): fp32 and binary+int8 rows."""
    a, b = write_beir(tmp_path / "a"), write_beir(tmp_path / "b", n_docs=30)
    suite = tmp_path / "two.yaml"
    suite.write_text(f"name: two\ntasks:\n  - {{name: T1, loader: beir, path: {a}, main_score: ndcg_at_1}}\n"
                     f"  - {{name: T2, loader: beir, path: {b}, main_score: ndcg_at_10}}\n")
    out = tmp_path / "results"
    results = evaluate(fake_encoder, suite=str(suite), precisions="fp32,binary+int8", rescore_depth=5,
                       results_dir=out)
    by = {(r.task, r.precision): r for r in results}
    assert by[("T2", "binary+int8")].main_score is None and by[("T1", "binary+int8")].main_score is not None
    build_report(out, tmp_path / "reports")
    return by, tmp_path / "reports"


def test_the_report_shows_a_dash_and_never_averages_it_as_a_loss(two_task_report):
    by, reports = two_task_report
    t1 = by[("T1", "binary+int8")].main_score
    md = (reports / "leaderboard.md").read_text()
    (line,) = [ln for ln in md.splitlines() if ln.startswith("| fake") and "binary+int8" in ln]
    cells = [c.strip() for c in line.strip("|").split("|")]
    assert cells[-1] == "–" and cells[-2].strip("*") == f"{t1:.4f} ?"  # ?: the fake model's training data is unknown
    assert cells[5].startswith("n/a [")  # the suite mean is blank, with a note saying why
    assert "main score not measured" in md and "never a loss" in md

    csv = pd.read_csv(reports / "leaderboard.csv", dtype=str)
    row = csv[csv.precision == "binary+int8"].iloc[0]
    assert row["T2"] == "–" and float(row["T1"]) == pytest.approx(t1, abs=1e-12)
    assert pd.isna(row["two:mean"])

    html = (reports / "leaderboard.html").read_text()
    assert ">–</td>" in html

    trade = pd.read_csv(reports / "tradeoff.csv", dtype=str)
    row = trade[trade.precision == "binary+int8"].iloc[0]
    # The row's mean is over its measured task only, and says so.
    assert float(row["mean_main_score"]) == pytest.approx(t1, abs=1e-12)
    assert (row["n_tasks"], row["n_tasks_not_measured"], row["T2"]) == ("1", "1", "–")
    assert "(1/2 tasks)" in (reports / "tradeoff.md").read_text()


def test_every_k_value_has_a_cutoff():
    # The rule keys on the metric name: every standard metric must carry its k.
    assert {metric_cutoff(f"recall_at_{k}") for k in K_VALUES} == set(K_VALUES)
    assert metric_cutoff("f1") is None and metric_cutoff("rescore_overlap_at_10") == 10
