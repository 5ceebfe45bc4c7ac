"""Exact late-interaction (MaxSim) search over token matrices, per precision, in bounded memory.

A multi-vector model gives each text a (tokens, d) matrix. A set of texts is held as one flat
(total tokens, d) array and offsets (:class:`TokenMatrices`), so the documents ``j0 .. j1`` are the
contiguous token rows ``offsets[j0] .. offsets[j1]``. MaxSim (ColBERT; Khattab & Zaharia, SIGIR 2020)::

    score(q, d) = sum_i max_j  q_i . d_j          (i over query tokens, j over document tokens)

as ``sentence_transformers.util.similarity.maxsim`` computes it (``MultiVectorEncoder.similarity``):
raw dot products (the model normalizes its tokens itself when it was trained to), a document with no
token scores ``EMPTY_DOCUMENT_SCORE`` (-1e9), and ``meanmaxsim`` divides by the query's token count.

:func:`maxsim_topk` computes it as GEMMs: a chunk of query tokens times a block of document tokens
(``score_bytes`` of float32 at most, or one document), the max over each document's column segment
(``np.maximum.reduceat``), the sum over each query's rows (in float64), and a running top-k merged
block by block, so the memory held is one score block and the top-k lists, whatever the corpus.
Rows are ordered by (score desc, index asc): the harness orders the corpus so that the lower index
is the document trec_eval ranks first among equal scores (as :mod:`embedbench.scoring.search` does).
As there, float scores are exact as computed: the same pair scored in another block (another BLAS
tile) may differ in the last bit, which can reorder only documents whose scores tie to that bit.
Binary scores are integers over d, exact whatever the blocks.

Precisions are per token, derived from the float32 matrices (:func:`encode_tokens`), with the dense
rules of :mod:`embedbench.scoring.precision` applied to every token vector:

    fp32     the token vectors as the model gives them                  4*d bytes/token
    fp16     stored as float16; the GEMM reads their float32 values      2*d bytes
    int8     native quantizer, else codes calibrated per dimension on the corpus's tokens
             (sentence-transformers' mapping, queries with the same); scored on the codes'
             bucket centres, so MaxSim still sums dot products         d bytes
    binary   bits (native, else x > 0), packed; a token pair scores 1 - 2h/d (h: Hamming
             distance, exact: a GEMM of the +-1 values gives d - 2h as exact integers)  ceil(d/8) bytes

Truncation (``dim``) keeps each token's first ``dim`` values, before quantization. Storage is
reported per document: mean tokens per document x bytes per token (:func:`bytes_per_document`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from embedbench.errors import EmbedbenchError, ModelError
from embedbench.scoring.precision import (
    ColumnRange,
    PrecisionSpec,
    bytes_per_vector,
    calibrate_int8,
    check_dims,
    to_int8_posthoc,
)
from embedbench.scoring.shards import merge_topk
from embedbench.scoring.token_matrices import TokenMatrices, token_rows

EMPTY_DOCUMENT_SCORE = -1e9  # sentence-transformers' score for a document without any token
SCORE_BLOCK_BYTES = 128 << 20  # float32 scores of one (query tokens x document tokens) block
QUERY_TOKENS = 4096  # query tokens per chunk
SIMILARITIES = ("maxsim", "meanmaxsim")


@dataclass(frozen=True)
class TokenCodes:
    """One precision's stored form of a set of texts' token matrices, and how the GEMM reads it back."""

    kind: str  # "fp32" | "fp16" | "int8" | "binary"
    codes: np.ndarray  # flat: float32, float16, int8 codes or packed bits (uint8, ceil(dim / 8) bytes a token)
    offsets: np.ndarray
    dim: int
    starts: np.ndarray | None = None  # post-hoc int8: the calibration, to read codes as bucket centres
    steps: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def bytes_per_token(self) -> int:
        return bytes_per_vector(self.kind, self.dim)

    def rows(self, start: int, stop: int) -> TokenCodes:
        a, b = int(self.offsets[start]), int(self.offsets[stop])
        return TokenCodes(self.kind, self.codes[a:b], self.offsets[start:stop + 1] - a, self.dim, self.starts,
                          self.steps)

    def take(self, which: np.ndarray) -> TokenCodes:
        """The texts at positions ``which``, copied (the documents a re-ranking reads)."""
        which = np.asarray(which, dtype=np.int64)
        starts, lengths = self.offsets[which], np.diff(self.offsets)[which]
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        return TokenCodes(self.kind, self.codes[token_rows(starts, lengths)], offsets, self.dim, self.starts,
                          self.steps)

    def floats(self, a: int = 0, b: int | None = None) -> np.ndarray:
        """Token rows ``a .. b - 1`` as the float32 values the GEMM multiplies (binary: +-1)."""
        block = self.codes[a:b]
        if self.kind == "fp32":
            return np.ascontiguousarray(block, dtype=np.float32)
        if self.kind == "fp16":
            return block.astype(np.float32)
        if self.kind == "int8":
            values = block.astype(np.float32)
            if self.starts is None:  # native int8 codes: their own scale
                return values
            return (values + np.float32(128.5)) * self.steps + self.starts
        bits = np.unpackbits(block, axis=1, count=self.dim).astype(np.float32)
        return bits * np.float32(2) - np.float32(1)


def bytes_per_document(tokens: int, docs: int, bytes_per_token: int) -> int:
    """Index storage of one document: mean tokens per document x bytes per token vector, rounded (at least 1)."""
    return max(1, int(round(tokens / max(docs, 1) * bytes_per_token)))


def token_span(docs: TokenMatrices) -> ColumnRange | None:
    """Per-dimension min / max over every token of ``docs`` (None without tokens): int8 calibration, mergeable."""
    return ColumnRange.of(docs.flat) if len(docs.flat) else None


def encode_tokens(spec: PrecisionSpec, tokens: TokenMatrices, dim: int | None,
                  native: dict[str, Callable[[np.ndarray], np.ndarray]] | None,
                  span: ColumnRange | None) -> tuple[TokenCodes, str]:
    """``tokens`` in ``spec``'s stored form at ``dim`` and the quantization used ("none" | "native" | "posthoc").

    ``span`` is the corpus tokens' full-width :class:`ColumnRange` (post-hoc int8 calibrates on it, for
    the queries as for the documents); two-stage specs are not token precisions.
    """
    if spec.rescore is not None:
        raise EmbedbenchError(f"precision {spec.name} is a two-stage spec; multi-vector models are re-ranked "
                              f"with --rerank-with instead")
    native = {} if spec.force_posthoc else dict(native or {})
    flat = tokens.flat
    if dim is not None:
        (dim,) = check_dims([dim], model_dim=tokens.dim)
        flat = flat[:, :dim]
    width = flat.shape[1]
    if spec.kind == "fp32":
        return TokenCodes("fp32", np.ascontiguousarray(flat, dtype=np.float32), tokens.offsets, width), "none"
    if spec.kind == "fp16":
        return TokenCodes("fp16", flat.astype(np.float16), tokens.offsets, width), "none"
    if spec.kind == "int8":
        if "int8" in native:
            return TokenCodes("int8", _native(native["int8"], flat, np.int8), tokens.offsets, width), "native"
        if span is None:
            raise EmbedbenchError("int8 calibration needs the corpus's token vectors; the corpus has no token")
        starts, steps = calibrate_int8(span.truncated(width))
        return TokenCodes("int8", to_int8_posthoc(flat, starts, steps), tokens.offsets, width, starts, steps), \
            "posthoc"
    if spec.kind == "binary":
        if "binary" in native:
            bits, quant = _native(native["binary"], flat, np.bool_), "native"
        else:
            bits, quant = flat > 0, "posthoc"
        return TokenCodes("binary", np.packbits(bits, axis=1), tokens.offsets, width), quant
    raise EmbedbenchError(f"unknown precision kind {spec.kind!r}")


def _native(fn: Callable[[np.ndarray], np.ndarray], flat: np.ndarray, dtype: type) -> np.ndarray:
    codes = np.asarray(fn(np.ascontiguousarray(flat, dtype=np.float32)))
    if codes.shape != flat.shape:
        raise ModelError(f"native quantizer returned shape {codes.shape} for token vectors {flat.shape}")
    if dtype is np.bool_ and codes.dtype != np.bool_:
        if not (np.issubdtype(codes.dtype, np.integer) and np.isin(codes, (0, 1)).all()):
            raise ModelError(f"native binary quantizer returned dtype {codes.dtype}, expected bool")
        codes = codes.astype(bool)
    if dtype is np.int8 and codes.dtype != np.int8:
        raise ModelError(f"native int8 quantizer returned dtype {codes.dtype}, expected int8")
    return codes


# ----------------------------------------------------------------------------- scoring


def maxsim_scores(queries: TokenCodes, docs: TokenCodes, similarity: str = "maxsim") -> np.ndarray:
    """The full (queries x documents) MaxSim matrix, float32 (for tests and small sets; blocks like the search)."""
    _check(queries, docs, similarity)
    out = np.empty((len(queries), len(docs)), dtype=np.float32)
    for q0, q1, qf in _query_chunks(queries):
        for j0, j1 in _doc_blocks(docs, int(queries.offsets[q1] - queries.offsets[q0])):
            out[q0:q1, j0:j1] = _block_scores(qf, queries.rows(q0, q1).offsets, docs.rows(j0, j1), similarity)
    return out


def maxsim_topk(queries: TokenCodes, docs: TokenCodes, k: int, similarity: str = "maxsim",
                score_bytes: int = SCORE_BLOCK_BYTES) -> tuple[np.ndarray, np.ndarray]:
    """Exact MaxSim top-k: ``(scores float32 (nq, k'), indices int64 (nq, k'))``, ``k' = min(k, n_docs)``,
    each row by (score desc, index asc). Memory: one ``score_bytes`` block of float32 scores (or one
    document's tokens times a query chunk's), the query chunk and the running top-k."""
    _check(queries, docs, similarity)
    if int(k) <= 0:
        raise ValueError(f"k must be positive, got {k}")
    if not len(docs):
        raise ValueError("cannot search an empty corpus")
    nq, kk = len(queries), min(int(k), len(docs))
    out_s, out_i = np.empty((nq, kk), dtype=np.float32), np.empty((nq, kk), dtype=np.int64)
    for q0, q1, qf in _query_chunks(queries):
        q_offsets = queries.rows(q0, q1).offsets
        run = None
        for j0, j1 in _doc_blocks(docs, len(qf), score_bytes):
            scores = _block_scores(qf, q_offsets, docs.rows(j0, j1), similarity)
            part = (scores, np.broadcast_to(np.arange(j0, j1, dtype=np.int64), scores.shape))
            run = _best(part, kk) if run is None else merge_topk([run, part], kk)
        out_s[q0:q1], out_i[q0:q1] = run
    return out_s, out_i


def maxsim_rerank(queries: TokenCodes, candidates: np.ndarray, docs_of: Callable[[np.ndarray], TokenCodes], k: int,
                  similarity: str = "maxsim") -> tuple[np.ndarray, np.ndarray]:
    """Each query's candidate documents (corpus indices, -1 = none) re-scored by MaxSim, the best k kept by
    (score desc, index asc). ``docs_of(indices)`` gives those documents' codes, in that order.
    Returns ``(scores (nq, k'), indices (nq, k'))``, ``k' = min(k, candidates per query)``; -1 pads short rows."""
    nq, m = candidates.shape
    kk = min(int(k), m)
    scores = np.full((nq, kk), -np.inf, dtype=np.float32)
    idx = np.full((nq, kk), -1, dtype=np.int64)
    for r in range(nq):
        c = np.unique(candidates[r][candidates[r] >= 0])  # ascending: ties go to the lower index
        if not len(c):
            continue
        q = queries.rows(r, r + 1)
        s = maxsim_scores(q, docs_of(c), similarity)[0]
        order = np.lexsort((c, -s))[:kk]
        scores[r, :len(order)], idx[r, :len(order)] = s[order], c[order]
    return scores, idx


