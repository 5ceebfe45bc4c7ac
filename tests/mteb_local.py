"""Run mteb 2.x on embedbench's in-memory `RetrievalData`, fully offline (test helper).

mteb 2.x API used (read from the installed mteb 2.26 source):

* A custom task is an ``mteb.abstasks.retrieval.AbsTaskRetrieval`` subclass with a
  ``mteb.abstasks.task_metadata.TaskMetadata``. Its ``load_data`` fills ``self.dataset`` in
  the 2.x layout ``{hf_subset: {split: RetrievalSplitData}}`` where ``RetrievalSplitData`` is
  a dict with ``corpus`` (``datasets.Dataset`` with columns ``id``, ``text``, ``title``),
  ``queries`` (``Dataset`` with ``id``, ``text``), ``relevant_docs`` (plain
  ``{qid: {doc id: int}}``) and ``top_ranked`` (``None`` for full-corpus retrieval).
  Setting ``data_loaded = True`` keeps mteb from ever calling the Hugging Face hub.
* ``mteb.evaluate(model, task, cache=None, ...)``: ``cache=None`` writes no result files
  (the default cache is ``~/.cache/mteb``). A plain ``SentenceTransformer`` is accepted and
  wrapped in ``mteb.models.SentenceTransformerEncoderWrapper``, whose ``ModelMeta`` is read
  from the model object itself (no hub lookup); scores use the model's own
  ``similarity`` (cosine for all-MiniLM-L6-v2).
"""

from __future__ import annotations

from typing import Any

from embedbench.data.types import RetrievalData

TASK_NAME = "EmbedbenchParityRetrieval"
SPLIT = "test"


def make_task(data: RetrievalData, *, name: str = TASK_NAME, split: str = SPLIT, language: str = "eng-Latn") -> Any:
    """An mteb retrieval task over exactly `data`'s corpus, queries and qrels (one "default" subset)."""
    from datasets import Dataset
    from mteb.abstasks.retrieval import AbsTaskRetrieval
    from mteb.abstasks.task_metadata import TaskMetadata

    corpus_ids = list(data.corpus)
    query_ids = list(data.queries)
    corpus = Dataset.from_dict(
        {
            "id": corpus_ids,
            "text": [data.corpus[d].text for d in corpus_ids],
            "title": [data.corpus[d].title for d in corpus_ids],
        }
    )
    queries = Dataset.from_dict({"id": query_ids, "text": [data.queries[q].text for q in query_ids]})
    relevant_docs = {qid: dict(rels) for qid, rels in data.qrels.items()}

    metadata = TaskMetadata(
        name=name,
        description="embedbench RetrievalData handed to mteb in memory (parity test).",
        reference=None,
        dataset={"path": "embedbench/local", "revision": "local"},
        type="Retrieval",
        category="t2t",
        modalities=["text"],
        eval_splits=[split],
        eval_langs=[language],
        main_score="ndcg_at_10",
        date=None,
        domains=None,
        task_subtypes=None,
        license=None,
        annotations_creators=None,
        dialect=None,
        sample_creation=None,
        bibtex_citation="",
    )

    class LocalRetrieval(AbsTaskRetrieval):
        def load_data(self, num_proc: int | None = None, **kwargs: Any) -> None:  # noqa: ARG002
            if self.data_loaded:
                return
            self.dataset = {
                "default": {
                    split: {
                        "corpus": corpus,
                        "queries": queries,
                        "relevant_docs": relevant_docs,
                        "top_ranked": None,
                    }
                }
            }
            self.data_loaded = True

    LocalRetrieval.metadata = metadata
    return LocalRetrieval()


def mteb_scores(model: Any, data: RetrievalData, *, batch_size: int = 64) -> dict[str, float]:
    """mteb's score dict (``ndcg_at_10``, ``recall_at_10``, ``mrr_at_10``, ...) for `model` on `data`.

    `model` is anything ``mteb.evaluate`` takes, e.g. a ``SentenceTransformer``.
    """
    import mteb

    task = make_task(data)
    result = mteb.evaluate(
        model,
        task,
        cache=None,
        overwrite_strategy="always",
        encode_kwargs={"batch_size": batch_size, "show_progress_bar": False},
        show_progress_bar=False,
        co2_tracker=False,
    )
    if result.exceptions:
        raise RuntimeError(f"mteb.evaluate failed: {result.exceptions}")
    (task_result,) = result.task_results
    (scores,) = task_result.scores[SPLIT]
    return scores
