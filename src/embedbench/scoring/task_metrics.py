"""Metrics some suites add to the standard ranking metrics; pure functions over a ranked run.

- comprehensiveness_at_k (ToolRet): 1 if every relevant document of the query is in the top k, else 0.
  Its mean is the share of queries whose relevant tools are all retrieved.
- answer_recall_at_k (BERGEN-style RAG): 1 if a gold answer string occurs, after normalization
  (:mod:`embedbench.scoring.answers`), in at least one of the top-k passages, else 0. It needs no generator.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from embedbench.scoring.answers import contains_answer, usable_golds
from embedbench.scoring.metrics import K_VALUES, rank


def comprehensiveness(qrels: Mapping[str, Mapping[str, int]], run: Mapping[str, Mapping[str, float]],
                      k_values: Sequence[int] = K_VALUES) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {f"comprehensiveness_at_{k}": {} for k in k_values}
    for qid, rels in qrels.items():
        relevant = {d for d, r in rels.items() if r > 0}
        if not relevant:
            continue
        ranking = rank(run.get(qid, {}))
        for k in k_values:
            out[f"comprehensiveness_at_{k}"][qid] = float(relevant <= set(ranking[:k]))
    return out


def answer_recall(answers: Mapping[str, Sequence[str]], run: Mapping[str, Mapping[str, float]],
                  doc_text: Mapping[str, str], qids: Sequence[str],
                  k_values: Sequence[int] = K_VALUES) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {f"answer_recall_at_{k}": {} for k in k_values}
    for qid in qids:
        golds = usable_golds(answers.get(qid, ()))
        if not golds:
            continue
        ranking = rank(run.get(qid, {}))
        first_hit = next((i for i, d in enumerate(ranking) if contains_answer(doc_text[d], golds)), None)
        for k in k_values:
            out[f"answer_recall_at_{k}"][qid] = float(first_hit is not None and first_hit < k)
    return out
