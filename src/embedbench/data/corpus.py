"""A task's corpus in search order: what the engine reads a shard at a time, at any corpus size.

The search ranks documents by (score descending, position ascending), and positions follow the
document ids in descending string order, so among equal scores the document trec_eval ranks first
(the larger id) wins. A :class:`CorpusOrder` gives, for positions, the ids and the texts to encode,
and for an id its position, without holding the corpus as Python objects when the source can
generate it (the synthetic corpora, :mod:`embedbench.data.synthetic.corpus`); every other corpus is
a dict in memory and gets :class:`MemoryOrder`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Protocol

import numpy as np

from embedbench.data.types import Document


class CorpusOrder(Protocol):
    """The corpus in search order (document ids descending)."""

    def __len__(self) -> int: ...

    def __getitem__(self, position: int) -> str:
        """The document id at ``position``."""

    def position(self, doc_id: str) -> int:
        """The position of ``doc_id``; -1 when it is not in the corpus."""

    def texts(self, start: int, stop: int) -> list[str]:
        """The encoded texts (title and body) of positions ``start .. stop - 1``."""


class MemoryOrder:
    """The search order of a corpus held as a dict."""

    def __init__(self, corpus: Mapping[str, Document]) -> None:
        self.corpus = corpus
        self.ids = sorted(corpus, reverse=True)
        self._positions: dict[str, int] | None = None

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, position: int) -> str:
        return self.ids[position]

    def __iter__(self) -> Iterator[str]:
        return iter(self.ids)

    def position(self, doc_id: str) -> int:
        if self._positions is None:
            self._positions = {d: i for i, d in enumerate(self.ids)}
        return self._positions.get(doc_id, -1)

    def texts(self, start: int, stop: int) -> list[str]:
        return [self.corpus[d].full_text for d in self.ids[start:stop]]


def search_order(corpus: Mapping[str, Document]) -> CorpusOrder:
    """The corpus's own order when it generates its documents (``search_order()``), else :class:`MemoryOrder`."""
    own = getattr(corpus, "search_order", None)
    return own() if own is not None else MemoryOrder(corpus)


def tie_ranks(order: CorpusOrder) -> np.ndarray:
    """Each position's place in ascending id order, which the search order reverses (int64 (n,))."""
    return np.arange(len(order) - 1, -1, -1, dtype=np.int64)
