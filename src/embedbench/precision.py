"""Precisions: every one derived from the cached float32 vectors (truncate, then quantize, then search).

- fp32 / fp16: L2-normalized vectors, cosine as inner product (fp16 values searched as float32).
- int8: the model's native quantizer where it has one, else post-hoc: each dimension's corpus range
  [min, max] mapped onto [-128, 127] (sentence-transformers' `quantize_embeddings` with the corpus as
  calibration); the SAME mapping is applied to queries, so query and document codes share one scale.
  Scored by cosine of the integer codes.
- binary: native where the model has one (pplx: x >= 0), else post-hoc x > 0 (sentence-transformers'
  convention); packed bits searched by Hamming distance; reported score = cosine of the +-1 vectors,
  1 - 2h/d, which ranks identically.
- binary+int8 / binary+fp32: two-stage retrieval. The top `rescore_depth` candidates of the binary
  Hamming search are re-ranked by the cosine of int8 codes (query codes from the same mapping) or of
  the float vectors. Storage counts both the binary index and the rescoring vectors.
MRL truncation (`dim`) comes first, so calibration sees the truncated vectors.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from embedbench.errors import EmbedbenchError
from embedbench.search import search_dense, search_hamming

KINDS = ("fp32", "fp16", "int8", "binary")
SPECS = ("fp32", "fp16", "int8", "binary", "int8:posthoc", "binary:posthoc", "binary+int8", "binary+fp32")
DEFAULT_RESCORE_DEPTH = 100


@dataclass(frozen=True)
class PrecisionSpec:
    name: str
    kind: str
    force_posthoc: bool
    rescore: str | None = None  # "int8" | "fp32" for two-stage binary retrieval


def parse_precisions(text: str) -> list[PrecisionSpec]:
    """"fp32,int8,binary" -> specs, duplicates dropped in order; unknown specs are an error."""
    out: list[PrecisionSpec] = []
    for raw in (p.strip().lower() for p in text.split(",")):
        if not raw:
            continue
        if raw not in SPECS:
            raise EmbedbenchError(f"unknown precision {raw!r} (valid: {', '.join(SPECS)})")
        kind, _, mode = raw.partition(":")
        first, _, rescore = kind.partition("+")
        spec = PrecisionSpec(raw, first, mode == "posthoc", rescore or None)
        if spec not in out:
            out.append(spec)
    if not out:
        raise EmbedbenchError("no precision given (valid: " + ", ".join(SPECS) + ")")
    return out


@dataclass
class Encoded:
    """Vectors of one precision, ready to search."""

    queries: np.ndarray
    docs: np.ndarray
    kind: str
    quantization: str  # "none" | "native" | "posthoc"
    dim: int
    bytes_per_vector: int
    rescore: Encoded | None = None  # the second stage of binary+int8 / binary+fp32
    rescore_depth: int | None = None


def truncate(x: np.ndarray, dim: int | None) -> np.ndarray:
    if dim is None or dim == x.shape[1]:
        return x
    if dim > x.shape[1]:
        raise EmbedbenchError(f"dim {dim} is larger than the embedding dimension {x.shape[1]}")
    return x[:, :dim]


def calibrate_int8(docs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-dimension (starts, steps): the corpus range split into 255 steps (a zero range gets step 1)."""
    starts = docs.min(axis=0).astype(np.float32)
    steps = ((docs.max(axis=0) - starts) / 255).astype(np.float32)
    steps[steps == 0] = 1.0
    return starts, steps


def to_int8_posthoc(x: np.ndarray, starts: np.ndarray, steps: np.ndarray) -> np.ndarray:
    codes = np.floor((x - starts) / steps) - 128
    return np.clip(codes, -128, 127).astype(np.int8)


def to_binary_posthoc(x: np.ndarray) -> np.ndarray:
    return x > 0


