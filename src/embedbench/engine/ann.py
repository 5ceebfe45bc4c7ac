"""A faiss index over a task's corpus, built from its shards, searched once, and what it cost.

For one (dim, precision) plan and one index spec (scoring/index.py): the index is trained (IVF / PQ
on a seeded sample of the corpus's stored rows, read from the shards that hold them; SQ8 on each
dimension's corpus min / max), filled shard by shard in corpus order, then searched for every
query at the engine's depth (TOP_K) -- one batched search for queries per second, and the seeded
sample of engine/timing.py one query at a time for the latency. One index is held at a time.

A two-stage plan (binary+int8, binary+fp32) searches its binary-hnsw index for each query's
top-``rescore_depth`` candidates and re-ranks them by the second stage, as the exact two-stage search
re-ranks its Hamming candidates (the deployment of sentence-transformers' quantization study: a
binary index in memory, int8 or float rows fetched for the candidates). The candidates' rows are
gathered from the shards untimed -- a deployment holds them in memory or on disk -- so queries per
second and latency time the graph search and the re-rank.

The exact search of the same plan, already computed in the shard pass, is the reference: the
result records how much of the exact top 10 / 100 / 1000 the index found (``ann_overlap_at_k``,
per query) and the main-score delta against exact.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from embedbench.engine.sharded import Plan, ShardJob
from embedbench.engine.stream import DocumentStore
from embedbench.engine.timing import LATENCY_WARMUP, latency_summary, threads, time_each
from embedbench.scoring.index import AnnIndex, IndexSpec, order_rows, train_rows, train_sample, training
from embedbench.scoring.metrics import topk_overlap
from embedbench.scoring.precision import ColumnRange, Encoded, bytes_per_vector
from embedbench.scoring.shards import rerank_pool

OVERLAP_KS = (10, 100, 1000)  # cut-offs of the ANN top-k compared with the exact top-k


@dataclass(frozen=True)
class AnnSearch:
    """One index's ranking of every query and what building and querying it cost."""

    scores: np.ndarray  # (nq, k) float32, -inf in empty slots
    idx: np.ndarray  # (nq, k) int64 corpus positions, -1 in empty slots
    costs: dict[str, float | int | str | None]
    seconds: float  # building (training and adding) and the batched search of every query


def ann_searches(job: ShardJob, plan: Plan, indexes: Sequence[IndexSpec],
                 store: DocumentStore) -> Iterator[tuple[IndexSpec, AnnSearch]]:
    """Each index's search of every query, in order; consecutive specs that differ only in ef / nprobe
    search one built index (its build seconds and bytes are theirs too)."""
    queries = job.query_side(plan).queries
    built: AnnIndex | None = None
    for index in indexes:
        if built is None or built.spec.build_key != index.build_key:
            built = None  # let the previous index go before the next is built
            built = build_index(job, plan, index, store)
        built.set_search_params(index)
        if job.query_side(plan).rescore is None:
            yield index, search_index(built, queries, job, store.n)
        else:
            yield index, search_two_stage(built, job, plan, store)


def build_index(job: ShardJob, plan: Plan, index: IndexSpec, store: DocumentStore) -> AnnIndex:
    """``index`` over the plan's stored documents: trained, then filled shard by shard in corpus order."""
    side = job.query_side(plan)
    ann = AnnIndex(index, side.kind, side.dim, store.n)
    ann.train(training_rows(job, plan, index, store))
    for start, stop in store.ranges():
        ann.add(job.encoded(plan, store.read(start, stop)).docs)
    return ann


def search_index(ann: AnnIndex, queries: np.ndarray, job: ShardJob, n_docs: int) -> AnnSearch:
    """Every query in one batch (queries per second, after one untimed query as the exact search has),
    then the timed sample one query at a time."""
    ann.search(queries[:1], job.k)
    t0 = time.perf_counter()
    scores, idx = ann.search(queries, job.k)
    batch = time.perf_counter() - t0
    single = time_each(lambda r: ann.search(queries[r:r + 1], job.k), timed_rows(job))
    return AnnSearch(scores, idx, index_costs(ann, n_docs, job.k, len(queries), batch, single), ann.build_seconds + batch)


def search_two_stage(ann: AnnIndex, job: ShardJob, plan: Plan, store: DocumentStore) -> AnnSearch:
    """The index's top-``rescore_depth`` candidates of every query re-ranked by the plan's second stage:
    one batched search and re-rank (queries per second), then the timed sample one query at a time."""
    side = job.query_side(plan)
    depth = min(job.rescore_depth, store.n)
    ann.search(side.queries[:1], depth)  # untimed, as every batched search starts warm
    t0 = time.perf_counter()
    _, candidates = ann.search(side.queries, depth)
    first = time.perf_counter() - t0
    rows = candidate_rows(job, plan, store, candidates)
    t0 = time.perf_counter()
    scores, idx = rerank_candidates(side.rescore, candidates, rows, job.k)
    batch = first + time.perf_counter() - t0

    def one(r: int) -> None:  # the graph search, then the re-rank of that query's (already gathered) rows
        ann.search(side.queries[r:r + 1], depth)
        rerank_candidates(dataclasses.replace(side.rescore, queries=side.rescore.queries[r:r + 1]),
                          candidates[r:r + 1], rows[r:r + 1], job.k)

    single = time_each(one, timed_rows(job))
    second = store.n * bytes_per_vector(side.rescore.kind, side.rescore.dim)
    costs = {**index_costs(ann, store.n, min(job.k, depth), len(side.queries), batch, single, second),
             "rescore_depth": depth, "rescore_bytes": second}
    return AnnSearch(scores, idx, costs, ann.build_seconds + batch)


