"""Lexical models (BM25): the model indexes the corpus and ranks it itself; no vectors, no precisions."""

from __future__ import annotations

import time

from embedbench.engine.context import RunContext
from embedbench.engine.queries import TaskQueries
from embedbench.engine.score import TOP_K, PerQuery, task_metrics
from embedbench.engine.write import EncodingStats, Measurement, build_provenance, build_result
from embedbench.results import Result


def score_lexical(run: RunContext, q: TaskQueries) -> tuple[Result, PerQuery]:
    """Index the corpus (counted as encoding), search every query, score the ranking: one Result."""
    doc_texts = q.doc_texts()
    t0 = time.perf_counter()
    run.encoder.index([q.doc_ids[i] for i in range(len(q.doc_ids))], doc_texts)
    stats = EncodingStats(time.perf_counter() - t0, encoded=len(doc_texts), cached=0)
    t1 = time.perf_counter()
    hits = run.encoder.search(q.query_texts, min(TOP_K, len(q.doc_ids)))
    search_seconds = time.perf_counter() - t1
    per_query = task_metrics(run, q, dict(zip(q.qids, hits)))
    m = Measurement("lexical", "none", 0, 0, q.variant, per_query, len(q.qids), len(q.doc_ids), search_seconds,
                    stats)
    return build_result(run, q.task, m, build_provenance(run, q.task, stats)), per_query
