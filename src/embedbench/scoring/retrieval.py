"""Exact top-k over a precision's stored form (:class:`~embedbench.scoring.precision.Encoded`).

:func:`search_encoded` picks the kernel for the stored kind (:mod:`embedbench.scoring.search`
holds the kernels): Hamming for packed bits, the blocked inner product for fp32 / fp16 vectors
and for the cosine of int8 codes, and for a two-stage spec :func:`two_stage_search` (binary
candidates re-ranked by the second stage). :func:`exact_overlap` says how much of the exact
second-stage top-k a two-stage ranking kept.

Every search returns ``(scores float32 (nq, k'), indices int64 (nq, k'))``, higher = better,
each row ordered by (score desc, index asc): on equal scores the lower document index ranks
first, the order trec_eval prefers for the harness's corpus order.
"""

from __future__ import annotations

import numpy as np

from embedbench.errors import EmbedbenchError
from embedbench.scoring.metrics import topk_overlap
from embedbench.scoring.precision import KINDS, Encoded, inverse_norms, unit_rows
from embedbench.scoring.search import search_dense, search_hamming


def search_encoded(enc: Encoded, k: int, block_size: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k of ``enc``, ``k' = min(k, n_docs)`` (a two-stage spec: ``min(k, depth, n_docs)``).

    ``block_size``: documents per block of the float searches (see :func:`search_dense`); the
    engine fixes it so that a corpus searched in shards of whole blocks makes the same kernel
    calls, hence the same float scores, as the corpus searched at once.
    """
    if enc.rescore is not None:
        return two_stage_search(enc, k)
    if enc.kind == "binary":
        return _hamming_cosine_topk(enc, k)
    if enc.kind in ("fp32", "fp16"):
        # fp16 documents stay float16 in memory; search_dense converts them block by block.
        return search_dense(np.asarray(enc.queries, dtype=np.float32), enc.docs, k, block_size)
    if enc.kind == "int8":
        # Cosine of the integer codes: the normalized query codes against the int8 document
        # codes, each document block converted to float32 (exact for integers) and scaled by
        # 1/||codes|| inside search_dense, so the index is never expanded as a whole. The
        # scores carry float32 rounding like fp32 scores do.
        return search_dense(unit_rows(enc.queries, np.float32), enc.docs, k, block_size,
                            doc_scale=inverse_norms(enc.docs))
    raise EmbedbenchError(f"unknown precision kind {enc.kind!r}; valid: {', '.join(KINDS)}")


def two_stage_search(enc: Encoded, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Binary top-``rescore_depth`` candidates (Hamming) re-ranked by the second stage's cosine.

    Returns (nq, min(k, depth, n)): only the re-ranked candidates are retrieved.
    """
    if enc.rescore is None or enc.rescore_depth is None:
        raise ValueError("two_stage_search needs a two-stage Encoded (rescore and rescore_depth set)")
    if int(k) <= 0:
        raise ValueError(f"k must be positive, got {k}")
    _, candidates = search_hamming(enc.queries, enc.docs, enc.rescore_depth)  # (nq, min(depth, n))
    return rerank(enc.rescore, candidates, k)


def exact_overlap(enc: Encoded, idx: np.ndarray, k: int = 10) -> np.ndarray:
    """Per query, the fraction of the exact top-k of ``enc``'s re-ranking stage (a full search
    with it) found in the first k columns of ``idx``; float64 (nq,). For a single-stage
    precision the reference is ``enc`` itself. See :func:`embedbench.scoring.metrics.topk_overlap`."""
    reference = enc.rescore if enc.rescore is not None else enc
    _, exact = search_encoded(reference, k)
    return topk_overlap(exact, idx, k)


def _hamming_cosine_topk(enc: Encoded, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Hamming top-k of packed bits, scored as the cosine of the +-1 vectors: (d - 2h) / d."""
    dist, idx = search_hamming(enc.queries, enc.docs, k)
    # Padding bits are 0 on both sides, so h counts only the d real dimensions.
    scores = (1.0 - 2.0 * dist.astype(np.float64) / enc.dim).astype(np.float32)
    return scores, idx


def rerank(second: Encoded, candidates: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each query's candidates scored by the cosine of ``second``'s vectors (or codes), best k kept,
    ordered by (score desc, index asc)."""
    q = unit_rows(second.queries, np.float32)
    nq, m = candidates.shape
    kk = min(int(k), m)
    scores = np.empty((nq, kk), dtype=np.float32)
    idx = np.empty((nq, kk), dtype=np.int64)
    for r in range(nq):
        c = np.sort(candidates[r])
        s = unit_rows(second.docs[c], np.float32) @ q[r]
        order = np.lexsort((c, -s))[:kk]
        scores[r] = s[order]
        idx[r] = c[order]
    return scores, idx
