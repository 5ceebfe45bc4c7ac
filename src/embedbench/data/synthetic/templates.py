"""Per-language native templates: how each language asks for a fact, states it, and pads a page.

Each language lives in its own module (lang_en, lang_de, ...) written natively, not translated word
for word; this module holds the shared record type and the rendering helpers. Template syntax:
`{e}` the entity, `{v}` the value, `[[masculine|feminine]]` a form chosen by the entity's gender.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from embedbench.errors import EmbedbenchError
from embedbench.data.synthetic import names
from embedbench.data.synthetic.world import Entity, Value

LANGUAGES = ("en", "de", "fr", "es", "ru", "ja")
_GENDERED = re.compile(r"\[\[([^|\]]*)\|([^\]]*)\]\]")


@dataclass(frozen=True)
class Language:
    code: str
    script: str  # how people, cities and countries are written: latin | cyrillic | kana
    questions: dict[str, tuple[str, ...]]  # attribute -> question-style queries
    keywords: dict[str, tuple[str, ...]]  # attribute -> keyword-style queries
    facts: dict[str, tuple[str, ...]]  # attribute -> sentences stating the fact
    titles: dict[str, tuple[str, ...]]  # entity kind -> page titles
    filler: dict[str, tuple[str, ...]]  # entity kind (and "web") -> sentences stating no fact
    number: Callable[[int], str]
    price: Callable[[int], str]
    stopwords: frozenset[str] = frozenset()
    swaps: dict[str, tuple[str, ...]] = field(default_factory=dict)  # phrase -> abbreviations / synonyms
    sep: str = " "  # between sentences
    cased: bool = True  # lowercasing and typos make sense


_CACHE: dict[str, Language] = {}


def language(code: str) -> Language:
    if code not in LANGUAGES:
        raise EmbedbenchError(f"unknown synthetic language {code!r} (known: {', '.join(LANGUAGES)})")
    if code not in _CACHE:
        _CACHE[code] = importlib.import_module(f"embedbench.data.synthetic.lang_{code}").LANG
    return _CACHE[code]


def grouped(n: int, sep: str) -> str:
    """1234567 -> '1,234,567' with the given thousands separator."""
    return f"{n:,}".replace(",", sep)


def name_text(kind: str, name: object, lang: Language) -> str:
    if kind in ("company", "product"):
        return str(name)
    return names.render(name, lang.script)  # type: ignore[arg-type]


def value_text(value: Value, lang: Language) -> str:
    kind, payload = value
    if kind == "year":
        return str(payload)
    if kind == "count":
        return lang.number(int(payload))  # type: ignore[arg-type]
    if kind == "price":
        return lang.price(int(payload))  # type: ignore[arg-type]
    return name_text(kind, payload, lang)


def fill(template: str, entity: Entity, lang: Language, value: str = "") -> str:
    text = _GENDERED.sub(lambda m: m.group(2) if entity.gender == "f" else m.group(1), template)
    return text.replace("{e}", name_text(entity.kind, entity.name, lang)).replace("{v}", value)


def check_language(lang: Language) -> None:
    """Every attribute and kind has templates (used by the tests)."""
    from embedbench.data.synthetic.world import ATTRIBUTES

    for kind, attrs in ATTRIBUTES.items():
        if not lang.titles.get(kind) or not lang.filler.get(kind):
            raise EmbedbenchError(f"language {lang.code}: no titles or filler for {kind}")
        for a in attrs:
            for table in (lang.questions, lang.keywords, lang.facts):
                if not table.get(a):
                    raise EmbedbenchError(f"language {lang.code}: no template for {a}")
    if not lang.filler.get("web"):
        raise EmbedbenchError(f"language {lang.code}: no web filler")
