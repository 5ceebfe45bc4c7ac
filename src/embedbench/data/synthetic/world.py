"""The synthetic world: entities (people, companies, cities, products) with attribute facts.

Every entity has an invented name and one value per attribute of its kind. Values are years,
counts, prices or references to other (invented) names. Names of the judged entities are reserved:
any other entity or reference drawn with `taken` set avoids them, so no distractor ever states a
fact about a judged entity (which would make it an unjudged relevant item).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from embedbench.data.synthetic import names
from embedbench.data.synthetic.names import Name

KINDS = ("person", "company", "city", "product")
ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "person": ("birth_year", "birthplace", "employer"),
    "company": ("founded", "headquarters", "ceo", "employees"),
    "city": ("population", "country", "mayor"),
    "product": ("maker", "release_year", "price"),
}
# What kind of value each attribute holds.
VALUE_KIND = {
    "birth_year": "year", "birthplace": "city", "employer": "company", "founded": "year",
    "headquarters": "city", "ceo": "person", "employees": "count", "population": "count",
    "country": "country", "mayor": "person", "maker": "company", "release_year": "year", "price": "price",
}
_YEARS = {"birth_year": (1940, 2004), "founded": (1850, 2021), "release_year": (1995, 2025)}

Value = tuple[str, object]  # (value kind, payload): ("year", 1987), ("city", Name), ("company", "Kalo Labs")


@dataclass(frozen=True)
class Entity:
    kind: str
    name: Name | str  # Name for people and cities (transliterated); a Latin brand for companies and products
    gender: str  # "m" / "f" for people, "n" otherwise (templates may inflect on it)
    facts: dict[str, Value]

    @property
    def key(self) -> str:
        return entity_key(self.kind, self.name)


def entity_key(kind: str, name: Name | str) -> str:
    return f"{kind}:{name.lower() if isinstance(name, str) else names.key(name)}"


def fresh_name(rng: random.Random, kind: str, taken: frozenset[str] | set[str]) -> tuple[Name | str, str]:
    """A (name, gender) for `kind` whose key is not in `taken`."""
    while True:
        gender = "n"
        if kind == "person":
            name, gender = names.person_name(rng)
        elif kind == "city":
            name = names.place_name(rng)
        elif kind == "country":
            name = names.country_name(rng)
        elif kind == "company":
            name = names.company_name(rng)
        else:
            name = names.product_name(rng)
        if entity_key(kind, name) not in taken:
            return name, gender


def value_for(rng: random.Random, attribute: str, taken: frozenset[str] | set[str]) -> Value:
    kind = VALUE_KIND[attribute]
    if kind == "year":
        lo, hi = _YEARS[attribute]
        return ("year", rng.randint(lo, hi))
    if kind == "count":
        if attribute == "employees":
            return ("count", rng.choice((rng.randint(12, 990), rng.randint(1_000, 250_000))))
        return ("count", rng.randint(2_000, 3_500_000))
    if kind == "price":
        return ("price", rng.choice((rng.randint(2, 99) * 10 - 1, rng.randint(10, 300) * 10)))
    return (kind, fresh_name(rng, kind, taken)[0])


def _with_facts(rng: random.Random, kind: str, name: Name | str, gender: str,
                taken: frozenset[str] | set[str]) -> Entity:
    return Entity(kind, name, gender, {a: value_for(rng, a, taken) for a in ATTRIBUTES[kind]})


def new_entity(rng: random.Random, kind: str, taken: frozenset[str] | set[str]) -> Entity:
    """An entity whose name and every referenced name avoid `taken` keys."""
    name, gender = fresh_name(rng, kind, taken)
    return _with_facts(rng, kind, name, gender, taken)


def sibling(rng: random.Random, e: Entity, taken: set[str]) -> Entity:
    """A confusable entity of the same kind: same family name, company stem, brand or city prefix."""
    for _ in range(1000):
        gender = e.gender
        if e.kind == "person":
            (given, _), gender = names.person_name(rng)
            name: Name | str = (given, e.name[1])
        elif e.kind == "city":
            w = e.name[0]
            name = (w[:-1] + (names.syllable(rng),),)
        elif e.kind == "company":
            name = f"{e.name.rsplit(' ', 1)[0]} {rng.choice(names.COMPANY_SUFFIXES)}"
        else:
            name = f"{e.name.rsplit(' ', 1)[0]} {rng.choice(names.MODEL_LETTERS)}{rng.randrange(1, 100) * 10}"
        if entity_key(e.kind, name) not in taken:
            return _with_facts(rng, e.kind, name, gender, taken)
    return new_entity(rng, e.kind, taken)


def judged_entities(rng: random.Random, n: int,
                    stride: int = 1) -> tuple[list[Entity], list[Entity], frozenset[str]]:
    """n judged entities, one confusable sibling each, and the reserved keys.

    Entity i has kind KINDS[(i // stride) % 4]: with stride = the number of languages (the query
    language of entity i is languages[i % stride]) every (language, kind) pair is equally common.

    Every name is unique, and references inside their facts never point at a judged name.
    """
    taken: set[str] = set()
    mains: list[Entity] = []
    for i in range(n):
        kind = KINDS[(i // stride) % len(KINDS)]
        name, gender = fresh_name(rng, kind, taken)
        taken.add(entity_key(kind, name))
        mains.append(Entity(kind, name, gender, {}))
    sibs: list[Entity] = []
    for e in mains:
        s = sibling(rng, e, taken)
        taken.add(s.key)
        sibs.append(s)
    frozen = frozenset(taken)
    # Facts last, so every reference avoids every judged name.
    mains = [_with_facts(rng, e.kind, e.name, e.gender, frozen) for e in mains]
    sibs = [_with_facts(rng, s.kind, s.name, s.gender, frozen) for s in sibs]
    return mains, sibs, frozen


def block_rng(seed: int, suite: str, block: int) -> random.Random:
    """The generator of one distractor block: depends only on (seed, suite, block index)."""
    return random.Random(f"embedbench-synthetic:{seed}:{suite}:block:{block}")


def judged_rng(seed: int, suite: str) -> random.Random:
    return random.Random(f"embedbench-synthetic:{seed}:{suite}:judged")
