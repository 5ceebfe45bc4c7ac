"""A synthetic corpus generated on demand: any size without holding its documents.

The corpus of size N is the judged items plus distractor blocks 0, 1, ... of BLOCK_SIZE items (the
last cut short); block b is a function of (seed, suite, b) alone, so any document and any range of
the search order can be generated when asked for. Distractor ids are ``x<block:05d>-...`` and sort
after every judged id, ascending within and across blocks, so the search order (ids descending) is:
the blocks from last to first, each reversed, then the judged items in descending id order.

The dataset hash covers the judged items and what generates the rest (suite, size, block size,
config and :data:`GENERATOR_VERSION`) rather than every generated text, so a 10^7 corpus is hashed
without generating it; ``tests/test_synthetic_corpus.py`` pins the texts of sample blocks so a
change to the generators cannot pass without a new GENERATOR_VERSION.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping

from embedbench.data.synthetic.common import BLOCK_SIZE, Config, Item, Judged
from embedbench.data.types import Document, RetrievalData
from embedbench.errors import EmbedbenchError

# Bump when a generator's output changes (texts, ids, block contents): it is part of the dataset hash.
GENERATOR_VERSION = 1
_BLOCKS_KEPT = 4  # generated blocks kept for repeated lookups


class SyntheticCorpus(Mapping[str, Document]):
    """The judged items and ``size - len(judged)`` distractors, generated block by block on demand."""

    def __init__(self, judged: dict[str, Document], block: Callable[[int], list[Item]], size: int,
                 generator: dict[str, object]) -> None:
        if size < len(judged):
            raise EmbedbenchError(f"{generator['suite']}: corpus_size {size} is smaller than its judged part "
                                  f"({len(judged)} items); use at least {len(judged)} or fewer n_queries")
        self.judged, self.size, self.generator = judged, size, generator
        self._make_block = block
        self.n_distractors = size - len(judged)
        self.n_blocks = -(-self.n_distractors // BLOCK_SIZE)
        self._rows: OrderedDict[int, tuple[list[Item], dict[str, Document]]] = OrderedDict()  # recent blocks
        self._last_judged = max(judged, default="")

    def __len__(self) -> int:
        return self.size

    def __iter__(self) -> Iterator[str]:
        """The judged ids, then every block's (generates every block: prefer :meth:`search_order`)."""
        yield from self.judged
        for b in range(self.n_blocks):
            yield from (doc_id for doc_id, _ in self.block(b))

    def __getitem__(self, doc_id: str) -> Document:
        if doc_id in self.judged:
            return self.judged[doc_id]
        b = self._block_of(doc_id)
        if b is None:
            raise KeyError(doc_id)
        self.block(b)
        return self._rows[b][1][doc_id]

    def __contains__(self, doc_id: object) -> bool:
        if not isinstance(doc_id, str):
            return False
        try:
            self[doc_id]
        except KeyError:
            return False
        return True

    def block_length(self, b: int) -> int:
        return min(BLOCK_SIZE, self.n_distractors - b * BLOCK_SIZE)

    def block(self, b: int) -> list[Item]:
        """Distractor block ``b`` as in this corpus (the last one cut short), ids ascending."""
        if b in self._rows:
            self._rows.move_to_end(b)
            return self._rows[b][0]
        items = self._make_block(b)[: self.block_length(b)]
        ids = [doc_id for doc_id, _ in items]
        if ids != sorted(ids) or (ids and ids[0] <= self._last_judged):
            raise EmbedbenchError(f"{self.generator['suite']}: block {b} breaks the id order the search relies on")
        self._rows[b] = (items, dict(items))
        if len(self._rows) > _BLOCKS_KEPT:
            self._rows.popitem(last=False)
        return items

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_rows": OrderedDict()}  # another process generates its own blocks

    def held_documents(self) -> dict[str, Document]:
        """The documents held in memory (the judged items); the distractors are generated."""
        return self.judged

    def search_order(self) -> SyntheticOrder:
        return SyntheticOrder(self)

    def content_digest(self, h: hashlib._Hash) -> None:
        """Feed the dataset hash: the judged items as :meth:`RetrievalData.content_hash` does, then the generator."""
        for did in sorted(self.judged):
            d = self.judged[did]
            h.update(json.dumps(["d", did, d.title, d.text], ensure_ascii=False).encode())
        h.update(json.dumps(["g", {**self.generator, "size": self.size, "block_size": BLOCK_SIZE,
                                   "version": GENERATOR_VERSION}], sort_keys=True).encode())

    def _block_of(self, doc_id: str) -> int | None:
        if not doc_id.startswith("x"):
            return None
        head = doc_id[1:].split("-", 1)[0]
        b = int(head) if head.isdigit() else -1
        return b if 0 <= b < self.n_blocks else None


