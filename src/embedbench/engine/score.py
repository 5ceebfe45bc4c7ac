"""Per-query metrics of one ranking: the IR metrics, then what the task adds (generated answers,
comprehensiveness, answer recall). The metric functions themselves are pure, in `scoring` and `rag`."""

from __future__ import annotations

from embedbench.engine.context import RunContext
from embedbench.engine.queries import TaskQueries
from embedbench.scoring.metrics import K_VALUES, per_query_metrics
from embedbench.scoring.task_metrics import answer_recall, comprehensiveness

TOP_K = max(K_VALUES)  # how deep each ranking goes: the largest cutoff any metric reads
Ranking = dict[str, dict[str, float]]  # query id -> {document id: score}
PerQuery = dict[str, dict[str, float]]  # metric -> {query id: value}


def ranking_metrics(q: TaskQueries, ranking: Ranking) -> PerQuery:
    """The IR metrics at every k, with the task's rules for self-hits and all-zero judgements."""
    data = q.data
    if data.extra.get("ignore_identical_ids"):  # mteb's rule (ArguAna): a query never retrieves itself
        for qid in q.qids:
            ranking.get(qid, {}).pop(qid, None)
    per_query = per_query_metrics({qid: data.qrels[qid] for qid in q.qids}, ranking)
    for qid in set(data.extra.get("zero_relevance_queries") or ()) & set(q.qids):
        for values in per_query.values():
            values[qid] = 0.0
    return per_query


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


def task_metrics(run: RunContext, q: TaskQueries, ranking: Ranking) -> PerQuery:
    """Every per-query metric this run computes for the task."""
    data = q.data
    per_query = ranking_metrics(q, ranking)
    if data.answers and run.generator is not None:
        per_query.update(generated_answer_metrics(run, q, ranking))
    if "comprehensiveness" in q.task.spec.metrics:
        per_query.update(comprehensiveness({qid: data.qrels[qid] for qid in q.qids}, ranking))
    if "answer_recall" in q.task.spec.metrics and data.answers:
        per_query.update(answer_recall(data.answers, ranking, ranked_texts(q, ranking), q.qids))
    return per_query
