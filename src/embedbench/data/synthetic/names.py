"""Invented proper names built from consonant-vowel syllables, written in Latin, Cyrillic or Katakana.

A name is a tuple of words, each word a tuple of syllables ("ka", "len", "do"), so the same name can
be transliterated the way a Russian or Japanese writer would (Календо, カレンド). Brand-like names
(companies, products) keep their Latin spelling in every language, as brands usually do.
"""

from __future__ import annotations

import random

CONSONANTS = "kstnmrlvdbpg"
VOWELS = "aeiou"
_CYR = dict(zip("kstnmrlvdbpgaeioun", "кстнмрлвдбпгаеиоун"))
_KANA_ROWS = {
    "k": "カキクケコ", "s": "サシスセソ", "n": "ナニヌネノ", "m": "マミムメモ", "r": "ラリルレロ",
    "l": "ラリルレロ", "b": "バビブベボ", "p": "パピプペポ", "g": "ガギグゲゴ",
}
_KANA = {c + v: row[i] for c, row in _KANA_ROWS.items() for i, v in enumerate(VOWELS)}
_KANA.update({"ta": "タ", "ti": "ティ", "tu": "トゥ", "te": "テ", "to": "ト",
              "va": "ヴァ", "vi": "ヴィ", "vu": "ヴ", "ve": "ヴェ", "vo": "ヴォ",
              "da": "ダ", "di": "ディ", "du": "ドゥ", "de": "デ", "do": "ド"})
# Endings that are not consonant-vowel syllables, with their Cyrillic and Katakana forms.
_SPECIAL = {"ria": ("рия", "リア"), "nia": ("ния", "ニア"), "land": ("ланд", "ランド")}
COUNTRY_ENDINGS = ("ria", "nia", "land")
COMPANY_SUFFIXES = ("Labs", "Systems", "Group", "Motors", "Foods", "Energy", "Bank", "Media",
                    "Logistics", "Pharma", "Software", "Textiles", "Airlines", "Robotics")
MODEL_LETTERS = "XSMQZRT"

Word = tuple[str, ...]
Name = tuple[Word, ...]


def syllable(rng: random.Random, vowels: str = VOWELS) -> str:
    s = rng.choice(CONSONANTS) + rng.choice(vowels)
    return s + "n" if rng.random() < 0.12 else s


def word(rng: random.Random, n: int, last_vowels: str = VOWELS) -> Word:
    return tuple(syllable(rng) for _ in range(n - 1)) + (syllable(rng, last_vowels),)


def latin(w: Word) -> str:
    return "".join(w).capitalize()


def _syl_cyr(s: str) -> str:
    if s in _SPECIAL:
        return _SPECIAL[s][0]
    return "".join(_CYR[ch] for ch in s)


def _syl_kana(s: str) -> str:
    if s in _SPECIAL:
        return _SPECIAL[s][1]
    return _KANA[s[:2]] + ("ン" if s.endswith("n") and len(s) == 3 else "")


def cyrillic(w: Word) -> str:
    text = "".join(_syl_cyr(s) for s in w)
    return text[:1].upper() + text[1:]


def katakana(w: Word) -> str:
    return "".join(_syl_kana(s) for s in w)


def render(name: Name, script: str) -> str:
    """A person, city or country name in one script ("latin", "cyrillic", "kana")."""
    if script == "cyrillic":
        return " ".join(cyrillic(w) for w in name)
    if script == "kana":
        return "・".join(katakana(w) for w in name)
    return " ".join(latin(w) for w in name)


def key(name: Name) -> str:
    """A spelling-insensitive identity: l and r collide in Katakana, so they are one letter here."""
    return " ".join("".join(w) for w in name).replace("l", "r")


def person_name(rng: random.Random) -> tuple[Name, str]:
    """(given, family) and a grammatical gender; female given names end in -a or -i."""
    gender = rng.choice("mf")
    given = word(rng, 2, "ai" if gender == "f" else "oue")
    return (given, word(rng, rng.choice((2, 3)))), gender


def place_name(rng: random.Random) -> Name:
    return (word(rng, rng.choice((2, 3, 3))),)


def country_name(rng: random.Random) -> Name:
    return (word(rng, 2) + (rng.choice(COUNTRY_ENDINGS),),)


def company_name(rng: random.Random) -> str:
    return f"{latin(word(rng, rng.choice((2, 3))))} {rng.choice(COMPANY_SUFFIXES)}"


def product_name(rng: random.Random) -> str:
    return f"{latin(word(rng, 2))} {rng.choice(MODEL_LETTERS)}{rng.randrange(1, 100) * 10}"
