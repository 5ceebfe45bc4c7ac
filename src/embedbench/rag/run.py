"""Generation-side RAG scoring: feed each query's top-k retrieved passages to a generator, score the answers.

`top_passages` turns a retrieval run into ranked passage texts (in trec_eval's order, as every other
metric here ranks); `generate_and_score` asks the generator once per query and returns per-query
`match`, `exact_match` and `f1` (see `embedbench.rag.metrics`), ready for `embedbench.scoring.metrics.mean_metrics`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from tqdm import tqdm

from embedbench.errors import EmbedbenchError
from embedbench.rag.generators import Generator
from embedbench.rag.metrics import METRIC_NAMES, score_answer
from embedbench.scoring.answers import usable_golds
from embedbench.scoring.metrics import rank


def top_passages(run: Mapping[str, Mapping[str, float]], doc_text: Mapping[str, str], k: int,
                 qids: Sequence[str] | None = None) -> dict[str, list[str]]:
    """query id -> the texts of its k best-scored documents, best first."""
    if k < 0:
        raise EmbedbenchError(f"rag k must not be negative, got {k}")
    wanted = list(run) if qids is None else list(qids)
    return {q: [doc_text[d] for d in rank(run.get(q, {}))[:k]] for q in wanted}


def generate_and_score(generator: Generator, questions: Mapping[str, str],
                       ranked_passages: Mapping[str, Sequence[str]], answers: Mapping[str, Sequence[str]],
                       k: int, *, predictions: dict[str, str] | None = None,
                       progress: bool = True) -> dict[str, dict[str, float]]:
    """Per-query generation metrics: {"match": {qid: 0/1}, "exact_match": {...}, "f1": {...}}.

    Each question gets its first `k` passages (k = 0: closed book). Questions without a usable gold
    answer are skipped (they have no score). When `predictions` is given, each generated answer is
    stored there under its query id.
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 0:
        raise EmbedbenchError(f"rag k must be a non-negative integer, got {k!r}")
    qids = [q for q in questions if usable_golds(answers.get(q, ()))]
    missing = [q for q in qids if k > 0 and q not in ranked_passages]
    if missing:
        raise EmbedbenchError(f"no ranked passages for query {missing[0]!r} ({len(missing)} queries without)")
    scores: dict[str, dict[str, float]] = {name: {} for name in METRIC_NAMES}
    for qid in tqdm(qids, desc="generating answers", unit="q", disable=not progress):
        passages = list(ranked_passages.get(qid, ()))[:k]
        answer = generator.generate(questions[qid], passages)
        if predictions is not None:
            predictions[qid] = answer
        for name, value in score_answer(answer, answers[qid]).items():
            scores[name][qid] = value
    return scores
