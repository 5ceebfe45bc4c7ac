"""Synthetic Query2Doc: find the pages that state one fact (a PPLXQuery2Doc stand-in).

A page is a title plus shuffled sentences about one entity: 1-3 fact sentences amid entity filler and
web boilerplate, in one language. Judged entity i has 3-5 pages (j{i}-{m}); 1-2 of them state the
queried attribute and are query q{i}'s relevant pages, the others state other attributes of the same
entity (hard negatives). Its confusable sibling has 2 pages (h{i}-{m}), the first stating the same
attribute in the same templates. Pages are mostly in the query's language, sometimes in another one
(cross-lingual relevance). Distractors x{block}-{m}: pages about other entities, same templates.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from functools import lru_cache, partial

from embedbench.data.types import Document, Query, RetrievalData
from embedbench.data.synthetic.corpus import assemble
from embedbench.data.synthetic.common import BLOCK_SIZE, Config, Intent, Item, Judged, iter_corpus, judge
from embedbench.data.synthetic.templates import fill, language, value_text
from embedbench.data.synthetic.transforms import query_variant
from embedbench.data.synthetic.world import ATTRIBUTES, KINDS, Entity, block_rng, new_entity

SUITE = "q2d"


def page(rng: random.Random, entity: Entity, attributes: list[str], code: str) -> Document:
    """One page stating exactly `attributes` of `entity`, in language `code`."""
    lang = language(code)
    facts = [fill(rng.choice(lang.facts[a]), entity, lang, value_text(entity.facts[a], lang)) for a in attributes]
    filler = [fill(t, entity, lang) for t in rng.sample(lang.filler[entity.kind], rng.randint(2, 4))]
    body = facts + filler
    rng.shuffle(body)
    if rng.random() < 0.6:
        body += [fill(t, entity, lang) for t in rng.sample(lang.filler["web"], rng.randint(1, 2))]
    title = fill(rng.choice(lang.titles[entity.kind]), entity, lang)
    return Document(lang.sep.join(body), title=title, language=code)


def _page_language(rng: random.Random, primary: str, cfg: Config) -> str:
    return primary if rng.random() < 0.65 else rng.choice(cfg.languages)


def _other_facts(rng: random.Random, attrs: list[str]) -> list[str]:
    return rng.sample(attrs, min(len(attrs), rng.randint(1, 2)))


@lru_cache(maxsize=8)
def judged(cfg: Config) -> Judged:
    return judge(cfg, SUITE, lambda rng, intent, out: _add_pages(rng, intent, cfg, out))


def _add_pages(rng: random.Random, intent: Intent, cfg: Config, out: Judged) -> None:
    """Query q{i}, its 3-5 pages (1-2 relevant) and its sibling's 2 pages (hard negatives)."""
    i, e, s, primary = intent.index, intent.entity, intent.sibling, intent.language
    attribute = rng.choice(ATTRIBUTES[e.kind])
    others = [a for a in ATTRIBUTES[e.kind] if a != attribute]
    qid = intent.qid
    out.queries[qid] = Query(query_variant(rng, e, attribute, language(primary), noise=0.6), primary)
    n_pages = rng.randint(3, 5)
    n_relevant = 2 if rng.random() < 0.3 else 1
    out.qrels[qid] = {}
    for m in range(n_pages):
        did = f"j{i:05d}-{m}"
        if m < n_relevant:
            stated = [attribute] + rng.sample(others, rng.randint(0, 1))
            out.qrels[qid][did] = 1
        else:
            stated = _other_facts(rng, others)
        rng.shuffle(stated)
        out.corpus[did] = page(rng, e, stated, _page_language(rng, primary, cfg))
    out.corpus[f"h{i:05d}-0"] = page(rng, s, [attribute], _page_language(rng, primary, cfg))
    sib_facts = _other_facts(rng, list(ATTRIBUTES[s.kind]))
    out.corpus[f"h{i:05d}-1"] = page(rng, s, sib_facts, _page_language(rng, primary, cfg))


def distractor_block(cfg: Config, b: int) -> list[Item]:
    """Block b of distractor pages (exactly BLOCK_SIZE), from (seed, b) alone: 1-3 pages per entity."""
    rng = block_rng(cfg.seed, SUITE, b)
    taken = judged(cfg).taken
    out: list[Item] = []
    while len(out) < BLOCK_SIZE:
        entity = new_entity(rng, rng.choice(KINDS), taken)
        primary = rng.choice(cfg.languages)
        for _ in range(rng.randint(1, 3)):
            stated = _other_facts(rng, list(ATTRIBUTES[entity.kind]))
            out.append((f"x{b:05d}-{len(out):03d}", page(rng, entity, stated, _page_language(rng, primary, cfg))))
    return out[:BLOCK_SIZE]


def iter_q2d_corpus(cfg: Config, size: int) -> Iterator[list[Item]]:
    """The corpus of `size` pages in chunks (judged part, then distractor blocks), for streaming callers."""
    return iter_corpus(judged(cfg), lambda b: distractor_block(cfg, b), size, SUITE)


def build_q2d(cfg: Config, size: int) -> RetrievalData:
    return assemble(judged(cfg), partial(distractor_block, cfg), size, SUITE, cfg)  # picklable: shards are generated in other processes
