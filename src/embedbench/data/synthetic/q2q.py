"""Synthetic Query2Query: find the queries that ask the same thing (a PPLXQuery2Query stand-in).

A cluster is every way users ask one intent (entity, attribute): 3-6 variants in the intent's main
language (question / keyword templates, swaps, dropped stop words, reordering, case, typos) plus 0-2
in other languages. Judged cluster i: one main-language member is query q{i}; the others are in the
corpus as j{i}-{m} and are its relevant items. The query's own text is never in the corpus (members
are distinct after case and punctuation folding). Hard negatives, also in the judged part: the same
attribute of a confusable sibling entity (h{i}-s{m}, same templates) and another attribute of the same
entity (h{i}-a{m}). Distractors x{block}-{c}-{m}: whole clusters of other entities.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from functools import lru_cache, partial

from embedbench.data.types import Document, Query, RetrievalData
from embedbench.errors import EmbedbenchError
from embedbench.data.synthetic.corpus import assemble
from embedbench.data.synthetic.common import BLOCK_SIZE, Config, Intent, Item, Judged, iter_corpus, judge
from embedbench.data.synthetic.templates import language
from embedbench.data.synthetic.transforms import normalize, query_variant
from embedbench.data.synthetic.world import ATTRIBUTES, KINDS, Entity, block_rng, fresh_name

SUITE = "q2q"


def cluster(rng: random.Random, entity: Entity, attribute: str, primary: str, cfg: Config,
            seen: set[str] | None = None) -> list[tuple[str, str]]:
    """(language, text) members, main-language ones first, distinct under `normalize` from each other
    and from every key in `seen` (which is updated)."""
    others = [code for code in cfg.languages if code != primary]
    n_other = min(len(others), rng.choice((0, 1, 1, 2)))
    plan = [(primary, rng.randint(3, 6))] + [(code, 1) for code in rng.sample(others, n_other)]
    members: list[tuple[str, str]] = []
    seen = set() if seen is None else seen
    for code, count in plan:
        lang, got = language(code), 0
        for _ in range(30):
            if got == count:
                break
            text = query_variant(rng, entity, attribute, lang)
            key = normalize(text)
            if key not in seen:
                seen.add(key)
                members.append((code, text))
                got += 1
    return members


@lru_cache(maxsize=8)
def judged(cfg: Config) -> Judged:
    seen: set[str] = set()  # no text appears twice in the judged part (e.g. in two clusters of one entity)
    return judge(cfg, SUITE, lambda rng, intent, out: _add_cluster(rng, intent, cfg, seen, out))


def _add_cluster(rng: random.Random, intent: Intent, cfg: Config, seen: set[str], out: Judged) -> None:
    """Query q{i} (one member of its cluster), the other members (relevant) and two hard-negative clusters."""
    i, e, s, primary = intent.index, intent.entity, intent.sibling, intent.language
    attrs = ATTRIBUTES[e.kind]
    attribute = rng.choice(attrs)
    members = cluster(rng, e, attribute, primary, cfg, seen)
    n_main = sum(1 for code, _ in members if code == primary)
    if len(members) < 2 or n_main < 1:
        raise EmbedbenchError(f"synthetic-q2q: cluster {i} has fewer than two distinct members")
    pick = rng.randrange(n_main)
    qid = intent.qid
    out.queries[qid] = Query(members[pick][1], primary)
    rest = members[:pick] + members[pick + 1:]
    out.qrels[qid] = {}
    for m, (code, text) in enumerate(rest):
        out.corpus[f"j{i:05d}-{m}"] = Document(text, language=code)
        out.qrels[qid][f"j{i:05d}-{m}"] = 1
    other = rng.choice([a for a in attrs if a != attribute])
    for tag, ent, attr in (("s", s, attribute), ("a", e, other)):
        for m, (code, text) in enumerate(cluster(rng, ent, attr, primary, cfg, seen)):
            out.corpus[f"h{i:05d}-{tag}{m}"] = Document(text, language=code)


def distractor_block(cfg: Config, b: int) -> list[Item]:
    """Block b of distractor clusters (exactly BLOCK_SIZE items), from (seed, b) alone."""
    rng = block_rng(cfg.seed, SUITE, b)
    taken = judged(cfg).taken
    out: list[Item] = []
    c = 0
    while len(out) < BLOCK_SIZE:
        kind = rng.choice(KINDS)
        name, gender = fresh_name(rng, kind, taken)
        entity = Entity(kind, name, gender, {})
        members = cluster(rng, entity, rng.choice(ATTRIBUTES[kind]), rng.choice(cfg.languages), cfg)
        out.extend((f"x{b:05d}-{c:03d}-{m}", Document(text, language=code)) for m, (code, text) in enumerate(members))
        c += 1
    return out[:BLOCK_SIZE]


def iter_q2q_corpus(cfg: Config, size: int) -> Iterator[list[Item]]:
    """The corpus of `size` items in chunks (judged part, then distractor blocks), for streaming callers."""
    return iter_corpus(judged(cfg), lambda b: distractor_block(cfg, b), size, SUITE)


def build_q2q(cfg: Config, size: int) -> RetrievalData:
    return assemble(judged(cfg), partial(distractor_block, cfg), size, SUITE, cfg)  # picklable: shards are generated in other processes
