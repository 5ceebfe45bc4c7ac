"""What one task evaluates: its queries (all judged ones, or a seeded sample), their texts per
instruction mode, the corpus order, and the variant every result of the task carries."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass

from embedbench.data.corpus import CorpusOrder, search_order
from embedbench.data.spec import TaskSpec
from embedbench.data.types import RetrievalData
from embedbench.engine.context import RunContext, Variant
from embedbench.engine.plan import PlannedTask

QUERY_SAMPLE_SEED = 0


@dataclass(frozen=True)
class TaskQueries:
    """One task subset in one instruction mode: the unit the search steps score."""

    task: PlannedTask
    qids: list[str]
    doc_ids: CorpusOrder  # the corpus in search order (ids descending), a shard at a time
    query_texts: list[str]  # as encoded, in qids order
    variant: Variant

    @property
    def data(self) -> RetrievalData:
        return self.task.subset.data

    def doc_texts(self) -> list[str]:
        """Every document's text in search order (for models that take the whole corpus at once)."""
        return self.doc_ids.texts(0, len(self.doc_ids))


def sample_queries(data: RetrievalData, limit: int | None) -> list[str]:
    """The judged query ids (at least one relevant document), a seeded sample of `limit` of them if set.

    Tasks that keep queries whose judgements are all 0 (mteb does, and scores them 0) list them in
    `extra["zero_relevance_queries"]`; they are evaluated too.
    """
    keep_zero = set(data.extra.get("zero_relevance_queries") or ())
    judged = sorted(q for q, rels in data.qrels.items() if q in keep_zero or any(r > 0 for r in rels.values()))
    if limit is None or limit >= len(judged):
        return judged
    return sorted(random.Random(QUERY_SAMPLE_SEED).sample(judged, limit))


def instruction_modes(spec: TaskSpec, data: RetrievalData) -> list[str | None]:
    """For tasks with an instruction: "with", "without" or both (the `instruction` option); else no variant."""
    if not data.instruction:
        return [None]
    wanted = spec.options.get("instruction", "both")
    return ["with", "without"] if wanted == "both" else [wanted]


def query_text(data: RetrievalData, qid: str, instruction: str | None) -> str:
    """The query as encoded; "with" prepends the query's own instruction (ToolRet), else the task's."""
    text = data.queries[qid].text
    if instruction != "with":
        return text
    own = (data.extra.get("instructions") or {}).get(qid)
    return f"{own or data.instruction}\n{text}"


def task_variant(run: RunContext, task: PlannedTask) -> Variant:
    """The loader's variant (e.g. corpus_size) plus every run setting that changes this task's numbers."""
    data = task.subset.data
    variant: Variant = {**(task.subset.variant or {}), **run.encoding_variant}
    if run.limit_queries is not None:
        variant["limit_queries"] = run.limit_queries
    if data.documents is not None:
        variant["context"] = run.context
    if data.answers and run.generator is not None:
        variant.update(generator=run.generator.ref, generator_revision=run.generator.fingerprint, rag_k=run.rag_k)
    return variant


def task_queries(run: RunContext, task: PlannedTask) -> Iterator[TaskQueries]:
    """One TaskQueries per instruction mode of the task (one when it has no instruction)."""
    data = task.subset.data
    qids = sample_queries(data, run.limit_queries)
    # Lower index wins ties in the search kernels, so order the corpus as trec_eval breaks ties.
    doc_ids = search_order(data.corpus)
    base = task_variant(run, task)
    for mode in instruction_modes(task.spec, data):
        variant = {**base, **({"instruction": mode} if mode else {})}
        yield TaskQueries(task, qids, doc_ids, [query_text(data, q, mode) for q in qids], variant)
