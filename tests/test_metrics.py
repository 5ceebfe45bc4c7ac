"""embedbench.scoring.metrics: hand-checked cases and an oracle test against pytrec_eval."""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest
import pytrec_eval

from embedbench.scoring.metrics import K_VALUES, mean_metrics, per_query_metrics, rank


FAMILIES = ("ndcg", "recall", "mrr", "map", "precision")
# mteb family -> pytrec_eval measure family (mrr is handled separately: recip_rank on cut runs).
TREC = {"ndcg": "ndcg_cut", "recall": "recall", "map": "map_cut", "precision": "P"}


# ---------------------------------------------------------------- hand-checked cases


def test_rank_ties_doc_id_descending() -> None:
    scores = {"d2": 1.0, "d10": 1.0, "d1": 1.0, "d3": 0.5, "d9": 2.0}
    assert rank(scores) == ["d9", "d2", "d10", "d1", "d3"]
    assert rank({}) == []


def test_hand_computed_values() -> None:
    qrels = {"q": {"a": 2, "b": 0, "c": 1}}
    run = {"q": {"x": 0.9, "c": 0.5, "a": 0.5, "b": 0.1}}  # order: x, c, a, b (tie: "c" > "a")
    m = per_query_metrics(qrels, run, k_values=(1, 3))
    assert m["precision_at_1"]["q"] == 0.0
    assert m["precision_at_3"]["q"] == pytest.approx(2 / 3)
    assert m["recall_at_3"]["q"] == 1.0
    assert m["mrr_at_1"]["q"] == 0.0
    assert m["mrr_at_3"]["q"] == pytest.approx(1 / 2)
    assert m["map_at_3"]["q"] == pytest.approx((1 / 2 + 2 / 3) / 2)
    dcg = 1 / math.log2(3) + 2 / math.log2(4)
    idcg = 2 / math.log2(2) + 1 / math.log2(3)
    assert m["ndcg_at_3"]["q"] == pytest.approx(dcg / idcg)
    assert sorted(m) == sorted(f"{f}_at_{k}" for f in FAMILIES for k in (1, 3))


def test_missing_or_empty_query_gets_zero() -> None:
    qrels = {"q1": {"a": 1}, "q2": {"b": 1}, "q3": {"c": 3}}
    run = {"q1": {"a": 1.0}, "q3": {}, "other": {"z": 1.0}}
    m = per_query_metrics(qrels, run)
    for name, values in m.items():
        assert set(values) == {"q1", "q2", "q3"}, name
        assert values["q2"] == 0.0 and values["q3"] == 0.0, name
    assert m["ndcg_at_10"]["q1"] == 1.0
    assert mean_metrics(m)["recall_at_1"] == pytest.approx(1 / 3)


def test_query_without_relevant_docs_is_not_scored() -> None:
    qrels = {"q1": {"a": 1}, "q0": {"a": 0, "b": 0}, "qe": {}}
    run = {"q1": {"a": 1.0}, "q0": {"a": 1.0}, "qe": {"a": 1.0}}
    m = per_query_metrics(qrels, run)
    assert all(set(values) == {"q1"} for values in m.values())
    assert mean_metrics(per_query_metrics({"q0": {"a": 0}}, run))["ndcg_at_10"] == 0.0


def test_precision_divides_by_k() -> None:
    m = per_query_metrics({"q": {"a": 1, "b": 1}}, {"q": {"a": 1.0, "b": 0.5}}, k_values=(1, 5, 1000))
    assert m["precision_at_1"]["q"] == 1.0
    assert m["precision_at_5"]["q"] == pytest.approx(2 / 5)
    assert m["precision_at_1000"]["q"] == pytest.approx(2 / 1000)
    assert m["recall_at_5"]["q"] == 1.0


def test_bad_k_values() -> None:
    for bad in ((), (0,), (3, -1), (2.5,)):
        with pytest.raises(ValueError):
            per_query_metrics({"q": {"a": 1}}, {}, k_values=bad)


# ---------------------------------------------------------------- oracle: pytrec_eval


