"""Typed retrieval data: a corpus, queries and graded qrels, validated on construction."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field

from embedbench.errors import EmbedbenchError


@dataclass(frozen=True)
class Document:
    text: str
    title: str = ""
    language: str | None = None

    @property
    def full_text(self) -> str:
        """The text that is encoded: title and body, as mteb joins them."""
        return f"{self.title} {self.text}".strip() if self.title else self.text


@dataclass(frozen=True)
class Query:
    text: str
    language: str | None = None


@dataclass
class RetrievalData:
    """One retrieval task's data.

    qrels map query id -> document id -> graded relevance (int; > 0 is relevant,
    as trec_eval reads it). Queries without any qrels entry are dropped by `validate`.
    """

    # A dict, or a corpus that generates its documents on demand (data/synthetic/corpus.py), which
    # holds only some (`held_documents()`) and hashes the rest by how it generates them (`content_digest`).
    corpus: Mapping[str, Document]
    queries: dict[str, Query]
    qrels: dict[str, dict[str, int]]
    source: str = ""
    extra: dict[str, object] = field(default_factory=dict)
    # Contextual (chunked) tasks: document id -> its chunk ids in order; the corpus holds the chunks.
    # A contextual model encodes each document's chunks together (encode_nested); others chunk by chunk.
    documents: dict[str, list[str]] | None = None
    # RAG tasks: query id -> gold answer strings (answer-recall@k needs no generator; match/EM/F1 do).
    answers: dict[str, list[str]] | None = None
    # A task instruction for instruction-following models (the "with instruction" variant).
    instruction: str | None = None

    def validate(self) -> "RetrievalData":
        """Check cross references and texts; raise EmbedbenchError naming the id."""
        held = getattr(self.corpus, "held_documents", None)
        for did, doc in (held() if held else self.corpus).items():
            if not isinstance(doc.text, str) or not doc.full_text.strip():
                raise EmbedbenchError(f"{self.source}: document {did!r} has an empty or non-string text")
        for qid, q in self.queries.items():
            if not isinstance(q.text, str) or not q.text.strip():
                raise EmbedbenchError(f"{self.source}: query {qid!r} has an empty or non-string text")
        for qid, rels in self.qrels.items():
            if qid not in self.queries:
                raise EmbedbenchError(f"{self.source}: qrels name unknown query {qid!r}")
            for did, rel in rels.items():
                if did not in self.corpus:
                    raise EmbedbenchError(f"{self.source}: qrels for query {qid!r} name unknown document {did!r}")
                if not isinstance(rel, int) or isinstance(rel, bool):
                    raise EmbedbenchError(f"{self.source}: qrels score for ({qid!r}, {did!r}) is not an integer")
        if not self.corpus:
            raise EmbedbenchError(f"{self.source}: the corpus is empty")
        if self.documents is not None:
            seen: set[str] = set()
            for doc_id, chunk_ids in self.documents.items():
                for cid in chunk_ids:
                    if cid not in self.corpus:
                        raise EmbedbenchError(f"{self.source}: document {doc_id!r} names unknown chunk {cid!r}")
                    if cid in seen:
                        raise EmbedbenchError(f"{self.source}: chunk {cid!r} belongs to two documents")
                    seen.add(cid)
            if seen != set(self.corpus):
                missing = sorted(set(self.corpus) - seen)[:3]
                raise EmbedbenchError(f"{self.source}: chunks {missing} belong to no document")
        judged = {qid for qid, rels in self.qrels.items() if any(r > 0 for r in rels.values())}
        if not judged:
            raise EmbedbenchError(f"{self.source}: no query has a relevant document")
        return self

    def content_hash(self) -> str:
        """sha256 over corpus, queries and qrels in a canonical order (the dataset hash)."""
        h = hashlib.sha256()
        digest = getattr(self.corpus, "content_digest", None)
        if digest is not None:
            digest(h)
        for did in sorted(self.corpus) if digest is None else ():
            d = self.corpus[did]
            h.update(json.dumps(["d", did, d.title, d.text], ensure_ascii=False).encode())
        for qid in sorted(self.queries):
            h.update(json.dumps(["q", qid, self.queries[qid].text], ensure_ascii=False).encode())
        for qid in sorted(self.qrels):
            h.update(json.dumps(["r", qid, sorted(self.qrels[qid].items())]).encode())
        for doc_id in sorted(self.documents or {}):
            h.update(json.dumps(["c", doc_id, self.documents[doc_id]]).encode())
        for qid in sorted(self.answers or {}):
            h.update(json.dumps(["a", qid, self.answers[qid]], ensure_ascii=False).encode())
        if self.instruction:
            h.update(json.dumps(["i", self.instruction], ensure_ascii=False).encode())
        per_query = self.extra.get("instructions") or {}
        for qid in sorted(per_query):
            h.update(json.dumps(["qi", qid, per_query[qid]], ensure_ascii=False).encode())
        return h.hexdigest()[:16]
