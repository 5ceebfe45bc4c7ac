"""BM25 as a SearchModel, via `bm25s`: the lexical baseline every dense model is compared with.

Tokenization is bm25s's (lowercase, ``\\b\\w\\w+\\b`` words), with optional stopword removal in any
language bm25s knows ("en", "de", "fr", ... or None) and the English Snowball stemmer when
PyStemmer is installed (``stemmer="auto"``, the default, stems only with English stopwords; it
is never required). `search` returns up to k documents per query, only those sharing at least
one term with it (score > 0): a query with no term in the corpus gets an empty dict.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from embedbench.encoders.protocol import EncoderMeta
from embedbench.errors import EmbedbenchError, ModelError

METHODS = ("robertson", "lucene", "atire", "bm25l", "bm25+")


def _english_stemmer():
    """PyStemmer's English Snowball stemmer, or None when PyStemmer is not installed."""
    try:
        import Stemmer
    except ImportError:
        return None
    return Stemmer.Stemmer("english")


def _check_options(k1: float, b: float, method: str, stemmer: str | None) -> None:
    if method not in METHODS:
        raise EmbedbenchError(f"bm25 method must be one of {', '.join(METHODS)}, got {method!r}")
    if k1 < 0 or not 0 <= b <= 1:
        raise EmbedbenchError(f"bm25 needs k1 >= 0 and 0 <= b <= 1, got k1={k1}, b={b}")
    if stemmer not in ("auto", "english", None):
        raise EmbedbenchError(f"bm25 stemmer must be 'auto', 'english' or None, got {stemmer!r}")


def _choose_stemmer(stemmer: str | None, stopwords: str | None):
    """'english': PyStemmer's English stemmer (required); 'auto': it when the stopwords are English and
    PyStemmer is installed; None: no stemming."""
    if not (stemmer == "english" or (stemmer == "auto" and stopwords in ("en", "english"))):
        return None
    chosen = _english_stemmer()
    if chosen is None and stemmer == "english":
        raise ModelError("bm25: stemmer 'english' needs PyStemmer (pip install PyStemmer)")
    return chosen


def _stemmer_name(stemmer: object) -> str:
    """The stemmer as the fingerprint names it (its library version changes the stems)."""
    if stemmer is None:
        return "none"
    import Stemmer

    return f"snowball-english-pystemmer-{getattr(Stemmer, '__version__', '?')}"


class BM25Model:
    """Okapi BM25 over a corpus given to `index`; `meta.fingerprint` names every setting that changes a score."""

    def __init__(
        self,
        *,
        k1: float = 1.5,
        b: float = 0.75,
        method: str = "lucene",
        stopwords: str | None = "en",
        stemmer: str | None = "auto",
        name: str = "bm25",
    ) -> None:
        import bm25s

        _check_options(k1, b, method, stemmer)
        self._bm25s = bm25s
        self._k1, self._b, self._method, self._stopwords = k1, b, method, stopwords or None
        self._stemmer = None
        try:
            self._tokenize(["probe"])
        except ValueError as exc:
            raise EmbedbenchError(f"bm25: stopwords {stopwords!r} are not known to bm25s") from exc
        self._stemmer = _choose_stemmer(stemmer, self._stopwords)
        version = getattr(bm25s, "__version__", "unknown")
        stem = _stemmer_name(self._stemmer)
        self.meta = EncoderMeta(
            name=name,
            revision=f"bm25s-{version}",
            fingerprint=f"bm25s-{version}:{method}:k1={k1}:b={b}:stopwords={self._stopwords}:stem={stem}",
            dim=None,
            source=f"bm25s {version}",
            license="mit",
            libraries=(),  # bm25s (its version is in the fingerprint) and numpy; no torch stack
        )
        self._retriever = None
        self._doc_ids: list[str] = []

    def _tokenize(self, texts: Sequence[str]) -> list[list[str]]:
        return self._bm25s.tokenize(
            list(texts), stopwords=self._stopwords, stemmer=self._stemmer,
            return_ids=False, show_progress=False, allow_empty=False,
        )

    def index(self, doc_ids: Sequence[str], texts: Sequence[str]) -> None:
        """Build the index; replaces any earlier one."""
        if len(doc_ids) != len(texts):
            raise EmbedbenchError(f"bm25: {len(doc_ids)} document ids for {len(texts)} texts")
        if not doc_ids:
            raise EmbedbenchError("bm25: cannot index an empty corpus")
        retriever = self._bm25s.BM25(k1=self._k1, b=self._b, method=self._method)
        retriever.index(self._tokenize(texts), show_progress=False)
        self._retriever, self._doc_ids = retriever, list(doc_ids)

    def search(self, queries: Sequence[str], k: int) -> list[dict[str, float]]:
        """Per query, up to k doc id -> BM25 score (best first), only documents sharing a term."""
        if self._retriever is None:
            raise EmbedbenchError("bm25: search called before index")
        if k < 1:
            raise EmbedbenchError(f"bm25: k must be at least 1, got {k}")
        vocab = self._retriever.vocab_dict
        results: list[dict[str, float]] = []
        for tokens in self._tokenize(queries):
            known = [t for t in tokens if t and t in vocab]
            if not known:
                results.append({})
                continue
            scores = np.asarray(self._retriever.get_scores(known), dtype=np.float64)
            top = np.flatnonzero(scores > 0)
            if top.size > k:
                top = top[np.argpartition(-scores[top], k - 1)[:k]]
            top = top[np.argsort(-scores[top], kind="stable")]
            results.append({self._doc_ids[i]: float(scores[i]) for i in top})
        return results
