"""What the Query2Query and Query2Doc generators share: the config, the judged part, the blocked corpus.

A corpus of size N is the judged part (fixed by seed, languages and n_queries: the queries, their
relevant items and their hard negatives) followed by distractor blocks 0, 1, 2, ... of BLOCK_SIZE
items, the last one cut short. Block b depends only on (seed, suite, b) (and the reserved judged
names), so any block can be generated alone and a corpus of size N is a prefix of one of size M > N.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from embedbench.data.types import Document, Query, RetrievalData
from embedbench.errors import EmbedbenchError
from embedbench.data.synthetic.templates import LANGUAGES, language
from embedbench.data.synthetic.world import Entity, judged_entities, judged_rng

BLOCK_SIZE = 1000

Item = tuple[str, Document]


@dataclass(frozen=True)
class Config:
    seed: int = 0
    languages: tuple[str, ...] = LANGUAGES
    n_queries: int = 1000

    def __post_init__(self) -> None:
        if not self.languages:
            raise EmbedbenchError("synthetic suites need at least one language")
        for code in self.languages:
            language(code)  # raises on an unknown code
        if len(set(self.languages)) != len(self.languages):
            raise EmbedbenchError(f"duplicate languages in {list(self.languages)}")
        if self.n_queries < 1:
            raise EmbedbenchError(f"n_queries must be at least 1, got {self.n_queries}")


@dataclass
class Judged:
    """The size-independent part: queries, qrels and the corpus items they need (relevant + hard negatives)."""

    queries: dict[str, Query]
    qrels: dict[str, dict[str, int]]
    corpus: dict[str, Document]
    taken: frozenset[str]  # reserved entity keys: no distractor may be about them


@dataclass(frozen=True)
class Intent:
    """Judged query number `index`: what it asks about, a confusable sibling, and its language."""

    index: int
    entity: Entity
    sibling: Entity
    language: str

    @property
    def qid(self) -> str:
        return f"q{self.index:05d}"


def judge(cfg: Config, suite: str, add: Callable[[random.Random, Intent, Judged], None]) -> Judged:
    """The judged part: one intent per query (query i in language i mod the number of languages);
    `add(rng, intent, judged)` puts the query, its relevant items, qrels and hard negatives in."""
    rng = judged_rng(cfg.seed, suite)
    mains, sibs, taken = judged_entities(rng, cfg.n_queries, len(cfg.languages))
    out = Judged({}, {}, {}, taken)
    for i, (entity, sibling) in enumerate(zip(mains, sibs)):
        add(rng, Intent(i, entity, sibling, cfg.languages[i % len(cfg.languages)]), out)
    return out


def iter_corpus(judged: Judged, block: Callable[[int], list[Item]], size: int, suite: str) -> Iterator[list[Item]]:
    """The corpus of `size` items in chunks: the judged items first, then distractor blocks (streamable)."""
    n_judged = len(judged.corpus)
    if size < n_judged:
        raise EmbedbenchError(f"synthetic-{suite}: corpus_size {size} is smaller than its judged part "
                              f"({n_judged} items); use at least {n_judged} or fewer n_queries")
    yield list(judged.corpus.items())
    remaining, b = size - n_judged, 0
    while remaining > 0:
        items = block(b)[:remaining]
        remaining -= len(items)
        b += 1
        yield items
