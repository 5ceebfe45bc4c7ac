"""Multi-vector (late-interaction) models: token matrices through the cache once, then exact MaxSim per precision.

The task's queries and corpus are encoded through the embedding cache as token matrices
(`EmbeddingCache.get_or_encode_tokens`), a piece of the corpus at a time; every precision and dim is
derived from those float32 matrices (`scoring.maxsim.encode_tokens`) and searched by exact MaxSim in
one pass over the pieces, each piece read back from the cache once, so the memory held is the
queries, one piece, one score block and the top-k lists. Results record bytes per document (mean
tokens per document x bytes per token vector), so they sit beside dense rows on one storage axis.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from embedbench.engine.cache import EmbeddingCache
from embedbench.engine.context import RunContext
from embedbench.engine.queries import TaskQueries
from embedbench.engine.score import TOP_K, PerQuery, TaskJudgements, array_task_metrics, task_judgements
from embedbench.engine.write import EncodingStats, Measurement, build_provenance, build_result
from embedbench.errors import EmbedbenchError
from embedbench.results import Result
from embedbench.scoring.maxsim import TokenCodes, bytes_per_document, encode_tokens, maxsim_topk, token_span
from embedbench.scoring.precision import ColumnRange, PrecisionSpec
from embedbench.scoring.shards import merge_topk
from embedbench.scoring.token_matrices import TokenMatrices

DOCUMENT_ROLE = "document"
PIECE_DOCS = 16_384  # documents read (and encoded) at a time; a corpus up to this size stays in memory

Plan = tuple[int | None, PrecisionSpec]


def check_multi_vector_run(run: RunContext) -> None:
    """One line (exit 2) for what a multi-vector run cannot do, before anything is encoded or written."""
    two_stage = [s.name for s in run.specs if s.rescore is not None]
    if two_stage:
        raise EmbedbenchError(f"precision {', '.join(two_stage)}: two-stage specs re-rank binary candidates of a "
                              f"dense model; a multi-vector model is measured at fp32, fp16, int8, binary (per token), "
                              f"or re-ranks a dense model's candidates with --rerank-with")
    if run.context != "none":
        raise EmbedbenchError(f"--context {run.context} does not apply to a multi-vector model (its token "
                              f"matrices are per text); use --context none")
    if getattr(run.executor, "name", "local") != "local":
        raise EmbedbenchError("multi-vector models run with --engine local")
    indexes = [i for i in getattr(run, "indexes", ("exact",)) if i != "exact"]
    if indexes:
        raise EmbedbenchError(f"--index {', '.join(indexes)}: multi-vector models are searched by exact MaxSim only")
    if getattr(run, "rerank_with", None) is not None:
        raise EmbedbenchError("--rerank-with re-ranks a dense model's candidates; the --model here is already a "
                              "multi-vector model")


@dataclass(frozen=True)
class TokenStore:
    """A task's document token matrices in search order: in memory, or in the cache by text key (pieces)."""

    n: int
    piece: int
    tokens: TokenMatrices | None = None
    cache_root: Path | None = None
    settings: dict | None = None
    keys: np.ndarray | None = None

    def ranges(self) -> list[tuple[int, int]]:
        return [(a, min(self.n, a + self.piece)) for a in range(0, self.n, self.piece)]

    def read(self, start: int, stop: int, cache: EmbeddingCache | None = None) -> TokenMatrices:
        if self.tokens is not None:
            return self.tokens.rows(start, stop)
        cache = cache or EmbeddingCache(self.cache_root)
        return cache.token_matrices(self.settings, DOCUMENT_ROLE, self.keys[start:stop])

    def take(self, which: np.ndarray, cache: EmbeddingCache | None = None) -> TokenMatrices:
        """The documents at positions ``which`` (a re-ranking's candidates), in that order."""
        if self.tokens is not None:
            return self.tokens.take(which)
        cache = cache or EmbeddingCache(self.cache_root)
        return cache.token_matrices(self.settings, DOCUMENT_ROLE, self.keys[np.asarray(which, dtype=np.int64)])


@dataclass(frozen=True)
class TaskTokens:
    queries: TokenMatrices  # in TaskQueries.qids order
    docs: TokenStore  # in TaskQueries.doc_ids order
    stats: EncodingStats
    span: ColumnRange | None  # every corpus token's per-dimension min / max (post-hoc int8 calibration)


