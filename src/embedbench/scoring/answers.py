"""Gold answers, normalized once: the one normalization every answer metric and answer label uses.

BERGEN (and SQuAD's evaluation script) compare answers after lowercasing, dropping punctuation,
dropping the articles a/an/the and collapsing whitespace. Answer recall of a ranking
(:mod:`embedbench.scoring.task_metrics`), the generated-answer metrics (:mod:`embedbench.rag.metrics`)
and the KILT loader's evidence labels (:mod:`embedbench.data.kilt`) all go through here, so a
passage counts as holding an answer by the same rule everywhere.
"""

from __future__ import annotations

import re
import string
from collections.abc import Sequence

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCT = set(string.punctuation)


def normalize_answer(text: str) -> str:
    """Lowercase, punctuation and the articles a/an/the removed, whitespace collapsed."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _PUNCT)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def usable_golds(golds: Sequence[str]) -> list[str]:
    """The normalized, non-empty gold answers, in order, without duplicates.

    A gold that normalizes to "" is dropped: it would be contained in every text.
    """
    out: list[str] = []
    for gold in golds:
        norm = normalize_answer(gold)
        if norm and norm not in out:
            out.append(norm)
    return out


def contains_answer(text: str, golds: Sequence[str]) -> bool:
    """Whether the normalized ``text`` contains one of ``golds`` (already normalized: :func:`usable_golds`)."""
    norm = normalize_answer(text)
    return any(g in norm for g in golds)
