"""Retrieval metrics with trec_eval's definitions, computed without trec_eval.

Every function here is pure. The values agree with ``pytrec_eval`` (trec_eval 9.x,
relevance_level 1) to within floating-point rounding; ``tests/test_metrics.py``
checks this against pytrec_eval on 10,000 random queries.

Conventions (trec_eval, Buckley & Voorhees; see trec_eval's ``form_res_rels.c``
and ``m_*.c`` files):

* A document is relevant when its qrels grade is > 0. Documents in the run that
  the qrels do not mention are non-relevant (grade 0).
* The run for one query is ordered by score descending, equal scores by doc id
  descending (byte-wise string compare), as trec_eval's ``comp_sim_docno`` does.
* ``R`` is the number of relevant documents for the query in the qrels (retrieved
  or not); ``rel_i`` is 1 when the document at rank ``i`` (1-based) is relevant.

The names follow mteb: ``ndcg_at_{k}``, ``recall_at_{k}``, ``mrr_at_{k}``,
``map_at_{k}`` and ``precision_at_{k}``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

import numpy as np

K_VALUES: tuple[int, ...] = (1, 3, 5, 10, 20, 100, 1000)

METRIC_FAMILIES: tuple[str, ...] = ("ndcg", "recall", "mrr", "map", "precision")

_CUTOFF = re.compile(r"_at_([0-9]+)$")


def metric_cutoff(name: str) -> int | None:
    """The k of a metric at a cutoff (``recall_at_100`` -> 100); None for metrics without one (``f1``)."""
    m = _CUTOFF.search(name)
    return int(m.group(1)) if m else None


def past_depth(names: Iterable[str], depth: int) -> list[str]:
    """The metrics a ranking of only ``depth`` documents cannot measure: those at a cutoff k > depth.

    A two-stage search returns its ``depth`` re-ranked candidates and nothing below them, so
    Recall@100 of a depth-50 run would count the documents ranked 51..100 as missed: a loss the
    index never made. Those metrics are absent (None), never computed on the truncated list.
    """
    return sorted(n for n in names if (k := metric_cutoff(n)) is not None and k > depth)


def rank(scores: Mapping[str, float]) -> list[str]:
    """Doc ids ordered as trec_eval orders a run.

    Score descending; equal scores by doc id descending (string compare), so for
    ``{"d2": 1.0, "d10": 1.0}`` the order is ``["d2", "d10"]`` ("d2" > "d10").
    """
    return [doc for doc, _ in sorted(scores.items(), key=lambda item: (item[1], item[0]), reverse=True)]


def _check_k_values(k_values: Iterable[int]) -> tuple[int, ...]:
    ks = tuple(k_values)
    if not ks or any(isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1 for k in ks):
        raise ValueError(f"k_values must be positive integers, got {ks!r}")
    return tuple(int(k) for k in ks)


def _query_metrics(
    grades: Mapping[str, int], scores: Mapping[str, float] | None, ks: np.ndarray
) -> dict[str, np.ndarray]:
    """All metrics of one scored query (R > 0) at every cutoff in ``ks``."""
    ideal = np.sort(np.fromiter((g for g in grades.values() if g > 0), dtype=np.float64))[::-1]
    n_rel = ideal.size
    ranked = rank(scores) if scores else []
    n = len(ranked)
    gains = np.fromiter((max(grades.get(doc, 0), 0) for doc in ranked), dtype=np.float64, count=n)
    is_rel = (gains > 0).astype(np.float64)
    positions = np.arange(1, n + 1, dtype=np.float64)
    # Prefixed with a 0 so that index kk (= min(k, n)) holds the value over the top kk.
    cum_rel = np.concatenate(([0.0], np.cumsum(is_rel)))
    cum_dcg = np.concatenate(([0.0], np.cumsum(gains / np.log2(positions + 1.0))))
    cum_ap = np.concatenate(([0.0], np.cumsum(is_rel * cum_rel[1:] / positions)))
    cum_idcg = np.concatenate(([0.0], np.cumsum(ideal / np.log2(np.arange(2, n_rel + 2, dtype=np.float64)))))
    hits = np.flatnonzero(is_rel)
    first = int(hits[0]) + 1 if hits.size else 0  # 1-based rank of the first relevant doc, 0 if none

    kk = np.minimum(ks, n)
    return {
        "ndcg": cum_dcg[kk] / cum_idcg[np.minimum(ks, n_rel)],
        "recall": cum_rel[kk] / n_rel,
        "mrr": np.where((first > 0) & (ks >= first), 1.0 / max(first, 1), 0.0),
        "map": cum_ap[kk] / n_rel,
        "precision": cum_rel[kk] / ks,
    }


def per_query_metrics(
    qrels: Mapping[str, Mapping[str, int]],
    run: Mapping[str, Mapping[str, float]],
    k_values: Iterable[int] = K_VALUES,
) -> dict[str, dict[str, float]]:
    """Metric name -> query id -> value, for every scored query.

    With ``r_1..r_n`` the run ordered by :func:`rank`, ``g_i`` the grade of ``r_i``
    (0 when unjudged or negative) and ``m = min(k, n)``:

    * ``ndcg_at_k`` = DCG@k / IDCG@k, DCG@k = sum_{i<=m} g_i / log2(i + 1), IDCG@k the
      same sum over the query's positive grades sorted descending, cut at k
      (Jarvelin & Kekalainen 2002, linear gains; trec_eval ``ndcg_cut.k``).
    * ``recall_at_k`` = sum_{i<=m} rel_i / R (trec_eval ``recall.k``).
    * ``precision_at_k`` = sum_{i<=m} rel_i / k, dividing by k even when n < k
      (trec_eval ``P.k``).
    * ``map_at_k`` = (1/R) sum_{i<=m} rel_i * P@i (trec_eval ``map_cut.k``).
    * ``mrr_at_k`` = 1 / (rank of the first relevant doc) if that rank is <= k, else 0
      (trec_eval ``recip_rank`` on the run cut to its top k; Voorhees, TREC-8 QA).

    Scored queries are the query ids in ``qrels`` with at least one grade > 0 (a
    query with no relevant docs has no defined recall or nDCG and is left out).
    A scored query that is missing from ``run``, or whose run is empty, gets 0 for
    every metric; pytrec_eval would skip a missing query, which raises the mean.
    Run entries for queries not in ``qrels`` are ignored.
    """
    ks_tuple = _check_k_values(k_values)
    ks = np.asarray(ks_tuple, dtype=np.int64)
    out: dict[str, dict[str, float]] = {
        f"{family}_at_{k}": {} for family in METRIC_FAMILIES for k in ks_tuple
    }
    for qid, grades in qrels.items():
        if not any(g > 0 for g in grades.values()):
            continue
        values = _query_metrics(grades, run.get(qid), ks)
        for family in METRIC_FAMILIES:
            for k, value in zip(ks_tuple, values[family].tolist()):
                out[f"{family}_at_{k}"][qid] = value
    return out


def mean_metrics(per_query: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """Metric name -> arithmetic mean over its queries (0.0 when there are none)."""
    return {
        name: float(np.mean(list(values.values()))) if values else 0.0
        for name, values in per_query.items()
    }


def topk_overlap(reference: np.ndarray, ranked: np.ndarray, k: int = 10) -> np.ndarray:
    """Per query, the share of its reference top-k found in the first k columns of ``ranked``.

    ``reference`` and ``ranked`` are document indices per query row, best first (negative
    indices in ``ranked`` are empty slots). With ``E_q`` the first k of the reference row and
    ``G_q`` the first k of the ranked row: overlap_q = |E_q ∩ G_q| / |E_q|; float64 (nq,).
    The two-stage search reports it against its exact second stage (``rescore_overlap_at_10``).
    """
    exact = np.asarray(reference)[:, :k]
    got = np.asarray(ranked)[:, :k]
    out = np.empty(exact.shape[0], dtype=np.float64)
    for r in range(exact.shape[0]):
        out[r] = np.isin(exact[r], got[r][got[r] >= 0]).sum() / exact.shape[1]
    return out
