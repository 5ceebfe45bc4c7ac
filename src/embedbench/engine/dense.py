"""Dense models: encode a task once through the cache, then search every dim and precision over its shards.

Every precision and MRL dim is derived from the same cached float vectors, so a sweep costs one
encoding, and every (dim, precision) is searched in the same pass over the corpus's shards
(engine/sharded.py), read back from the cache a shard at a time (engine/stream.py). Two-stage specs
(binary+int8, binary+fp32) also record how much of the exact top 10 the re-ranked list kept, and
leave metrics past the rescore depth unmeasured.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import numpy as np

from embedbench.engine import executors
from embedbench.engine.context import RunContext
from embedbench.engine.queries import TaskQueries
from embedbench.engine.score import TOP_K, PerQuery, TaskJudgements, array_task_metrics, task_judgements
from embedbench.engine.sharded import OVERLAP_K, PlanSearch, ShardJob, needs_span, plan_searches, search_shard, shard_span
from embedbench.engine.stream import TaskVectors, encode_task
from embedbench.engine.write import Measurement, build_provenance, build_result
from embedbench.results import Result
from embedbench.scoring.metrics import past_depth, topk_overlap


def score_dense(run: RunContext, q: TaskQueries) -> Iterator[tuple[Result, PerQuery]]:
    """One (Result, per-query scores) per dim x precision, all from one encoding of the task."""
    vectors = encode_task(run, q)
    provenance = build_provenance(run, q.task, vectors.stats)
    judged = task_judgements(q)  # documents and grades as arrays once; every search below reuses them
    job = search_job(run, vectors)
    for plan, search in zip(job.plans, search_plans(run, vectors, job)):
        m = measure(run, q, vectors, plan, search, judged)
        yield build_result(run, q.task, m, provenance), m.per_query


def search_job(run: RunContext, vectors: TaskVectors) -> ShardJob:
    """The task's plans (every dim x precision) and, when one calibrates int8 on the corpus, the corpus ranges."""
    plans = tuple((dim, spec) for dim in run.dims for spec in run.specs)
    native = dict(run.encoder.meta.native_quantizers or {})
    job = ShardJob(vectors.queries, plans, native, run.rescore_depth, TOP_K, None, executors.SEARCH_BLOCK)
    if not needs_span(plans, native):
        return job
    spans = run.executor.map(shard_span, vectors.docs.ranges(), vectors.docs)
    span = None
    for part in spans:
        span = part if span is None else span.merge(part)
    return dataclasses.replace(job, span=span)


def search_plans(run: RunContext, vectors: TaskVectors, job: ShardJob) -> list[PlanSearch]:
    """One pass over the shards: each shard transformed and searched for every plan, parts merged."""
    searches = plan_searches(job)
    for parts in run.executor.map(search_shard, vectors.docs.ranges(), job, vectors.docs):
        for search, part in zip(searches, parts):
            search.merge(part)
    return searches


def measure(run: RunContext, q: TaskQueries, vectors: TaskVectors, plan: tuple, search: PlanSearch,
            judged: TaskJudgements) -> Measurement:
    """Score one plan's ranking: its metrics, and for a two-stage plan the overlap with the exact top 10."""
    dim, spec = plan
    side = search.main.queries
    scores, idx = search.main.result()
    per_query = array_task_metrics(run, q, judged, scores, idx)
    variant, absent = dict(q.variant), []
    if side.rescore is not None:
        variant["rescore_depth"] = run.rescore_depth
        _, exact = search.exact.result()
        per_query, absent = two_stage_metrics(run, q, exact, idx, per_query)
    return Measurement(spec.name, side.quantization, side.dim, side.bytes_per_vector, variant, per_query,
                       len(q.qids), len(q.doc_ids), search.seconds, vectors.stats, absent)


def two_stage_metrics(run: RunContext, q: TaskQueries, exact: np.ndarray, idx: np.ndarray,
                      per_query: PerQuery) -> tuple[PerQuery, list[str]]:
    """Add the overlap with the exact top 10; drop (and name) metrics whose cutoff is past the rescore depth."""
    overlap = topk_overlap(exact, idx, OVERLAP_K)
    per_query = {**per_query, "rescore_overlap_at_10": dict(zip(q.qids, overlap.tolist()))}
    if run.rescore_depth >= len(q.doc_ids):  # every document was re-ranked: every cutoff is measured
        return per_query, []
    absent = past_depth(per_query, run.rescore_depth)
    return {k: v for k, v in per_query.items() if k not in absent}, absent
