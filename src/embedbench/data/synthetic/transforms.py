"""How real users' queries for one intent differ: paraphrase templates and surface transformations.

`query_variant` renders one query for (entity, attribute) in a language: a question- or keyword-style
template, then a random subset of: abbreviation / synonym swaps, dropped stop words, the entity moved
to the other end (keywords), lowercasing, a dropped question mark, one typo. Typos and dropped words
never touch the entity's name, so a variant can never turn into a query about a confusable sibling.
"""

from __future__ import annotations

import random
import re

from embedbench.data.synthetic.templates import Language, fill, name_text
from embedbench.data.synthetic.world import Entity

_PUNCT = re.compile(r"[?¿!.,;:、。？！「」()–—]+")
_SPACES = re.compile(r"\s+")
_KEYBOARD = {c: n for c, n in zip("qwertyuiopasdfghjklzxcvbnm",
                                   ("wa", "qes", "wrd", "etf", "ryg", "tuh", "yij", "uok", "ipl", "ol",
                                    "qsz", "awdx", "sefc", "drgv", "fthb", "gyjn", "hukm", "jil", "kop",
                                    "asx", "zsdc", "xdfv", "cfgb", "vghn", "bhjm", "njk"))}


def normalize(text: str) -> str:
    """The key under which two cluster members count as the same text (case and punctuation ignored)."""
    return _SPACES.sub(" ", _PUNCT.sub(" ", text.casefold())).strip()


def _outside(text: str, name: str, func) -> str:
    """Apply `func` to the parts of `text` that are not the entity's name."""
    i = text.lower().find(name.lower()) if name else -1
    if i < 0:
        return func(text)
    return func(text[:i]) + text[i:i + len(name)] + func(text[i + len(name):])


def _swap(rng: random.Random, text: str, lang: Language) -> str:
    options = [(p, alts) for p, alts in lang.swaps.items() if p.lower() in text.lower()]
    if not options:
        return text
    phrase, alts = rng.choice(options)
    flags = re.IGNORECASE
    pattern = re.escape(phrase) if not lang.cased else rf"(?<!\w){re.escape(phrase)}(?!\w)"
    return re.sub(pattern, lambda _: rng.choice(alts), text, count=1, flags=flags)


def _drop_stopwords(rng: random.Random, text: str, lang: Language) -> str:
    words = text.split(" ")
    kept = [w for w in words if not (_PUNCT.sub("", w).lower() in lang.stopwords and rng.random() < 0.8)]
    return " ".join(kept)


def _typo(rng: random.Random, text: str) -> str:
    words = text.split(" ")
    spots = [i for i, w in enumerate(words) if len(w) >= 4 and w.isalpha()]
    if not spots:
        return text
    i = rng.choice(spots)
    w = words[i]
    j = rng.randrange(len(w) - 1)
    op = rng.randrange(4)
    if op == 0:
        w = w[:j] + w[j + 1] + w[j] + w[j + 2:]
    elif op == 1:
        w = w[:j] + w[j + 1:]
    elif op == 2:
        w = w[:j] + w[j] + w[j:]
    else:
        near = _KEYBOARD.get(w[j].lower())
        w = w[:j] + (rng.choice(near) if near else "") + w[j + 1:]
    words[i] = w
    return " ".join(words)


def _reorder(text: str, name: str, sep: str = " ") -> str:
    """Keyword queries: '{e} price' -> 'price {e}'."""
    if text.startswith(name) and len(text) > len(name):
        return text[len(name):].strip() + sep + name
    return text


def query_variant(rng: random.Random, entity: Entity, attribute: str, lang: Language, noise: float = 1.0) -> str:
    """One way a user might ask for `attribute` of `entity` in `lang`; `noise` scales the transformation odds."""
    keyword = rng.random() < 0.45
    text = fill(rng.choice((lang.keywords if keyword else lang.questions)[attribute]), entity, lang)
    name = name_text(entity.kind, entity.name, lang)
    if rng.random() < 0.3 * noise:
        text = _outside(text, name, lambda s: _swap(rng, s, lang))
    if not keyword and lang.stopwords and rng.random() < 0.3 * noise:
        text = _outside(text, name, lambda s: _drop_stopwords(rng, s, lang))
        text = _PUNCT.sub("", text).strip() if rng.random() < 0.7 else text
    if keyword and rng.random() < 0.3 * noise:
        text = _reorder(text, name)
    if lang.cased and rng.random() < 0.5 * noise:
        text = text.lower()
    if rng.random() < 0.4 * noise:
        text = text.rstrip("?？ ").lstrip("¿")
    if lang.cased and rng.random() < 0.15 * noise:
        text = _outside(text, name, lambda s: _typo(rng, s))
    text = _SPACES.sub(" ", text).strip()
    return text or fill(lang.questions[attribute][0], entity, lang)
