"""A task's corpus through the embedding cache, a shard at a time: encode what is missing, then read back.

The corpus is walked in its search order in shards of ``shard_size`` documents: each shard's texts
are generated or looked up (:class:`~embedbench.data.corpus.CorpusOrder`), the ones the cache lacks
are encoded (by the run's executor: in this process, or by Ray actors), and only the shard's text
keys are kept (16 bytes a document). Searches then read the vectors back from the cache a shard at a
time (:class:`DocumentStore`), so the memory held is the queries, one shard and the top-k lists.
A corpus of one shard, or one whose vectors come from late chunking, stays in memory as an array.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from embedbench.data.corpus import CorpusOrder
from embedbench.engine.cache import EmbeddingCache
from embedbench.engine.context import RunContext
from embedbench.engine.encoding import CachedEncoding
from embedbench.engine.queries import TaskQueries
from embedbench.engine.write import EncodingStats

DOCUMENT_ROLE = "document"


@dataclass(frozen=True)
class DocumentStore:
    """Where a task's document vectors are, in search order: an array, or the cache and each document's key.

    Picklable (a Ray task reads its shard itself): the cache is reopened from ``cache_root``.
    """

    n: int
    shard_size: int
    array: np.ndarray | None = None
    cache_root: Path | None = None
    settings: dict | None = None
    keys: np.ndarray | None = None  # EmbeddingCache.text_keys of the documents, in search order

    def ranges(self) -> list[tuple[int, int]]:
        """The shards as (start, stop) positions."""
        return [(a, min(self.n, a + self.shard_size)) for a in range(0, self.n, self.shard_size)]

    def read(self, start: int, stop: int, cache: EmbeddingCache | None = None) -> np.ndarray:
        """float32 vectors of positions ``start .. stop - 1``."""
        if self.array is not None:
            return self.array[start:stop]
        cache = cache or EmbeddingCache(self.cache_root)
        return cache.vectors(self.settings, DOCUMENT_ROLE, self.keys[start:stop])

    def shards(self, cache: EmbeddingCache | None = None) -> Iterator[tuple[int, np.ndarray]]:
        for start, stop in self.ranges():
            yield start, self.read(start, stop, cache)


@dataclass(frozen=True)
class TaskVectors:
    queries: np.ndarray  # float32, in TaskQueries.qids order
    docs: DocumentStore  # in TaskQueries.doc_ids order
    stats: EncodingStats


def encode_task(run: RunContext, q: TaskQueries) -> TaskVectors:
    """Documents (shard by shard) and queries through the cache; the cache's counters say what was encoded."""
    enc = CachedEncoding(run.encoder, run.cache)
    hits0, encoded0 = run.cache.stats["hits"], run.cache.stats["encoded"]
    t0 = time.perf_counter()
    docs, truncated_docs = document_store(run, enc, q)
    queries = enc.queries(q.query_texts, q.task.spec.name)
    seconds = time.perf_counter() - t0
    truncated = {}
    if truncated_docs is not None:
        truncated = {"document": truncated_docs / max(len(q.doc_ids), 1),
                     "query": enc.truncated(q.query_texts, "query") / max(len(q.query_texts), 1)}
    stats = EncodingStats(seconds, run.cache.stats["encoded"] - encoded0, run.cache.stats["hits"] - hits0, truncated)
    return TaskVectors(queries, docs, stats)


def document_store(run: RunContext, enc: CachedEncoding, q: TaskQueries) -> tuple[DocumentStore, int | None]:
    """The corpus vectors (and how many documents are past the model's max length, when it counts them)."""
    data, label, n = q.data, q.task.spec.name, len(q.doc_ids)
    if data.documents is not None and run.context != "none":
        vectors = late_chunked(enc, q, label)
        return DocumentStore(n, run.shard_size, array=vectors), enc.truncated(q.doc_texts(), DOCUMENT_ROLE)
    if n <= run.shard_size:  # one shard: encode and keep it in memory
        texts = q.doc_texts()
        vectors = run.executor.encode(enc, texts, label)
        return DocumentStore(n, n, array=vectors), enc.truncated(texts, DOCUMENT_ROLE)
    keys, truncated = [], 0 if hasattr(run.encoder, "count_truncated") else None
    for start, texts in shard_texts(q.doc_ids, run.shard_size):
        run.executor.fill(enc, texts, f"{label} [{start:,}/{n:,}]")
        keys.append(run.cache.text_keys(texts))
        truncated = None if truncated is None else truncated + enc.truncated(texts, DOCUMENT_ROLE)
    return DocumentStore(n, run.shard_size, cache_root=run.cache.root.absolute(), settings=enc.key,
                         keys=np.concatenate(keys)), truncated


def shard_texts(order: CorpusOrder, shard_size: int) -> Iterator[tuple[int, list[str]]]:
    """(start, texts) of every shard in order; a generated corpus makes the next shard's texts in another
    process while this one's are encoded (generation and encoding then use a core each)."""
    starts = list(range(0, len(order), shard_size))
    if not getattr(order, "generated", False):
        for start in starts:
            yield start, order.texts(start, start + shard_size)
        return
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        pending = pool.submit(order.texts, starts[0], starts[0] + shard_size)
        for i, start in enumerate(starts):
            texts = pending.result()
            if i + 1 < len(starts):
                pending = pool.submit(order.texts, starts[i + 1], starts[i + 1] + shard_size)
            yield start, texts


def late_chunked(enc: CachedEncoding, q: TaskQueries, label: str) -> np.ndarray:
    """Chunk vectors in search order, each chunk encoded seeing its whole document."""
    data = q.data
    order = list(data.documents)
    vectors = enc.chunks_in_context([[data.corpus[c].full_text for c in data.documents[d]] for d in order], label)
    row = {cid: vec for d, block in zip(order, vectors) for cid, vec in zip(data.documents[d], block)}
    return np.stack([row[q.doc_ids[i]] for i in range(len(q.doc_ids))]).astype(np.float32, copy=False)
