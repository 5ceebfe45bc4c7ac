"""Encoding through the embedding cache: queries, documents, and chunked documents with or without context.

Every vector is keyed by (model fingerprint + encode settings, role, text). For contextual encoding the
"text" of a chunk is its whole document plus its position, so a chunk's cached vector is reused only
when its document context is identical.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

import numpy as np

from embedbench.engine.cache import EmbeddingCache
from embedbench.encoders.protocol import EncoderMeta
from embedbench.errors import EmbedbenchError

CONTEXT_MODES = ("auto", "none", "late-chunking")


def resolve_context(mode: str, encoder: object) -> str:
    """The context mode a chunked task runs with: contextual models default to late chunking."""
    if mode not in CONTEXT_MODES:
        raise EmbedbenchError(f"--context must be one of {', '.join(CONTEXT_MODES)}, got {mode!r}")
    if mode == "auto":
        return "late-chunking" if encoder.meta.contextual else "none"
    return mode


def nested_encoder(encoder: object) -> object:
    """Something with encode_nested: the encoder itself, or late chunking around a mean-pooling ST model."""
    if hasattr(encoder, "encode_nested"):
        return encoder
    if hasattr(encoder, "model") and encoder.meta.pooling == "mean":
        from embedbench.encoders.late_chunking import LateChunkingWrapper

        return LateChunkingWrapper(encoder)
    raise EmbedbenchError(f"model {encoder.meta.name!r} cannot encode with context=late-chunking "
                          f"(it needs encode_nested or a mean-pooling sentence-transformers model)")


class CachedEncoding:
    def __init__(self, encoder: object, cache: EmbeddingCache) -> None:
        self.encoder = encoder
        self.cache = cache
        self.key = encoder.meta.encode_settings()
        self._flag_cache: EmbeddingCache | None = None

    def truncated(self, texts: Sequence[str], role: str) -> int | None:
        """How many of `texts` (with the role's prompt) the model truncates; None when it cannot count them.

        Each text's flag is kept in the embedding cache beside its vector (namespace "truncated-ROLE", one
        float per text), so a run whose texts are all cached tokenizes nothing. A separate cache object
        keeps these lookups out of the run's encoded/cached counters.
        """
        flags = getattr(self.encoder, "truncated_flags", None)
        if flags is None:
            count = getattr(self.encoder, "count_truncated", None)
            return None if count is None else count(texts, role)
        if self._flag_cache is None:
            self._flag_cache = EmbeddingCache(self.cache.root)
        cached = self._flag_cache.get_or_encode(
            self.key, f"truncated-{role}", texts, lambda batch: flags(batch, role).astype(np.float32)[:, None])
        return int(cached.sum())

    @property
    def meta(self) -> EncoderMeta:
        return self.encoder.meta

    def queries(self, texts: Sequence[str], label: str) -> np.ndarray:
        return self.cache.get_or_encode(self.key, "query", texts, self.encoder.encode_queries,
                                        progress=f"{label}: queries")

    def documents(self, texts: Sequence[str], label: str) -> np.ndarray:
        return self.cache.get_or_encode(self.key, "document", texts, self.encoder.encode_documents,
                                        progress=f"{label}: documents")

    def chunks_in_context(self, documents: Sequence[Sequence[str]], label: str) -> list[np.ndarray]:
        """One (n_chunks, d) array per document, each chunk encoded seeing its whole document."""
        nested = None  # built on the first chunk to encode: a warm run never loads a lazy model
        by_hash = {_doc_hash(doc): list(doc) for doc in documents}
        keys = [f"{_doc_hash(doc)}:{i}" for doc in documents for i in range(len(doc))]

        def encode(batch_keys: list[str]) -> np.ndarray:
            nonlocal nested
            nested = nested or nested_encoder(self.encoder)
            wanted = list(dict.fromkeys(k.rsplit(":", 1)[0] for k in batch_keys))
            vectors = dict(zip(wanted, nested.encode_nested([by_hash[h] for h in wanted])))
            return np.stack([vectors[h][int(i)] for h, i in (k.rsplit(":", 1) for k in batch_keys)])

        flat = self.cache.get_or_encode(self.key, "document-late-chunking", keys, encode,
                                        progress=f"{label}: chunks in context")
        out, start = [], 0
        for doc in documents:
            out.append(flat[start:start + len(doc)])
            start += len(doc)
        return out


def _doc_hash(chunks: Sequence[str]) -> str:
    return hashlib.sha256(json.dumps(list(chunks), ensure_ascii=False).encode()).hexdigest()[:32]