class SyntheticOrder:
    """:class:`~embedbench.data.corpus.CorpusOrder` of a :class:`SyntheticCorpus`: blocks last to first,
    each reversed, then the judged ids descending. Its texts are generated (CPU-bound Python), so a
    caller walking many shards may generate the next one in another process (``generated``)."""

    generated = True

    def __init__(self, corpus: SyntheticCorpus) -> None:
        self.corpus = corpus
        self.judged_ids = sorted(corpus.judged, reverse=True)
        self._judged_pos = {d: corpus.n_distractors + i for i, d in enumerate(self.judged_ids)}

    def __len__(self) -> int:
        return self.corpus.size

    def __getitem__(self, position: int) -> str:
        if not 0 <= position < len(self):
            raise IndexError(position)
        if position >= self.corpus.n_distractors:
            return self.judged_ids[position - self.corpus.n_distractors]
        b, row = self._locate(position)
        return self.corpus.block(b)[row][0]

    def position(self, doc_id: str) -> int:
        if doc_id in self._judged_pos:
            return self._judged_pos[doc_id]
        b = self.corpus._block_of(doc_id)
        ids = [] if b is None else [item_id for item_id, _ in self.corpus.block(b)]
        if doc_id not in ids:
            return -1
        return self._start(b) + (len(ids) - 1 - ids.index(doc_id))  # the block is reversed

    def texts(self, start: int, stop: int) -> list[str]:
        out: list[str] = []
        pos, stop = max(0, start), min(stop, len(self))
        while pos < min(stop, self.corpus.n_distractors):
            b, row = self._locate(pos)
            items = self.corpus.block(b)
            take = min(row + 1, stop - pos)  # rows row, row-1, ... of block b
            out.extend(items[r][1].full_text for r in range(row, row - take, -1))
            pos += take
        for p in range(max(pos, self.corpus.n_distractors), stop):
            out.append(self.corpus.judged[self.judged_ids[p - self.corpus.n_distractors]].full_text)
        return out

    def _start(self, b: int) -> int:
        """The position of block ``b``'s last item (where the block starts in the search order)."""
        after = self.corpus.n_distractors - b * BLOCK_SIZE - self.corpus.block_length(b)  # items of later blocks
        return after

    def _locate(self, position: int) -> tuple[int, int]:
        """(block, row in the block) of a distractor position."""
        back = self.corpus.n_distractors - 1 - position  # its index in ascending order
        return back // BLOCK_SIZE, back % BLOCK_SIZE


def assemble(judged: Judged, block: Callable[[int], list[Item]], size: int, suite: str, cfg: Config) -> RetrievalData:
    """The task's data; its corpus generates the distractors on demand (:mod:`.corpus`)."""
    generator = {"suite": f"synthetic-{suite}", "seed": cfg.seed, "languages": list(cfg.languages),
                 "n_queries": cfg.n_queries}
    corpus = SyntheticCorpus(dict(judged.corpus), block, size, generator)
    source = (f"synthetic-{suite}(seed={cfg.seed}, languages={','.join(cfg.languages)}, "
              f"n_queries={cfg.n_queries}, corpus_size={size})")
    qrels = {q: dict(r) for q, r in judged.qrels.items()}
    data = RetrievalData(corpus=corpus, queries=dict(judged.queries), qrels=qrels, source=source,
                         extra={"corpus_size": size, "judged_items": len(judged.corpus), "block_size": BLOCK_SIZE})
    return data.validate()