def encode_task_tokens(encoder: object, cache: EmbeddingCache, q: TaskQueries, piece: int | None = None) -> TaskTokens:
    """Documents (piece by piece, default PIECE_DOCS) and queries through the cache; the span of the corpus
    tokens on the way."""
    piece = piece or PIECE_DOCS
    key = encoder.meta.encode_settings()
    label, n = q.task.spec.name, len(q.doc_ids)
    hits0, encoded0 = cache.stats["hits"], cache.stats["encoded"]
    t0 = time.perf_counter()
    span, keys, kept = None, [], None
    for start in range(0, n, piece):
        texts = q.doc_ids.texts(start, min(n, start + piece))
        tokens = cache.get_or_encode_tokens(key, DOCUMENT_ROLE, texts, encoder.encode_documents_multi,
                                            progress=f"{label}: documents [{start:,}/{n:,}]")
        part = token_span(tokens)
        span = part if span is None else span if part is None else span.merge(part)
        if n <= piece:
            kept = tokens
        else:
            keys.append(cache.text_keys(texts))
    queries = cache.get_or_encode_tokens(key, "query", q.query_texts, encoder.encode_queries_multi,
                                         progress=f"{label}: queries")
    stats = EncodingStats(time.perf_counter() - t0, cache.stats["encoded"] - encoded0, cache.stats["hits"] - hits0)
    if kept is not None:
        store = TokenStore(n, piece, tokens=kept)
    else:
        store = TokenStore(n, piece, cache_root=cache.root.absolute(), settings=key, keys=np.concatenate(keys))
    return TaskTokens(queries, store, stats, span)


@dataclass
class PlanSearch:
    """One plan's query codes, running top-k, stored tokens and seconds, over the corpus's pieces."""

    plan: Plan
    queries: TokenCodes
    quantization: str
    k: int = TOP_K
    run: tuple[np.ndarray, np.ndarray] | None = None
    tokens: int = 0
    bytes_per_token: int = 0
    seconds: float = 0.0
    docs: int = 0

    def add(self, start: int, piece: TokenMatrices, tokens: TaskTokens, native: dict, similarity: str) -> None:
        t0 = time.perf_counter()
        codes, _ = encode_tokens(self.plan[1], piece, self.plan[0], native, tokens.span)
        scores, idx = maxsim_topk(self.queries, codes, self.k, similarity)
        part = (scores, idx + start)
        self.run = part if self.run is None else merge_topk([self.run, part], self.k)
        self.tokens += int(codes.offsets[-1])
        self.docs += len(codes)
        self.bytes_per_token = codes.bytes_per_token
        self.seconds += time.perf_counter() - t0

    def bytes_per_document(self) -> int:
        return bytes_per_document(self.tokens, self.docs, self.bytes_per_token)


def search_plans(meta: object, plans: list[Plan], tokens: TaskTokens, k: int = TOP_K) -> list[PlanSearch]:
    """Every plan (dim x precision) searched in one pass over the corpus's pieces (each read from the cache once),
    with the model's (``meta``) native quantizers and similarity."""
    native = dict(meta.native_quantizers or {})
    similarity = meta.pooling or "maxsim"
    searches = []
    for dim, spec in plans:
        t0 = time.perf_counter()
        codes, quantization = encode_tokens(spec, tokens.queries, dim, native, tokens.span)
        searches.append(PlanSearch((dim, spec), codes, quantization, k=k, seconds=time.perf_counter() - t0))
    cache = EmbeddingCache(tokens.docs.cache_root) if tokens.docs.cache_root is not None else None
    for start, stop in tokens.docs.ranges():
        piece = tokens.docs.read(start, stop, cache)
        for search in searches:
            search.add(start, piece, tokens, native, similarity)
    return searches


def measure(run: RunContext, q: TaskQueries, tokens: TaskTokens, search: PlanSearch,
            judged: TaskJudgements) -> Measurement:
    """Score one plan's ranking."""
    _dim, spec = search.plan
    scores, idx = search.run
    per_query = array_task_metrics(run, q, judged, scores, idx)
    return Measurement(spec.name, search.quantization, search.queries.dim, search.bytes_per_document(),
                       dict(q.variant), per_query, len(q.qids), len(q.doc_ids), search.seconds, tokens.stats)


def score_multi_vector(run: RunContext, q: TaskQueries) -> Iterator[tuple[Result, PerQuery]]:
    """One (Result, per-query scores) per dim x precision, all from one encoding of the task's token matrices."""
    check_multi_vector_run(run)
    tokens = encode_task_tokens(run.encoder, run.cache, q)
    provenance = build_provenance(run, q.task, tokens.stats)
    judged = task_judgements(q)
    plans = [(dim, spec) for dim in run.dims for spec in run.specs]
    for search in search_plans(run.encoder.meta, plans, tokens):
        m = measure(run, q, tokens, search, judged)
        yield build_result(run, q.task, m, provenance), m.per_query
