"""Helpers scoring writes once for everyone: the bootstrap CI (report and gate), gold-answer
normalization (answer recall, RAG metrics, KILT labels), the top-k overlap, and the layer rule."""

from __future__ import annotations

import math
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from embedbench.gate import core as gate_core
from embedbench.rag.metrics import match
from embedbench.report import grid as report_grid
from embedbench.scoring.answers import contains_answer, normalize_answer, usable_golds
from embedbench.scoring.metrics import topk_overlap
from embedbench.scoring.stats import DEFAULT_RESAMPLES, bootstrap_ci
from embedbench.scoring.task_metrics import answer_recall

# ------------------------------------------------------------------------------ bootstrap


def test_report_and_gate_compute_their_intervals_with_one_function_and_one_resample_count():
    # The functions the report's leaderboard (Grid.ci) and the gate (run_gate) call.
    assert report_grid.bootstrap_ci is gate_core.bootstrap_ci is bootstrap_ci
    assert gate_core.DEFAULT_RESAMPLES == DEFAULT_RESAMPLES == 10_000
    values = np.random.default_rng(1).beta(2, 5, 300)
    assert report_grid.bootstrap_ci(values.tolist()) == gate_core.bootstrap_ci(values, DEFAULT_RESAMPLES)


def test_bootstrap_ci_is_seeded_and_about_the_normal_interval():
    d = np.random.default_rng(8).normal(0.3, 0.2, 400)
    low, high = bootstrap_ci(d)
    assert (low, high) == bootstrap_ci(d, rng=np.random.default_rng(0))  # seed 0 is the default
    assert (low, high) != bootstrap_ci(d, seed=1)
    se = d.std(ddof=1) / math.sqrt(d.size)
    assert high - low == pytest.approx(2 * 1.96 * se, rel=0.1)
    assert bootstrap_ci([0.5] * 7) == (0.5, 0.5)


@pytest.mark.parametrize("bad", [[], [1.0, float("nan")], [[1.0, 2.0]]])
def test_bootstrap_ci_refuses_empty_or_non_finite_values(bad):
    with pytest.raises(ValueError):
        bootstrap_ci(bad)


def test_bootstrap_resample_count_does_not_depend_on_chunking():
    # 2,000,000 // 3 draws per step: 10,000 resamples of 3 values fit in one step, of 700 values
    # take several; either way the count of means is the number asked for.
    for n in (3, 700):
        values = np.arange(n, dtype=float)
        low, high = bootstrap_ci(values, resamples=10_000, level=0.5)
        assert low < values.mean() < high


# ------------------------------------------------------------------------------ answers


def test_one_normalization_for_every_answer_rule():
    assert normalize_answer("  The Eiffel-Tower!\n") == "eiffeltower"
    assert usable_golds(["Paris", "paris.", "The", "", "Lutetia"]) == ["paris", "lutetia"]
    assert contains_answer("It was, in fact, PARIS.", usable_golds(["paris"]))
    assert contains_answer("Parisian", usable_golds(["a Paris!"]))  # a substring, as BERGEN's match counts it
    assert not contains_answer("Rome", usable_golds(["Paris"]))


def test_answer_recall_counts_a_passage_exactly_when_rag_match_would():
    passages = {"d1": "Rome is old.", "d2": "The capital: PARIS!", "d3": "an answer"}
    golds = {"q": ["paris", "the"]}
    run = {"q": {"d1": 3.0, "d2": 2.0, "d3": 1.0}}
    recall = answer_recall(golds, run, passages, ["q"], k_values=(1, 2, 3))
    first = next(i for i, d in enumerate(["d1", "d2", "d3"]) if match(passages[d], golds["q"]))
    assert [recall[f"answer_recall_at_{k}"]["q"] for k in (1, 2, 3)] == [float(first < k) for k in (1, 2, 3)]


# ------------------------------------------------------------------------------ overlap


def test_topk_overlap_is_the_share_of_the_reference_top_k_kept():
    reference = np.array([[0, 1, 2, 3], [4, 5, 6, 7]])
    ranked = np.array([[3, 9, 1, 0], [7, -1, -1, -1]])
    np.testing.assert_allclose(topk_overlap(reference, ranked, k=2), [0.0, 0.0])
    np.testing.assert_allclose(topk_overlap(reference, ranked, k=4), [0.75, 0.25])
    np.testing.assert_allclose(topk_overlap(reference, reference, k=3), [1.0, 1.0])


# ------------------------------------------------------------------------------ layering


def test_scoring_imports_no_encoder_engine_data_or_rag_module():
    script = textwrap.dedent("""
        import importlib, pkgutil, sys
        import embedbench.scoring as scoring
        for info in pkgutil.iter_modules(scoring.__path__):
            importlib.import_module(f"embedbench.scoring.{info.name}")
        lower = {"embedbench." + p for p in ("encoders", "engine", "data", "rag")}
        bad = sorted(m for m in sys.modules if ".".join(m.split(".")[:2]) in lower)
        print(",".join(bad))
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_no_scoring_module_defines_a_function_named_search():
    """`search` names the kernels module; the top-k of an Encoded is `retrieval.search_encoded`."""
    import importlib
    import inspect
    import pkgutil

    from embedbench import scoring

    for info in pkgutil.iter_modules(scoring.__path__):
        module = importlib.import_module(f"embedbench.scoring.{info.name}")
        assert not inspect.isfunction(vars(module).get("search")), info.name
    assert inspect.ismodule(scoring.search)