def _check(queries: TokenCodes, docs: TokenCodes, similarity: str) -> None:
    if queries.kind != docs.kind or queries.dim != docs.dim:
        raise ValueError(f"queries ({queries.kind}, {queries.dim}) and documents ({docs.kind}, {docs.dim}) differ")
    if similarity not in SIMILARITIES:
        raise ValueError(f"similarity must be one of {', '.join(SIMILARITIES)}, got {similarity!r}")


def _best(part: tuple[np.ndarray, np.ndarray], k: int) -> tuple[np.ndarray, np.ndarray]:
    scores, idx = part
    order = np.lexsort((idx, -scores), axis=1)[:, :k]
    return np.take_along_axis(scores, order, 1), np.take_along_axis(idx, order, 1)


def _query_chunks(queries: TokenCodes):
    """(q0, q1, float32 tokens of queries q0 .. q1 - 1): whole queries, about QUERY_TOKENS tokens a chunk."""
    n, q0 = len(queries), 0
    while q0 < n:
        q1 = max(q0 + 1, int(np.searchsorted(queries.offsets, queries.offsets[q0] + QUERY_TOKENS, "right")) - 1)
        q1 = min(q1, n)
        yield q0, q1, queries.floats(int(queries.offsets[q0]), int(queries.offsets[q1]))
        q0 = q1


