"""Precisions: every one derived from the cached float32 vectors (truncate, then quantize, then search).

- fp32 / fp16: L2-normalized vectors, cosine as inner product (fp16 values searched as float32).
- int8: the model's native quantizer where it has one, else post-hoc: each dimension's corpus range
  [min, max] mapped onto [-128, 127] (sentence-transformers' `quantize_embeddings` with the corpus as
  calibration); the SAME mapping is applied to queries, so query and document codes share one scale.
  Scored by cosine of the integer codes.
- binary: native where the model has one (pplx: x >= 0), else post-hoc x > 0 (sentence-transformers'
  convention); packed bits searched by Hamming distance; reported score = cosine of the +-1 vectors,
  1 - 2h/d, which ranks identically.
MRL truncation (`dim`) comes first, so calibration sees the truncated vectors.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from embedbench.errors import EmbedbenchError
from embedbench.search import search_dense, search_hamming

KINDS = ("fp32", "fp16", "int8", "binary")
SPECS = ("fp32", "fp16", "int8", "binary", "int8:posthoc", "binary:posthoc")


@dataclass(frozen=True)
class PrecisionSpec:
    name: str
    kind: str
    force_posthoc: bool


def parse_precisions(text: str) -> list[PrecisionSpec]:
    """"fp32,int8,binary" -> specs, duplicates dropped in order; unknown specs are an error."""
    out: list[PrecisionSpec] = []
    for raw in (p.strip().lower() for p in text.split(",")):
        if not raw:
            continue
        if raw not in SPECS:
            raise EmbedbenchError(f"unknown precision {raw!r} (valid: {', '.join(SPECS)})")
        kind, _, mode = raw.partition(":")
        spec = PrecisionSpec(raw, kind, mode == "posthoc")
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
                    native: Mapping[str, Callable[[np.ndarray], np.ndarray]]) -> Encoded:
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
    if enc.kind == "binary":
        distances, idx = search_hamming(enc.queries, enc.docs, k)
        return (1.0 - 2.0 * distances.astype(np.float32) / enc.dim).astype(np.float32), idx
    return search_dense(enc.queries, enc.docs, k)
