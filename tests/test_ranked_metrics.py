"""embedbench.scoring.metrics.ranked_metrics: the vectorized path against pytrec_eval and per_query_metrics."""

from __future__ import annotations

import functools

import numpy as np
import pytrec_eval

from embedbench.scoring.metrics import (
    K_VALUES, grade_matrix, per_query_metrics, rank, ranked_metrics, string_ranks, trec_order,
)

FAMILIES = ("ndcg", "recall", "mrr", "map", "precision")
TREC = {"ndcg": "ndcg_cut", "recall": "recall", "map": "map_cut", "precision": "P"}
N_DOCS = 300


def _trec_order(a: tuple[str, float], b: tuple[str, float]) -> int:
    """trec_eval's comp_sim_docno, written independently of embedbench.scoring.metrics."""
    if a[1] != b[1]:
        return -1 if a[1] > b[1] else 1
    return (a[0] < b[0]) - (a[0] > b[0])


def _random_search(seed: int, n_queries: int, k: int = 120):
    """Ranked arrays as a search returns them (many exact score ties, some empty slots, rows in index
    order rather than trec order), qrels with grades 0-3 and judged documents outside the corpus."""
    rng = np.random.default_rng(seed)
    doc_ids = [f"d{i}" for i in range(N_DOCS)]  # index order differs from string order ("d10" < "d2")
    qids = [f"q{q}" for q in range(n_queries)]
    idx = np.argsort(rng.random((n_queries, N_DOCS)), axis=1)[:, :k]
    scores = np.where(rng.random((n_queries, 1)) < 0.7, rng.integers(0, 5, (n_queries, k)) / 4.0,
                      np.round(rng.random((n_queries, k)), 3)).astype(np.float32)
    order = np.lexsort((idx, -scores), axis=1)  # ties by index: not trec's order
    idx, scores = np.take_along_axis(idx, order, 1), np.take_along_axis(scores, order, 1)
    n_ret = np.where(rng.random(n_queries) < 0.03, 0, rng.integers(0, k + 1, n_queries))  # some empty runs
    empty = np.arange(k)[None, :] >= n_ret[:, None]
    idx[empty], scores[empty] = -1, -np.inf
    qrels: dict[str, dict[str, int]] = {}
    for r, qid in enumerate(qids):
        retrieved = idx[r][idx[r] >= 0]
        pool = retrieved if retrieved.size and rng.random() < 0.8 else np.arange(N_DOCS)
        judged = rng.choice(pool, size=min(int(rng.integers(1, 30)), pool.size), replace=False)
        qrels[qid] = {doc_ids[d]: int(g) for d, g in zip(judged, rng.integers(0, 4, judged.size))}
        if rng.random() < 0.05:
            qrels[qid]["outside-corpus"] = int(rng.integers(1, 4))
    return qids, doc_ids, idx, scores, qrels


def _dict_run(qids, doc_ids, idx, scores):
    return {qid: {doc_ids[i]: float(s) for s, i in zip(scores[r], idx[r]) if i >= 0} for r, qid in enumerate(qids)}


def test_trec_order_matches_rank() -> None:
    qids, doc_ids, idx, scores, _ = _random_search(7, 500)
    ordered, _ = trec_order(idx, scores, string_ranks(doc_ids), rows_per_chunk=64)  # several chunks
    for r, run in enumerate(_dict_run(qids, doc_ids, idx, scores).values()):
        assert [doc_ids[i] for i in ordered[r] if i >= 0] == rank(run)
        assert (ordered[r][len(run):] == -1).all()


def test_oracle_ranked_against_pytrec_eval() -> None:
    qids, doc_ids, idx, scores, qrels = _random_search(20240602, 10_000)
    run = _dict_run(qids, doc_ids, idx, scores)
    ours = ranked_metrics(idx, scores, grade_matrix(qrels, qids, doc_ids), string_ranks(doc_ids))
    ks = ",".join(map(str, K_VALUES))
    trec = pytrec_eval.RelevanceEvaluator(qrels, {f"{fam}.{ks}" for fam in TREC.values()}).evaluate(run)
    ordered = {q: sorted(s.items(), key=functools.cmp_to_key(_trec_order)) for q, s in run.items()}
    rr = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"})
    trec_rr = {k: rr.evaluate({q: dict(o[:k]) for q, o in ordered.items()}) for k in K_VALUES}
    scored = [r for r, q in enumerate(qids) if any(g > 0 for g in qrels[q].values())]
    assert 8000 < len(scored) < len(qids)
    assert sum(1 for r in scored if not run[qids[r]]) > 100  # empty runs are exercised
    for family in FAMILIES:
        for k in K_VALUES:
            name = f"{family}_at_{k}"
            assert np.isnan(np.delete(ours[name], scored)).all(), name
            for r in scored:
                q = qids[r]
                if family == "mrr":
                    expected = trec_rr[k].get(q, {}).get("recip_rank", 0.0)
                else:
                    expected = trec[q][f"{TREC[family]}_{k}"] if q in trec else 0.0
                assert abs(ours[name][r] - expected) <= 1e-9, (name, q, ours[name][r], expected)
    for name, values in ours.items():  # not degenerate
        assert (values[scored] > 0).sum() > 1000, name


def test_ranked_equals_per_query_exactly() -> None:
    qids, doc_ids, idx, scores, qrels = _random_search(11, 3000)
    exclude = np.where(np.arange(len(qids)) % 3 == 0, idx[:, 5], -1)  # drop one retrieved doc per 3rd query
    ours = ranked_metrics(idx, scores, grade_matrix(qrels, qids, doc_ids), string_ranks(doc_ids), exclude=exclude)
    run = _dict_run(qids, doc_ids, idx, scores)
    for r, qid in enumerate(qids):
        if exclude[r] >= 0:
            run[qid].pop(doc_ids[exclude[r]], None)
    theirs = per_query_metrics(qrels, run)
    for name, values in theirs.items():
        got = {qids[r]: v for r, v in enumerate(ours[name].tolist()) if not np.isnan(v)}
        assert got == values, name  # bit-identical, same scored queries