def _trec_order(a: tuple[str, float], b: tuple[str, float]) -> int:
    """trec_eval's comp_sim_docno, written independently of embedbench.scoring.metrics.rank."""
    if a[1] != b[1]:
        return -1 if a[1] > b[1] else 1
    return (a[0] < b[0]) - (a[0] > b[0])


def _random_data(seed: int, n_queries: int):
    rng = np.random.default_rng(seed)
    doc_ids = [f"d{i}" for i in range(300)]
    qrels: dict[str, dict[str, int]] = {}
    run: dict[str, dict[str, float]] = {}
    for q in range(n_queries):
        qid = f"q{q}"
        kind = rng.random()
        if kind < 0.15:  # exactly one relevant doc, plus some zero grades
            n_judged = int(rng.integers(1, 8))
            judged = rng.choice(300, size=n_judged, replace=False)
            grades = np.zeros(n_judged, dtype=int)
            grades[0] = rng.integers(1, 4)
        else:
            n_judged = int(rng.integers(1, 40))
            judged = rng.choice(300, size=n_judged, replace=False)
            grades = rng.integers(0, 4, size=n_judged)  # some queries end up with no relevant docs
        qrels[qid] = {doc_ids[d]: int(g) for d, g in zip(judged, grades)}
        if rng.random() < 0.03:
            continue  # scored query missing from the run
        n_ret = int(rng.integers(0, 121))
        # bias retrieval towards judged docs so that metrics are rarely all zero
        pool = np.concatenate([judged, rng.choice(300, size=n_ret, replace=False)])
        retrieved = list(dict.fromkeys(pool[rng.permutation(pool.size)][:n_ret].tolist()))
        if rng.random() < 0.7:
            scores = rng.integers(0, 5, size=len(retrieved)) / 4.0  # heavy ties
        else:
            scores = np.round(rng.random(len(retrieved)), 3)
        run[qid] = {doc_ids[d]: float(s) for d, s in zip(retrieved, scores)}
    for q in range(n_queries, n_queries + 50):  # run queries that the qrels do not have
        run[f"q{q}"] = {doc_ids[0]: 1.0}
    return qrels, run


def test_oracle_against_pytrec_eval() -> None:
    qrels, run = _random_data(seed=20240601, n_queries=10_000)
    ks = ",".join(map(str, K_VALUES))
    evaluator = pytrec_eval.RelevanceEvaluator(qrels, {f"{fam}.{ks}" for fam in TREC.values()})
    trec = evaluator.evaluate(run)
    rr_evaluator = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"})
    ordered = {
        qid: sorted(scores.items(), key=functools.cmp_to_key(_trec_order)) for qid, scores in run.items()
    }
    trec_rr = {k: rr_evaluator.evaluate({q: dict(o[:k]) for q, o in ordered.items()}) for k in K_VALUES}

    ours = per_query_metrics(qrels, run)
    scored = {q for q, g in qrels.items() if any(v > 0 for v in g.values())}
    assert len(scored) > 8000 and len(scored) < len(qrels)
    assert sum(1 for q in scored if not run.get(q)) > 100  # missing and empty runs are exercised

    checked = 0
    for family in FAMILIES:
        for k in K_VALUES:
            name = f"{family}_at_{k}"
            assert set(ours[name]) == scored, name
            for qid in scored:
                if family == "mrr":
                    expected = trec_rr[k].get(qid, {}).get("recip_rank", 0.0)
                else:
                    expected = trec[qid][f"{TREC[family]}_{k}"] if qid in trec else 0.0
                got = ours[name][qid]
                assert abs(got - expected) <= 1e-6, (name, qid, got, expected)
                checked += 1
    assert checked == len(scored) * len(FAMILIES) * len(K_VALUES)
    # the data is not degenerate: every metric is non-zero for many queries, and not always 1
    for name, values in ours.items():
        nonzero = sum(1 for v in values.values() if v > 0)
        assert 1000 < nonzero, (name, nonzero)
        if name not in ("precision_at_1", "mrr_at_1"):  # the only 0/1-valued ones
            assert any(0 < v < 1 for v in values.values()), name
