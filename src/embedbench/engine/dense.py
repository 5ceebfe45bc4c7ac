"""Dense models: encode a task once through the cache, then search every dim and precision over its shards.

Every precision and MRL dim is derived from the same cached float vectors, so a sweep costs one
encoding, and every (dim, precision) is searched in the same pass over the corpus's shards
(engine/sharded.py), read back from the cache a shard at a time (engine/stream.py). Two-stage specs
(binary+int8, binary+fp32) also record how much of the exact top 10 the re-ranked list kept, and
leave metrics past the rescore depth unmeasured.

Search indexes (``--index``, scoring/index.py): the exact search above always runs -- it is the
``exact`` result and the reference every faiss index is compared with -- and each other index is
then built over the same plan's stored documents and searched (engine/ann.py), one result per
dim x precision x index, all from the one encoding. An exact result's variant is today's; an
index's adds ``index`` (its canonical spec). A faiss index is built only at the precisions it applies
to (scoring/index.py: never at int8; binary-hnsw as the first stage of binary+int8 / binary+fp32,
its candidates re-ranked like the exact two-stage search's). Every result records what its search
cost (``costs``): queries per second always; single-query latency when the run compares indexes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import numpy as np

from embedbench.engine import executors
from embedbench.engine.ann import OVERLAP_KS, AnnSearch, ann_searches, exact_costs, overlaps
from embedbench.engine.context import RunContext
from embedbench.engine.queries import TaskQueries
from embedbench.engine.score import TOP_K, PerQuery, TaskJudgements, array_task_metrics, task_judgements
from embedbench.engine.sharded import OVERLAP_K, PlanSearch, ShardJob, needs_span, plan_searches, search_shard, shard_span
from embedbench.engine.stream import TaskVectors, encode_task
from embedbench.engine.timing import latency_rows
from embedbench.engine.write import Measurement, build_provenance, build_result
from embedbench.results import Result
from embedbench.scoring.index import IndexSpec, check_index_plans, index_applies, parse_index_specs
from embedbench.scoring.metrics import mean_metrics, past_depth, topk_overlap


def score_dense(run: RunContext, q: TaskQueries) -> Iterator[tuple[Result, PerQuery]]:
    """One (Result, per-query scores) per dim x precision x index, all from one encoding of the task."""
    indexes = parse_index_specs(run.indexes)
    check_indexes(run, indexes, run.encoder.meta.dim)  # before encoding, when the model's size is known
    vectors = encode_task(run, q)
    check_indexes(run, indexes, vectors.queries.shape[1])
    provenance = build_provenance(run, q.task, vectors.stats)
    judged = task_judgements(q)  # documents and grades as arrays once; every search below reuses them
    job = search_job(run, vectors, timed=any(not i.exact for i in indexes))
    for plan, search in zip(job.plans, search_plans(run, vectors, job)):
        exact = measure(run, q, vectors, plan, search, judged)
        if any(i.exact for i in indexes):
            yield build_result(run, q.task, exact, provenance), exact.per_query
        faiss_indexes = [i for i in indexes if not i.exact and index_applies(i, plan[1])]
        for index, ann in ann_searches(job, plan, faiss_indexes, vectors.docs):
            m = measure_index(run, q, index, ann, search, exact, judged)
            yield build_result(run, q.task, m, provenance), m.per_query


def check_indexes(run: RunContext, indexes: tuple[IndexSpec, ...], model_dim: int | None) -> None:
    """Every index applies to some precision of the run and fits every dim (one line otherwise); the dims
    are checked once the model's dimension is known (before encoding, or once the task is encoded)."""
    if model_dim is not None:
        check_index_plans(indexes, run.specs, [d or model_dim for d in run.dims])


def search_job(run: RunContext, vectors: TaskVectors, timed: bool = False) -> ShardJob:
    """The task's plans (every dim x precision) and, when one calibrates int8 on the corpus, the corpus ranges.

    ``timed``: the exact search also times the seeded sample of queries one at a time on every shard,
    for the single-query latency it is compared on -- done when the run compares faiss indexes with
    it, as that costs a search per timed query per shard (a plain run records queries per second only)."""
    plans = tuple((dim, spec) for dim in run.dims for spec in run.specs)
    native = dict(run.encoder.meta.native_quantizers or {})
    job = ShardJob(vectors.queries, plans, native, run.rescore_depth, TOP_K, None, executors.SEARCH_BLOCK,
                   latency_rows(len(vectors.queries)) if timed else None)
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
    costs = exact_costs(search.search_seconds, search.latency, len(q.qids), len(q.doc_ids), side.bytes_per_vector,
                        TOP_K)
    return Measurement(spec.name, side.quantization, side.dim, side.bytes_per_vector, variant, per_query,
                       len(q.qids), len(q.doc_ids), search.seconds, vectors.stats, absent, costs)


def measure_index(run: RunContext, q: TaskQueries, index: IndexSpec, ann: AnnSearch, search: PlanSearch,
                  exact: Measurement, judged: TaskJudgements) -> Measurement:
    """Score one faiss index's ranking of the plan: its metrics, its overlap with the exact top-k and its
    main-score delta against the exact search of the same plan."""
    per_query = array_task_metrics(run, q, judged, ann.scores, ann.idx)
    _, exact_idx = search.main.result()
    ann_overlaps = overlaps(exact_idx, ann.idx)
    absent = list(exact.absent)
    if "rescore_depth" in ann.costs:  # two-stage: nothing past the re-ranked depth is measured
        absent += [f"ann_overlap_at_{k}" for k in OVERLAP_KS if k > ann.costs["rescore_depth"]]
    per_query = {k: v for k, v in per_query.items() if k not in absent}
    per_query.update({name: dict(zip(q.qids, values.tolist())) for name, values in ann_overlaps.items()
                      if name not in absent})
    main = q.task.spec.main_score
    exact_main, ann_main = mean_metrics(exact.per_query).get(main), mean_metrics(per_query).get(main)
    delta = None if exact_main is None or ann_main is None else round(ann_main - exact_main, 6)
    costs = {**ann.costs, "exact_main_score": exact_main, "main_score_delta": delta}
    return dataclasses.replace(exact, variant={**exact.variant, "index": index.name}, per_query=per_query,
                               bytes_per_vector=max(1, round(ann.costs["bytes_per_vector"])),
                               search_seconds=ann.seconds, costs=costs, absent=absent)


def two_stage_metrics(run: RunContext, q: TaskQueries, exact: np.ndarray, idx: np.ndarray,
                      per_query: PerQuery) -> tuple[PerQuery, list[str]]:
    """Add the overlap with the exact top 10; drop (and name) metrics whose cutoff is past the rescore depth."""
    overlap = topk_overlap(exact, idx, OVERLAP_K)
    per_query = {**per_query, "rescore_overlap_at_10": dict(zip(q.qids, overlap.tolist()))}
    if run.rescore_depth >= len(q.doc_ids):  # every document was re-ranked: every cutoff is measured
        return per_query, []
    absent = past_depth(per_query, run.rescore_depth)
    return {k: v for k, v in per_query.items() if k not in absent}, absent
