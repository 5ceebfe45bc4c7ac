"""Per-query metrics of one ranking: the IR metrics, then what the task adds (generated answers,
comprehensiveness, answer recall). The metric functions themselves are pure, in `scoring` and `rag`.

A ranking comes either as a dict run (lexical models: :func:`task_metrics`) or as the search's
ranked (queries x k) arrays (dense models: :func:`array_task_metrics`), whose IR metrics are
computed for all queries at once; the dict run is then built only for a task metric that reads it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from embedbench.engine.context import RunContext
from embedbench.engine.queries import TaskQueries
from embedbench.data.corpus import tie_ranks
from embedbench.scoring.metrics import K_VALUES, Grades, grades_at, per_query_metrics, ranked_metrics
from embedbench.scoring.task_metrics import answer_recall, comprehensiveness

TOP_K = max(K_VALUES)  # how deep each ranking goes: the largest cutoff any metric reads
Ranking = dict[str, dict[str, float]]  # query id -> {document id: score}
PerQuery = dict[str, dict[str, float]]  # metric -> {query id: value}


@dataclass(frozen=True)
class TaskJudgements:
    """A task's qrels and corpus order as arrays, built once per task and shared by all its searches."""

    grades: Grades  # rows in q.qids order, columns = corpus index
    doc_rank: np.ndarray  # each document's place in string order (trec_eval's tie order)
    self_hits: np.ndarray | None  # per query, the corpus index of its own id (-1: none); None unless dropped


def task_judgements(q: TaskQueries) -> TaskJudgements:
    """The task's grade matrix, tie order and (for tasks that ignore identical ids) self-hit ids."""
    data, order = q.data, q.doc_ids
    self_hits = None
    if data.extra.get("ignore_identical_ids"):  # mteb's rule (ArguAna): a query never retrieves itself
        self_hits = np.asarray([order.position(qid) for qid in q.qids], dtype=np.int64)
    return TaskJudgements(grades_at(data.qrels, q.qids, order.position, len(order)), tie_ranks(order), self_hits)


def drop_self_hits(q: TaskQueries, ranking: Ranking) -> None:
    """mteb's rule for tasks that ignore identical ids: a query never retrieves itself."""
    if q.data.extra.get("ignore_identical_ids"):
        for qid in q.qids:
            ranking.get(qid, {}).pop(qid, None)


def zero_relevance_scores(q: TaskQueries, per_query: PerQuery) -> PerQuery:
    """Queries whose judgements are all 0 (kept by mteb) score 0 on every IR metric."""
    for qid in set(q.data.extra.get("zero_relevance_queries") or ()) & set(q.qids):
        for values in per_query.values():
            values[qid] = 0.0
    return per_query


def ranking_metrics(q: TaskQueries, ranking: Ranking) -> PerQuery:
    """The IR metrics at every k, with the task's rules for self-hits and all-zero judgements."""
    drop_self_hits(q, ranking)
    return zero_relevance_scores(q, per_query_metrics({qid: q.data.qrels[qid] for qid in q.qids}, ranking))


def array_ranking_metrics(q: TaskQueries, judged: TaskJudgements, scores: np.ndarray, idx: np.ndarray) -> PerQuery:
    """:func:`ranking_metrics` of the dict run of (scores, idx), computed on the arrays."""
    values = ranked_metrics(idx, scores, judged.grades, judged.doc_rank, exclude=judged.self_hits)
    scored = np.flatnonzero(judged.grades.n_relevant > 0)
    qids = [q.qids[r] for r in scored.tolist()]
    per_query = {name: dict(zip(qids, v[scored].tolist())) for name, v in values.items()}
    return zero_relevance_scores(q, per_query)


def ranking_dict(q: TaskQueries, scores: np.ndarray, idx: np.ndarray) -> Ranking:
    """The search's rows as a dict run: query id -> {document id: score}, empty slots left out."""
    return {qid: {q.doc_ids[i]: float(s) for s, i in zip(scores[r], idx[r]) if i >= 0}
            for r, qid in enumerate(q.qids)}


def ranked_texts(q: TaskQueries, ranking: Ranking) -> dict[str, str]:
    """The text of every document some query retrieved."""
    return {d: q.data.corpus[d].full_text for hits in ranking.values() for d in hits}


def generated_answer_metrics(run: RunContext, q: TaskQueries, ranking: Ranking) -> PerQuery:
    """match / exact_match / f1 of the generator's answers from each query's top rag_k passages."""
    from embedbench.rag.run import generate_and_score, top_passages

    data = q.data
    questions = {qid: data.queries[qid].text for qid in q.qids}
    passages = top_passages(ranking, ranked_texts(q, ranking), run.rag_k, q.qids)
    return generate_and_score(run.generator, questions, passages, data.answers, run.rag_k)


def needs_dict_run(run: RunContext, q: TaskQueries) -> bool:
    """Whether a task metric beyond the IR ones reads the ranking (as a dict run)."""
    data, metrics = q.data, q.task.spec.metrics
    return bool((data.answers and run.generator is not None) or "comprehensiveness" in metrics
                or ("answer_recall" in metrics and data.answers))


def added_task_metrics(run: RunContext, q: TaskQueries, ranking: Ranking) -> PerQuery:
    """The metrics the task adds to the IR ones (generated answers, comprehensiveness, answer recall)."""
    data, per_query = q.data, {}
    if data.answers and run.generator is not None:
        per_query.update(generated_answer_metrics(run, q, ranking))
    if "comprehensiveness" in q.task.spec.metrics:
        per_query.update(comprehensiveness({qid: data.qrels[qid] for qid in q.qids}, ranking))
    if "answer_recall" in q.task.spec.metrics and data.answers:
        per_query.update(answer_recall(data.answers, ranking, ranked_texts(q, ranking), q.qids))
    return per_query


def task_metrics(run: RunContext, q: TaskQueries, ranking: Ranking) -> PerQuery:
    """Every per-query metric this run computes for the task, from a dict run."""
    per_query = ranking_metrics(q, ranking)
    per_query.update(added_task_metrics(run, q, ranking))
    return per_query


def array_task_metrics(run: RunContext, q: TaskQueries, judged: TaskJudgements, scores: np.ndarray,
                       idx: np.ndarray) -> PerQuery:
    """:func:`task_metrics` of a search's ranked arrays; the dict run is built only if a task metric reads it."""
    per_query = array_ranking_metrics(q, judged, scores, idx)
    if needs_dict_run(run, q):
        ranking = ranking_dict(q, scores, idx)
        drop_self_hits(q, ranking)
        per_query.update(added_task_metrics(run, q, ranking))
    return per_query
