"""Dense models: encode a task once through the cache, then per dim and precision transform, search, score.

Every precision and MRL dim is derived from the same cached float vectors, so a sweep costs one
encoding. Two-stage specs (binary+int8, binary+fp32) also record how much of the exact top 10 the
re-ranked list kept, and leave metrics past the rescore depth unmeasured.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from embedbench.engine.context import RunContext
from embedbench.engine.encoding import CachedEncoding
from embedbench.engine.queries import TaskQueries
from embedbench.engine.score import TOP_K, PerQuery, TaskJudgements, array_task_metrics, task_judgements
from embedbench.engine.write import EncodingStats, Measurement, build_provenance, build_result
from embedbench.results import Result
from embedbench.scoring.metrics import past_depth
from embedbench.scoring.precision import Encoded, PrecisionSpec, apply_precision
from embedbench.scoring.retrieval import exact_overlap, search_encoded


@dataclass(frozen=True)
class TaskVectors:
    queries: np.ndarray  # float32, in TaskQueries.qids order
    docs: np.ndarray  # float32, in TaskQueries.doc_ids order
    stats: EncodingStats


def score_dense(run: RunContext, q: TaskQueries) -> Iterator[tuple[Result, PerQuery]]:
    """One (Result, per-query scores) per dim x precision, all from one encoding of the task."""
    vectors = encode_task(run, q)
    provenance = build_provenance(run, q.task, vectors.stats)
    judged = task_judgements(q)  # documents and grades as arrays once; every search below reuses them
    for dim in run.dims:
        for spec in run.specs:
            m = measure_precision(run, q, vectors, spec, dim, judged)
            yield build_result(run, q.task, m, provenance), m.per_query


def encode_task(run: RunContext, q: TaskQueries) -> TaskVectors:
    """Documents and queries through the embedding cache; the cache's counters say what was encoded."""
    enc = CachedEncoding(run.encoder, run.cache)
    hits0, encoded0 = run.cache.stats["hits"], run.cache.stats["encoded"]
    t0 = time.perf_counter()
    docs = document_vectors(run, enc, q)
    queries = enc.queries(q.query_texts, q.task.spec.name)
    seconds = time.perf_counter() - t0
    stats = EncodingStats(seconds, run.cache.stats["encoded"] - encoded0, run.cache.stats["hits"] - hits0,
                          truncated_shares(run.encoder, q.doc_texts(), q.query_texts))
    return TaskVectors(queries, docs, stats)


def document_vectors(run: RunContext, enc: CachedEncoding, q: TaskQueries) -> np.ndarray:
    """The corpus vectors in doc_ids order; chunked documents with late chunking see their whole document."""
    data, label = q.data, q.task.spec.name
    if data.documents is None or run.context == "none":
        return enc.documents(q.doc_texts(), label)
    order = list(data.documents)
    vectors = enc.chunks_in_context([[data.corpus[c].full_text for c in data.documents[d]] for d in order], label)
    row = {cid: vec for d, block in zip(order, vectors) for cid, vec in zip(data.documents[d], block)}
    return np.stack([row[d] for d in q.doc_ids]).astype(np.float32, copy=False)


def truncated_shares(encoder: object, doc_texts: list[str], query_texts: list[str]) -> dict[str, float]:
    """Share of texts longer than the model's max length, per role (models that can count them)."""
    count = getattr(encoder, "count_truncated", None)
    if count is None:
        return {}
    return {
        "document": count(doc_texts, "document") / max(len(doc_texts), 1),
        "query": count(query_texts, "query") / max(len(query_texts), 1),
    }


def measure_precision(run: RunContext, q: TaskQueries, vectors: TaskVectors, spec: PrecisionSpec,
                      dim: int | None, judged: TaskJudgements | None = None) -> Measurement:
    """Transform the float vectors to `spec` at `dim`, search the top k, score the ranking."""
    t0 = time.perf_counter()
    encoded = apply_precision(spec, vectors.queries, vectors.docs, dim, run.encoder.meta.native_quantizers,
                              run.rescore_depth)
    scores, idx = search_encoded(encoded, TOP_K)
    search_seconds = time.perf_counter() - t0
    per_query = array_task_metrics(run, q, judged or task_judgements(q), scores, idx)
    variant, absent = dict(q.variant), []
    if encoded.rescore is not None:
        variant["rescore_depth"] = run.rescore_depth
        per_query, absent = two_stage_metrics(run, q, encoded, idx, per_query)
    return Measurement(spec.name, encoded.quantization, encoded.dim, encoded.bytes_per_vector, variant, per_query,
                       len(q.qids), len(q.doc_ids), search_seconds, vectors.stats, absent)


def two_stage_metrics(run: RunContext, q: TaskQueries, encoded: Encoded, idx: np.ndarray,
                      per_query: PerQuery) -> tuple[PerQuery, list[str]]:
    """Add the overlap with the exact top 10; drop (and name) metrics whose cutoff is past the rescore depth."""
    per_query = {**per_query, "rescore_overlap_at_10": dict(zip(q.qids, exact_overlap(encoded, idx, 10).tolist()))}
    if run.rescore_depth >= len(q.doc_ids):  # every document was re-ranked: every cutoff is measured
        return per_query, []
    absent = past_depth(per_query, run.rescore_depth)
    return {k: v for k, v in per_query.items() if k not in absent}, absent