def timed_rows(job: ShardJob) -> np.ndarray:
    """The queries timed one at a time (none when the run does not time them)."""
    return job.latency if job.latency is not None else np.zeros(0, dtype=np.int64)


def index_costs(ann: AnnIndex, n_docs: int, k: int, n_queries: int, batch: float, single: np.ndarray,
                extra_bytes: int = 0) -> dict[str, float | int | str | None]:
    """What a built index cost: its serialized bytes (plus ``extra_bytes`` stored beside it, per vector too),
    build seconds, batched queries per second and the single-query latency summary."""
    size = ann.serialized_bytes()
    return {
        "index": ann.spec.name, "factory": ann.factory, "threads": threads(), "k": k,
        "build_seconds": round(ann.build_seconds, 3), "index_bytes": size,
        "bytes_per_vector": round((size + extra_bytes) / n_docs, 3), "train_rows": train_rows(ann.spec, n_docs),
        "nlist": ann.nlist, "qps": round(n_queries / batch, 2) if batch > 0 else None,
        **latency_summary(single), "warmup": LATENCY_WARMUP,
    }


def candidate_rows(job: ShardJob, plan: Plan, store: DocumentStore, candidates: np.ndarray) -> np.ndarray:
    """The second-stage rows (nq, m, d) of each query's candidates, read shard by shard (zeros in empty slots)."""
    rows: np.ndarray | None = None
    for start, stop in store.ranges():
        inside = (candidates >= start) & (candidates < stop)
        if inside.any():
            docs = job.encoded(plan, store.read(start, stop)).rescore.docs
            if rows is None:
                rows = np.zeros((*candidates.shape, docs.shape[1]), dtype=docs.dtype)
            rows[inside] = docs[candidates[inside] - start]
    if rows is None:  # no candidate at all
        rows = np.zeros((*candidates.shape, job.query_side(plan).rescore.queries.shape[1]), dtype=np.float32)
    return rows


def rerank_candidates(second: Encoded, candidates: np.ndarray, rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Candidates re-ranked by the second stage's cosine (scoring/shards.py's re-rank of a candidate pool),
    the best ``k`` kept; empty slots (-1) stay last with score -inf."""
    scores, idx = rerank_pool(second, candidates, rows, candidates.shape[1])
    scores = np.where(idx >= 0, scores, np.float32(-np.inf)).astype(np.float32)
    scores, idx = order_rows(scores, idx)
    return scores[:, :k], idx[:, :k]



def training_rows(job: ShardJob, plan: Plan, index: IndexSpec, store: DocumentStore) -> np.ndarray | None:
    """What ``index`` trains on, read from the shards: the seeded sample's stored rows, or the two rows
    of the stored corpus's per-dimension min and max (SQ8); None when it trains on nothing."""
    what = training(index)
    if what == "range":
        span = None
        for start, stop in store.ranges():
            part = ColumnRange.of(job.encoded(plan, store.read(start, stop)).docs)
            span = part if span is None else span.merge(part)
        return np.stack([span.low, span.high])
    if what != "sample":
        return None
    positions = train_sample(index, store.n)
    parts = []
    for start, stop in store.ranges():
        local = positions[(positions >= start) & (positions < stop)] - start
        if local.size:
            parts.append(job.encoded(plan, store.read(start, stop)).docs[local])
    return np.concatenate(parts)


def overlaps(exact_idx: np.ndarray, ann_idx: np.ndarray) -> dict[str, np.ndarray]:
    """Per query, the share of the exact top-k the index found in its own top-k, at each OVERLAP_KS."""
    return {f"ann_overlap_at_{k}": topk_overlap(exact_idx, ann_idx, k) for k in OVERLAP_KS}


def exact_costs(search_seconds: float, latency: np.ndarray | None, n_queries: int, n_docs: int,
                bytes_per_vector: int, k: int) -> dict[str, float | int | str | None]:
    """What the exact search cost: its batched shard searches (queries per second) and the timed
    queries' single-query latency, summed over the shards; the stored vectors' bytes."""
    return {
        "index": "exact", "factory": None, "threads": threads(), "k": k, "build_seconds": 0.0,
        "index_bytes": bytes_per_vector * n_docs, "bytes_per_vector": float(bytes_per_vector),
        "train_rows": 0, "nlist": None,
        "qps": round(n_queries / search_seconds, 2) if search_seconds > 0 else None,
        **latency_summary(latency if latency is not None else np.zeros(0)), "warmup": LATENCY_WARMUP,
    }