def _doc_blocks(docs: TokenCodes, query_tokens: int, score_bytes: int = SCORE_BLOCK_BYTES):
    """(j0, j1) of consecutive whole documents whose tokens times ``query_tokens`` fit ``score_bytes`` of float32
    (at least one document a block)."""
    budget = max(1, score_bytes // (4 * max(query_tokens, 1)))
    n, j0 = len(docs), 0
    while j0 < n:
        j1 = int(np.searchsorted(docs.offsets, docs.offsets[j0] + budget, "right")) - 1
        j1 = min(max(j1, j0 + 1), n)
        yield j0, j1
        j0 = j1


def _block_scores(qf: np.ndarray, q_offsets: np.ndarray, block: TokenCodes, similarity: str) -> np.ndarray:
    """MaxSim of a query chunk (float32 tokens, offsets) against a block of documents: float32 (nq, nb)."""
    nq, nb = len(q_offsets) - 1, len(block)
    lengths = np.diff(block.offsets)
    if not len(qf) or not len(block.codes):
        maxima = np.zeros((len(qf), nb), dtype=np.float32)
    else:
        with torch.inference_mode():
            sims = (torch.from_numpy(qf) @ torch.from_numpy(block.floats()).T).numpy()
        starts = np.minimum(block.offsets[:-1], len(block.codes) - 1)  # reduceat needs in-range starts
        maxima = np.maximum.reduceat(sims, starts, axis=1)  # an empty document's column is fixed below
    q_lengths = np.diff(q_offsets)
    sums = np.zeros((nq, nb), dtype=np.float64)
    has = q_lengths > 0
    if has.any():
        sums[has] = np.add.reduceat(maxima.astype(np.float64), q_offsets[:-1][has], axis=0)
    if block.kind == "binary":  # +-1 dot products are d - 2h: a token pair's similarity is 1 - 2h/d
        sums /= block.dim
    sums[:, lengths == 0] = EMPTY_DOCUMENT_SCORE  # then length-normalized, as sentence-transformers does
    if similarity == "meanmaxsim":
        sums /= np.maximum(q_lengths, 1)[:, None]
    return sums.astype(np.float32)