def _normalize(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return x / norms


def _check_finite(*arrays: np.ndarray) -> None:
    for a in arrays:
        if not np.isfinite(a).all():
            raise EmbedbenchError(f"embeddings contain NaN or infinite values ({int((~np.isfinite(a)).sum())})")


def apply_precision(spec: PrecisionSpec, queries: np.ndarray, docs: np.ndarray, dim: int | None,
                    native: Mapping[str, Callable[[np.ndarray], np.ndarray]],
                    rescore_depth: int = DEFAULT_RESCORE_DEPTH) -> Encoded:
    if spec.rescore is not None:
        first = apply_precision(PrecisionSpec("binary", "binary", spec.force_posthoc), queries, docs, dim, native)
        second = apply_precision(PrecisionSpec(spec.rescore, spec.rescore, False), queries, docs, dim, native)
        first.rescore, first.rescore_depth = second, rescore_depth
        first.bytes_per_vector += second.bytes_per_vector
        return first
    _check_finite(queries, docs)
    q, d = truncate(queries, dim), truncate(docs, dim)
    width = d.shape[1]
    use_native = spec.kind in native and not spec.force_posthoc
    if spec.kind == "fp32":
        return Encoded(_normalize(q), _normalize(d), "fp32", "none", width, 4 * width)
    if spec.kind == "fp16":
        q16, d16 = _normalize(q).astype(np.float16), _normalize(d).astype(np.float16)
        return Encoded(_normalize(q16), _normalize(d16), "fp16", "none", width, 2 * width)
    if spec.kind == "int8":
        if use_native:
            qc, dc = native["int8"](q), native["int8"](d)
        else:
            starts, steps = calibrate_int8(d)
            qc, dc = to_int8_posthoc(q, starts, steps), to_int8_posthoc(d, starts, steps)
        # Cosine of integer codes; float32 holds the integer dot products exactly up to 2**24.
        return Encoded(_normalize(qc.astype(np.float32)), _normalize(dc.astype(np.float32)), "int8",
                       "native" if use_native else "posthoc", width, width)
    bits_q = native["binary"](q) if use_native else to_binary_posthoc(q)
    bits_d = native["binary"](d) if use_native else to_binary_posthoc(d)
    return Encoded(np.packbits(bits_q, axis=1), np.packbits(bits_d, axis=1), "binary",
                   "native" if use_native else "posthoc", width, (width + 7) // 8)


def search(enc: Encoded, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(scores float32, higher is better; indices int64), top-k per query."""
    if enc.rescore is not None:
        _, candidates = search_hamming(enc.queries, enc.docs, max(enc.rescore_depth or 0, 1))
        return rescore(enc.rescore, candidates, k)
    if enc.kind == "binary":
        distances, idx = search_hamming(enc.queries, enc.docs, k)
        return (1.0 - 2.0 * distances.astype(np.float32) / enc.dim).astype(np.float32), idx
    return search_dense(enc.queries, enc.docs, k)


def rescore(enc: Encoded, candidates: np.ndarray, k: int, block: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Re-rank each query's candidate indices by inner product of `enc`'s (normalized) vectors.

    Equal scores keep the lower index first (the candidates arrive sorted by index within a distance,
    and a stable sort by score preserves the harness's tie order). Memory: block x depth x dim floats.
    """
    kk = min(k, candidates.shape[1])
    scores = np.empty((len(candidates), kk), np.float32)
    indices = np.empty((len(candidates), kk), np.int64)
    for start in range(0, len(candidates), block):
        cand = candidates[start:start + block]
        q = enc.queries[start:start + block]
        s = np.einsum("qd,qnd->qn", q, enc.docs[cand])
        order = np.lexsort((cand, -s), axis=-1)[:, :kk]
        scores[start:start + block] = np.take_along_axis(s, order, axis=1)
        indices[start:start + block] = np.take_along_axis(cand, order, axis=1)
    return scores, indices


def exact_overlap(enc: Encoded, indices: np.ndarray, k: int = 10) -> np.ndarray:
    """Per query, the share of the exact top-k (searching the rescoring vectors directly) that the
    two-stage result's top-k also holds: the recall two-stage retrieval loses versus exact search."""
    assert enc.rescore is not None
    _, exact = search_dense(enc.rescore.queries, enc.rescore.docs, k)
    got = indices[:, :k]
    return np.array([len(set(a) & set(b)) / max(len(a), 1) for a, b in zip(exact, got)], dtype=np.float64)
