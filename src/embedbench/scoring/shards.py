"""Exact top-k over a corpus held in shards: each shard searched with today's kernels, then merged.

A corpus too large to hold at once is given as consecutive shards ``(offset, Encoded)``: the
shard's documents (its ``docs``, and for a two-stage spec its ``rescore.docs``) are the corpus rows
``offset .. offset + n_shard``. :func:`search_sharded` searches every shard for all queries with the
same kernels as :func:`embedbench.scoring.retrieval.search_encoded` and keeps a running top-k, so
the memory held is the queries, one shard and the top-k lists, whatever the corpus size.

Same rankings as the in-memory search. The in-memory search orders each row by (score desc, index
asc): the harness sorts the corpus by document id descending, so the lower index is the document
trec_eval ranks first among equal scores. A shard's top-k already holds, among its ties at the
cut-off, the lowest indices; the merge (:func:`merge_topk`) orders the union of the shards' lists by
(score desc, global index asc) and keeps the first k, so the sharded top-k is the global top-k under
that order. Scores are the shard kernels' own (a dense score of a (query, document) pair can
differ in the last bit from the in-memory search's only where BLAS tiles the block differently; see
:mod:`embedbench.scoring.search`; Hamming scores are exact).

Two-stage specs: the in-memory search re-ranks the global binary top-``rescore_depth`` candidates,
so the shards' Hamming candidates are merged first, by (distance asc, index asc), carrying each
candidate's second-stage row; the merged candidates are then re-ranked by the same function as in
memory, on the same rows in the same order, so even the float re-rank scores are bit-identical.
That adds ``nq x rescore_depth`` second-stage rows (stored dtype) to the memory held.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Sequence

import numpy as np

from embedbench.scoring.precision import Encoded
from embedbench.scoring.retrieval import rerank, search_encoded
from embedbench.scoring.search import search_hamming

Part = tuple[np.ndarray, np.ndarray]  # (scores (nq, k_i), global indices int64 (nq, k_i)), higher = better


def merge_topk(parts: Sequence[Part], k: int) -> Part:
    """The k best of the union of ``parts`` per query, rows ordered by (score desc, index asc).

    Each part is one shard's ``(scores, global indices)`` for every query (indices disjoint across
    parts). Returns ``(scores, indices)`` of width ``min(k, sum of the parts' widths)``.
    """
    scores = np.concatenate([p[0] for p in parts], axis=1)
    idx = np.concatenate([p[1] for p in parts], axis=1)
    order = _best_columns(scores, idx, k)
    return np.take_along_axis(scores, order, 1), np.take_along_axis(idx, order, 1)


def search_sharded(queries: Encoded, shards: Iterable[tuple[int, Encoded]], k: int,
                   block_size: int | None = None) -> Part:
    """Exact top-k of ``queries`` over the corpus given as ``(offset, Encoded)`` shards.

    ``queries`` is an :class:`Encoded` whose query side (and kind, rescore, rescore_depth) is used;
    its ``docs`` are ignored. Each shard's Encoded holds that shard's documents in the same stored
    form (its own queries are ignored). Shards are read once, in any order, and must not overlap.
    Returns what :func:`~embedbench.scoring.retrieval.search_encoded` returns on the whole corpus.
    """
    run = ShardedSearch(queries, k, block_size)
    for offset, shard in shards:
        run.add(offset, shard)
    return run.result()


class ShardedSearch:
    """A running exact top-k over shards given one at a time (:func:`search_sharded`, step by step).

    ``block_size`` is passed to the float searches: with shards of whole blocks (offsets and sizes
    multiples of it, but the last), every kernel call is the one the whole corpus would make, so even
    scores of identical vectors, which BLAS may round differently at different places in a block, are
    the same bits. ``add`` searches one shard and merges it in; :meth:`part` is what one shard contributes, so
    shards may be searched elsewhere (other processes) and merged here with :meth:`merge`, in any
    order: the merge order is total, so the result does not depend on it.
    """

    def __init__(self, queries: Encoded, k: int, block_size: int | None = None) -> None:
        if int(k) <= 0:
            raise ValueError(f"k must be positive, got {k}")
        if queries.rescore is not None and queries.rescore_depth is None:
            raise ValueError("a two-stage Encoded needs rescore_depth")
        self.queries, self.k, self.block_size = queries, int(k), block_size
        self.run: tuple[np.ndarray, ...] | None = None

    def part(self, offset: int, shard: Encoded) -> tuple[np.ndarray, ...]:
        """One shard's contribution: its top-k (or, two-stage, its binary candidates with their rows)."""
        shard = _shard_with_queries(shard, self.queries)
        if self.queries.rescore is None:
            scores, local = search_encoded(shard, self.k, self.block_size)
            return scores, local + offset
        dist, local = search_hamming(shard.queries, shard.docs, self.queries.rescore_depth)
        return -dist, local + offset, shard.rescore.docs[local]  # (nq, m), (nq, m), (nq, m, d)

    def merge(self, part: tuple[np.ndarray, ...]) -> None:
        if self.run is None:
            self.run = part
        elif self.queries.rescore is None:
            self.run = merge_topk([self.run, part], self.k)
        else:
            self.run = _merge_pool(self.run, part, self.queries.rescore_depth)

    def add(self, offset: int, shard: Encoded) -> None:
        self.merge(self.part(offset, shard))

    def result(self) -> Part:
        if self.run is None:
            raise ValueError("cannot search an empty corpus (no shards)")
        if self.queries.rescore is None:
            return self.run
        return rerank_pool(self.queries.rescore, self.run[1], self.run[2], self.k)


def shards_of(enc: Encoded, size: int) -> Iterator[tuple[int, Encoded]]:
    """``enc``'s corpus as consecutive shards of ``size`` documents (views, no copies)."""
    if int(size) <= 0:
        raise ValueError(f"shard size must be positive, got {size}")
    for j0 in range(0, enc.docs.shape[0], size):
        yield j0, docs_slice(enc, slice(j0, j0 + size))


# ----------------------------------------------------------------------------- helpers


def _best_columns(scores: np.ndarray, idx: np.ndarray, k: int) -> np.ndarray:
    """Per row, the column positions of the k best by (score desc, index asc), in that order."""
    return np.lexsort((idx, -scores), axis=1)[:, : int(k)]


def docs_slice(enc: Encoded, rows: slice) -> Encoded:
    """``enc`` with only the document rows ``rows`` (both stages of a two-stage spec)."""
    rescore = None if enc.rescore is None else docs_slice(enc.rescore, rows)
    return dataclasses.replace(enc, docs=enc.docs[rows], rescore=rescore)


def _shard_with_queries(shard: Encoded, queries: Encoded) -> Encoded:
    """The shard's documents with the query side of ``queries`` (both stages), checked to match."""
    if shard.kind != queries.kind or (shard.rescore is None) != (queries.rescore is None):
        raise ValueError(f"shard of kind {shard.kind!r} does not match queries of kind {queries.kind!r}")
    rescore = None if queries.rescore is None else _shard_with_queries(shard.rescore, queries.rescore)
    return dataclasses.replace(shard, queries=queries.queries, rescore=rescore)


def _merge_pool(
    run: tuple[np.ndarray, np.ndarray, np.ndarray], new: tuple[np.ndarray, np.ndarray, np.ndarray], depth: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ``depth`` best candidates of two pools by (distance asc, index asc), rows carried along."""
    neg, idx, rows = (np.concatenate([a, b], axis=1) for a, b in zip(run, new))
    order = _best_columns(neg, idx, depth)
    return (np.take_along_axis(neg, order, 1), np.take_along_axis(idx, order, 1),
            np.take_along_axis(rows, order[:, :, None], 1))


def rerank_pool(second: Encoded, idx: np.ndarray, rows: np.ndarray, k: int) -> Part:
    """Re-rank each query's candidates ``idx`` (nq, m), their second-stage rows ``rows`` (nq, m, d) beside
    them, exactly as the in-memory two-stage search does (also the re-rank of a binary faiss index's
    candidates, engine/ann.py).

    The in-memory re-rank scores ``second.docs[sorted candidates]`` (one matrix per query; BLAS
    results depend on a row's place in it). Here each query's rows are put in ascending index
    order and laid out as one flat "corpus" of nq x m rows, so the re-rank sees the same matrix
    per query, and its tie order (lower position first) is the lower index first.
    """
    nq, m = idx.shape
    order = np.argsort(idx, axis=1, kind="stable")
    idx = np.take_along_axis(idx, order, 1)
    rows = np.take_along_axis(rows, order[:, :, None], 1).reshape(nq * m, -1)
    flat = dataclasses.replace(second, docs=rows)
    scores, pos = rerank(flat, np.arange(nq * m, dtype=np.int64).reshape(nq, m), k)
    return scores, idx.reshape(-1)[pos]
