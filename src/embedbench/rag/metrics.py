"""Answer metrics for generated RAG outputs, as BERGEN computes them (per query, max over gold answers).

All three compare BERGEN/SQuAD-normalized strings (`embedbench.scoring.answers.normalize_answer`: lowercase,
punctuation and the articles a/an/the removed, whitespace collapsed):

- `match`: 1 if some normalized gold answer is a substring of the normalized prediction, else 0.
- `exact_match`: 1 if the normalized prediction equals some normalized gold answer, else 0.
- `f1`: token-level F1 between prediction and gold (bag of whitespace tokens), the best over golds.

Gold answers that normalize to the empty string are ignored (BERGEN would count an empty gold as
contained in every prediction); a query with no non-empty gold is an error, not a zero.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from embedbench.scoring.answers import contains_answer, normalize_answer, usable_golds

__all__ = ["METRIC_NAMES", "exact_match", "match", "score_answer", "token_f1", "usable_golds"]

METRIC_NAMES: tuple[str, ...] = ("match", "exact_match", "f1")


def _golds(golds: Sequence[str]) -> list[str]:
    if isinstance(golds, str):
        raise TypeError("golds must be a list of strings, not one string")
    usable = usable_golds(golds)
    if not usable:
        raise ValueError(f"no non-empty gold answer among {list(golds)!r}")
    return usable


def match(prediction: str, golds: Sequence[str]) -> float:
    return float(contains_answer(prediction, _golds(golds)))


def exact_match(prediction: str, golds: Sequence[str]) -> float:
    pred = normalize_answer(prediction)
    return float(any(g == pred for g in _golds(golds)))


def _f1(pred_tokens: list[str], gold_tokens: list[str]) -> float:
    common = sum((Counter(pred_tokens) & Counter(gold_tokens)).values())
    if common == 0:
        return 0.0
    precision = common / len(pred_tokens)
    recall = common / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def token_f1(prediction: str, golds: Sequence[str]) -> float:
    pred_tokens = normalize_answer(prediction).split()
    return max(_f1(pred_tokens, g.split()) for g in _golds(golds))


def score_answer(prediction: str, golds: Sequence[str]) -> dict[str, float]:
    """All three metrics of one prediction: {"match", "exact_match", "f1"}."""
    return {"match": match(prediction, golds), "exact_match": exact_match(prediction, golds),
            "f1": token_f1(prediction, golds)}
