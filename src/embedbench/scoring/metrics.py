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

Two ways in, same numbers: :func:`per_query_metrics` takes a run as dicts (one query at a time),
:func:`ranked_metrics` takes a search's ranked ``(queries x k)`` document-index and score arrays
and a :class:`Grades` matrix, and computes every query at once from the positions of the
relevant documents only (``tests/test_ranked_metrics.py`` checks it against pytrec_eval and
against :func:`per_query_metrics`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

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


@dataclass(frozen=True)
class Grades:
    """The positive qrels grades of a task's queries as a CSR matrix: row r is query r, columns are
    integer document ids (the corpus index; ids >= ``n_docs`` are judged documents the corpus lacks,
    which count in R and the ideal DCG but are never retrieved)."""

    indptr: np.ndarray  # int64 (nq + 1,)
    indices: np.ndarray  # int64 (nnz,) document ids
    data: np.ndarray  # float64 (nnz,) grades, all > 0
    n_docs: int

    @property
    def n_relevant(self) -> np.ndarray:
        """R per query (int64 (nq,)); queries with R = 0 are not scored."""
        return np.diff(self.indptr)

    def rows(self) -> np.ndarray:
        """The query row of every stored grade, int64 (nnz,)."""
        return np.repeat(np.arange(self.indptr.size - 1, dtype=np.int64), self.n_relevant)


def grade_matrix(qrels: Mapping[str, Mapping[str, int]], qids: Sequence[str], doc_ids: Sequence[str]) -> Grades:
    """The positive grades of ``qids`` (rows, in that order) with documents mapped to their index in
    ``doc_ids``; judged documents outside ``doc_ids`` get ids from ``len(doc_ids)`` on."""
    column = {d: i for i, d in enumerate(doc_ids)}
    return grades_at(qrels, qids, lambda d: column.get(d, -1), len(doc_ids))


def grades_at(qrels: Mapping[str, Mapping[str, int]], qids: Sequence[str], position: Callable[[str], int],
              n_docs: int) -> Grades:
    """:func:`grade_matrix` with each judged document's index given by ``position`` (-1: not in the corpus),
    so a corpus of any size is never turned into a dict; judged documents outside it get ids from
    ``n_docs`` on."""
    outside: dict[str, int] = {}
    indptr, indices, data = [0], [], []
    for qid in qids:
        for doc, grade in (qrels.get(qid) or {}).items():
            if grade > 0:
                i = position(doc)
                indices.append(i if i >= 0 else outside.setdefault(doc, n_docs + len(outside)))
                data.append(grade)
        indptr.append(len(indices))
    return Grades(np.asarray(indptr, dtype=np.int64), np.asarray(indices, dtype=np.int64),
                  np.asarray(data, dtype=np.float64), n_docs)


def string_ranks(doc_ids: Sequence[str]) -> np.ndarray:
    """Each document's place in string order (int64 (n,)): trec_eval breaks score ties by doc id."""
    ranks = np.empty(len(doc_ids), dtype=np.int64)
    ranks[sorted(range(len(doc_ids)), key=doc_ids.__getitem__)] = np.arange(len(doc_ids))
    return ranks


def trec_order(doc_idx: np.ndarray, scores: np.ndarray, doc_rank: np.ndarray,
               rows_per_chunk: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """``doc_idx`` and ``scores`` with each row in trec_eval's order (score descending, equal scores
    by doc id descending via ``doc_rank``), empty slots (index < 0) moved to the end.

    A search already returns that order, so only rows that break it are sorted again (copies)."""
    bad = np.concatenate([a + _rows_out_of_order(doc_idx[a:a + rows_per_chunk], scores[a:a + rows_per_chunk], doc_rank)
                          for a in range(0, doc_idx.shape[0], rows_per_chunk)] or [np.zeros(0, dtype=np.int64)])
    if bad.size == 0:
        return doc_idx, scores
    doc_idx, scores = doc_idx.copy(), scores.copy()
    idx, sc = doc_idx[bad], scores[bad]
    valid = idx >= 0
    # lexsort: the last key sorts first; all ascending, so negate what must come down.
    order = np.lexsort((-np.where(valid, doc_rank[np.maximum(idx, 0)], -1), -sc.astype(np.float64), ~valid), axis=-1)
    doc_idx[bad] = np.take_along_axis(idx, order, axis=1)
    scores[bad] = np.take_along_axis(sc, order, axis=1)
    return doc_idx, scores


def _rows_out_of_order(idx: np.ndarray, scores: np.ndarray, doc_rank: np.ndarray) -> np.ndarray:
    """Offsets (within this chunk) of the rows not in trec_eval's order."""
    valid = idx >= 0
    rank_ = np.where(valid, doc_rank[np.maximum(idx, 0)], -1)
    s = scores.astype(np.float64)
    prev, nxt = (slice(None), slice(None, -1)), (slice(None), slice(1, None))
    wrong = valid[nxt] & (~valid[prev] | (s[nxt] > s[prev]) | ((s[nxt] == s[prev]) & (rank_[nxt] > rank_[prev])))
    return np.flatnonzero(wrong.any(axis=1))


def ranked_metrics(doc_idx: np.ndarray, scores: np.ndarray, grades: Grades, doc_rank: np.ndarray,
                   k_values: Iterable[int] = K_VALUES, exclude: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Metric name -> float64 (nq,) values of a ranked search, the same as :func:`per_query_metrics`
    on the equivalent dict run; NaN for queries with no relevant document (not scored).

    ``doc_idx``/``scores`` are (nq, k) best first (index < 0: empty slot), rows in ``grades``' order;
    ``doc_rank`` is :func:`string_ranks` of the corpus; ``exclude`` (nq,) a document id per query
    to drop from its ranking (-1: none), as mteb drops a query's own id.
    """
    ks = np.asarray(_check_k_values(k_values), dtype=np.int64)
    if exclude is not None:
        doc_idx = np.where(doc_idx == np.asarray(exclude)[:, None], -1, doc_idx)
    doc_idx, _ = trec_order(doc_idx, scores, doc_rank)
    row, pos, gain = _relevant_hits(doc_idx, grades)
    values = _hit_metrics(row, pos, gain, ks, doc_idx.shape[0])
    n_rel = grades.n_relevant.astype(np.float64)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):  # unscored rows (R = 0) become NaN below
        values["ndcg"] = values["ndcg"] / _ideal_dcg(grades, ks)
        values["recall"], values["map"] = values["recall"] / n_rel, values["map"] / n_rel
    unscored = grades.n_relevant == 0
    return {f"{family}_at_{k}": np.where(unscored, np.nan, values[family][:, j])
            for family in METRIC_FAMILIES for j, k in enumerate(ks.tolist())}


def _relevant_hits(doc_idx: np.ndarray, grades: Grades,
                   per_chunk: int = 8192) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(query row, 1-based rank, grade) of every retrieved relevant document, ordered by row then rank.

    Looked up from the grades' side: each relevant document is searched in its query's row only,
    so the cost is nnz x k, never a lookup per retrieved document."""
    rows, docs = grades.rows(), grades.indices
    in_corpus = np.flatnonzero(docs < grades.n_docs)
    found, cols = [], []
    for a in range(0, in_corpus.size, per_chunk):
        part = in_corpus[a:a + per_chunk]
        eq = doc_idx[rows[part]] == docs[part][:, None]
        found.append(part[eq.any(axis=1)])
        cols.append(eq.argmax(axis=1)[eq.any(axis=1)])
    hit = np.concatenate(found or [np.zeros(0, dtype=np.int64)])
    col = np.concatenate(cols or [np.zeros(0, dtype=np.int64)])
    order = np.lexsort((col, rows[hit]))
    return rows[hit][order], col[order] + 1, grades.data[hit][order]


def _hit_metrics(row: np.ndarray, pos: np.ndarray, gain: np.ndarray, ks: np.ndarray,
                 nq: int) -> dict[str, np.ndarray]:
    """DCG, relevant count, AP sum (not yet divided by R), reciprocal rank and precision at each k.

    Sums run over the hits in rank order per query (bincount adds in element order), the same
    additions as :func:`_query_metrics`' cumulative sums, which only add zeros in between."""
    starts = np.searchsorted(row, np.arange(nq))
    nth = np.arange(row.size) - starts[row] + 1  # the hit's rank among its query's hits
    posf = pos.astype(np.float64)
    dcg_terms, ap_terms = gain / np.log2(posf + 1.0), nth.astype(np.float64) / posf
    first = np.zeros(nq, dtype=np.int64)
    has_hit = np.bincount(row, minlength=nq) > 0
    first[has_hit] = pos[starts[has_hit]]
    out: dict[str, list[np.ndarray]] = {f: [] for f in METRIC_FAMILIES}
    for k in ks.tolist():
        cut = pos <= k
        rel = np.bincount(row[cut], minlength=nq).astype(np.float64)
        out["ndcg"].append(np.bincount(row[cut], weights=dcg_terms[cut], minlength=nq))
        out["recall"].append(rel)
        out["map"].append(np.bincount(row[cut], weights=ap_terms[cut], minlength=nq))
        out["precision"].append(rel / k)
        out["mrr"].append(np.where((first > 0) & (first <= k), 1.0 / np.maximum(first, 1), 0.0))
    return {f: np.stack(v, axis=1) for f, v in out.items()}


def _ideal_dcg(grades: Grades, ks: np.ndarray) -> np.ndarray:
    """IDCG at each k, (nq, len(ks)): each query's positive grades sorted descending, discounted."""
    rows = grades.rows()
    order = np.lexsort((-grades.data, rows))
    place = np.arange(rows.size) - grades.indptr[rows]  # 0-based place in the sorted row
    terms = grades.data[order] / np.log2(place + 2.0)
    nq = grades.indptr.size - 1
    return np.stack([np.bincount(rows[place < k], weights=terms[place < k], minlength=nq)
                     for k in ks.tolist()], axis=1)


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
