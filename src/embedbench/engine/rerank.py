"""The realistic late-interaction pipeline: a dense model's top-N re-ranked by a multi-vector model's MaxSim.

`--rerank-with MODEL --rerank-depth N`: the dense model is searched as always (every precision and dim,
engine/dense.py), and each plan's top N documents are re-scored by the multi-vector model's exact MaxSim
(fp32 token vectors, through the cache like any other). Only the N candidates are ranked, so metrics
past N are recorded as not measured (as for binary+int8). What the first stage costs the second is
recorded against the multi-vector model's own exact search of the whole corpus, per query:

- ``first_stage_recall_at_10``: the share of MaxSim's exact top 10 that is among the N candidates;
- ``rescore_overlap_at_10``: the share of it in the re-ranked top 10 (as the two-stage specs record).

A result's variant names the re-ranker (``rerank_with``, ``rerank_revision``) and ``rerank_depth``, and its
bytes per vector add the re-ranker's bytes per document (mean tokens x 4 x d) to the dense index's.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import numpy as np

from embedbench.engine.context import RunContext
from embedbench.engine.dense import search_job, search_plans
from embedbench.engine.late import TaskTokens, encode_task_tokens
from embedbench.engine.late import search_plans as maxsim_plans
from embedbench.engine.queries import TaskQueries
from embedbench.engine.score import PerQuery, array_task_metrics, task_judgements
from embedbench.engine.stream import encode_task
from embedbench.engine.write import EncodingStats, Measurement, build_provenance, build_result
from embedbench.errors import EmbedbenchError
from embedbench.results import Result
from embedbench.scoring.maxsim import encode_tokens, maxsim_rerank
from embedbench.scoring.metrics import past_depth, topk_overlap
from embedbench.scoring.precision import PRECISIONS

OVERLAP_K = 10


def check_rerank_run(run: RunContext) -> None:
    if run.multi_vector or not run.dense:
        raise EmbedbenchError("--rerank-with re-ranks a dense model's candidates; give a dense --model")


def score_reranked(run: RunContext, q: TaskQueries) -> Iterator[tuple[Result, PerQuery]]:
    """One (Result, per-query scores) per dim x precision of the dense model, its top N re-ranked by MaxSim."""
    check_rerank_run(run)
    reranker = run.reranker  # loaded (and checked to be multi-vector) by the run's context
    vectors = encode_task(run, q)
    tokens = encode_task_tokens(reranker, run.cache, q)
    stats = _both(vectors.stats, tokens.stats)
    provenance = build_provenance(run, q.task, stats)
    judged = task_judgements(q)
    fp32 = PRECISIONS["fp32"]
    [exact] = maxsim_plans(reranker.meta, [(None, fp32)], tokens, k=OVERLAP_K)  # MaxSim's own top 10
    queries, _ = encode_tokens(fp32, tokens.queries, None, None, None)
    job = search_job(run, vectors)
    for plan, search in zip(job.plans, search_plans(run, vectors, job)):
        t0 = time.perf_counter()
        _, first = search.main.result()
        depth = min(run.rerank_depth, first.shape[1])
        scores, idx = maxsim_rerank(queries, first[:, :depth], lambda which: _codes(tokens, which), depth,
                                    reranker.meta.pooling or "maxsim")
        seconds = search.seconds + time.perf_counter() - t0
        per_query = array_task_metrics(run, q, judged, scores, idx)
        absent = [] if depth >= len(q.doc_ids) else past_depth(per_query, depth)
        per_query = {k: v for k, v in per_query.items() if k not in absent}
        # Measured at any depth: how much of MaxSim's exact top 10 the candidates, and the re-ranked 10, hold.
        per_query["first_stage_recall_at_10"] = _per_query(q, topk_overlap(exact.run[1], first[:, :depth], depth))
        per_query["rescore_overlap_at_10"] = _per_query(q, topk_overlap(exact.run[1], idx, OVERLAP_K))
        side = search.main.queries
        variant = {**q.variant, "rerank_with": reranker.meta.name, "rerank_revision": reranker.meta.revision,
                   "rerank_depth": depth}
        m = Measurement(plan[1].name, side.quantization, side.dim, side.bytes_per_vector + exact.bytes_per_document(),
                        variant, per_query, len(q.qids), len(q.doc_ids), seconds, stats, absent)
        yield build_result(run, q.task, m, provenance), m.per_query


def _per_query(q: TaskQueries, values: np.ndarray) -> dict[str, float]:
    return dict(zip(q.qids, values.tolist()))


def _codes(tokens: TaskTokens, which: np.ndarray):
    return encode_tokens(PRECISIONS["fp32"], tokens.docs.take(which), None, None, None)[0]


def _both(a: EncodingStats, b: EncodingStats) -> EncodingStats:
    return EncodingStats(a.seconds + b.seconds, a.encoded + b.encoded, a.cached + b.cached, a.truncated)
