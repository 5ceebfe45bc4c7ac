"""Every precision is derived from the cached float32 vectors.

A model is encoded once; each requested precision (and MRL dimension) is a cheap
transformation of those vectors followed by an exact search:

    fp32     truncate, L2-normalize; cosine by inner product           4*d bytes/vector
    fp16     truncate, L2-normalize, store as float16; the search uses
             the float32 of the float16 values                         2*d bytes
    int8     int8 codes: the model's native quantizer when it has one,
             else sentence-transformers-style calibration on the corpus
             (per-dimension min/max); scored by cosine of the codes    d bytes
    binary   bits (native, or x > 0), packed with np.packbits;
             Hamming search, reported as the cosine of the +-1
             vectors, 1 - 2*h/d (same ranking)                         ceil(d/8) bytes

``int8:posthoc`` / ``binary:posthoc`` force the post-hoc quantizer even when the model
has a native one. Truncation (MRL) happens before quantization, and int8 calibration
uses the truncated corpus vectors.

Two-stage specs ``binary+int8`` / ``binary+fp32``: the binary top-``rescore_depth``
candidates (Hamming) are re-ranked by the int8 / fp32 cosine; both stages are stored,
so bytes_per_vector is the sum. :func:`exact_overlap` says how much of the exact
second-stage top-k the two-stage ranking kept.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from embedbench.errors import EmbedbenchError, ModelError

KINDS = ("fp32", "fp16", "int8", "binary")
VALID_PRECISIONS = (
    "fp32", "fp16", "int8", "binary", "int8:posthoc", "binary:posthoc", "binary+int8", "binary+fp32",
)
# Binary candidates re-ranked by the second stage of binary+int8 / binary+fp32.
DEFAULT_RESCORE_DEPTH = 100

# Rows per chunk for the elementwise passes over a corpus (finite check, int8 codes,
# normalization), so temporaries stay at a few tens of MiB whatever the corpus size.
_CHUNK = 1 << 16


@dataclass(frozen=True)
class PrecisionSpec:
    name: str  # canonical spelling: "fp32" "fp16" "int8" "binary" "int8:posthoc" "binary:posthoc"
    #            (or a two-stage "binary+int8" / "binary+fp32")
    kind: str  # "fp32" | "fp16" | "int8" | "binary" (a two-stage spec: its first stage, "binary")
    force_posthoc: bool
    rescore: str | None = None  # two-stage: the re-ranking kind, "int8" | "fp32"


# Finer precisions rank higher; a model that serves codes (an int8 / binary HTTP endpoint) has no
# finer vector to give, so a spec needing one is refused (check_served).
_FINENESS = {"binary": 0, "int8": 1, "fp16": 2, "fp32": 3}


def check_served(specs: list[PrecisionSpec], served: str, model: str) -> None:
    """Refuse specs finer than what the model serves: an fp32 result over int8 codes would be the int8
    number, labelled fp32 and costed at 4·d bytes, and compared with real fp32 results as if it were one."""
    if served == "fp32":
        return
    limit = _FINENESS[served]
    too_fine = [s.name for s in specs if max(_FINENESS[k] for k in (s.kind, s.rescore) if k) > limit]
    if too_fine:
        ok = [p for p in VALID_PRECISIONS if max(_FINENESS[k] for k in p.split(":")[0].split("+")) <= limit]
        raise EmbedbenchError(f"model {model!r} serves {served} codes, not floats: {', '.join(too_fine)} cannot be "
                              f"measured on it; use {', '.join(ok)}")


def parse_precisions(text: str) -> list[PrecisionSpec]:
    """Parse "fp32,int8,binary" (case and spaces ignored); duplicates dropped, order kept."""
    specs: list[PrecisionSpec] = []
    seen: set[str] = set()
    items = [item.strip().lower() for item in str(text).split(",")]
    if not any(items):
        raise EmbedbenchError(f"no precision given; valid: {', '.join(VALID_PRECISIONS)}")
    for item in items:
        if not item:
            continue
        if item not in VALID_PRECISIONS:
            raise EmbedbenchError(
                f"unknown precision {item!r}; valid: {', '.join(VALID_PRECISIONS)}"
            )
        if item in seen:
            continue
        seen.add(item)
        if "+" in item:
            first, _, second = item.partition("+")
            specs.append(PrecisionSpec(name=item, kind=first, force_posthoc=False, rescore=second))
            continue
        kind, _, mode = item.partition(":")
        specs.append(PrecisionSpec(name=item, kind=kind, force_posthoc=mode == "posthoc"))
    return specs


@dataclass
class Encoded:
    """What a precision turns vectors into, as stored; :func:`search` scores it.

    queries/docs are float32 unit vectors (fp32), float16 unit vectors (fp16),
    int8 codes (int8) or packed bits, uint8 (n, ceil(dim/8)) (binary).
    A two-stage precision is its binary stage with ``rescore`` (the second stage's
    Encoded) and ``rescore_depth`` set; bytes_per_vector then counts both stages and
    quantization is the binary stage's.
    """

    queries: np.ndarray
    docs: np.ndarray
    kind: str
    quantization: str  # "none" | "native" | "posthoc"
    dim: int
    bytes_per_vector: int
    rescore: Encoded | None = None
    rescore_depth: int | None = None


def truncate(x: np.ndarray, dim: int | None) -> np.ndarray:
    """MRL truncation: the first ``dim`` columns (a view); None keeps every column."""
    if dim is None:
        return x
    d = x.shape[1]
    if isinstance(dim, bool) or int(dim) != dim or dim <= 0:
        raise EmbedbenchError(f"dimension must be a positive integer, got {dim!r}")
    if dim > d:
        raise EmbedbenchError(f"cannot truncate {d}-dimensional embeddings to {dim} dimensions")
    return x[:, : int(dim)]


def calibrate_int8(docs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-dimension (starts, steps) from the corpus min/max, as sentence-transformers'
    ``quantize_embeddings(..., "int8", calibration_embeddings=docs)`` computes them:
    ``starts = min``, ``steps = (max - min) / 255``, and a zero-range dimension gets
    step 1 (its codes are then all -128) instead of a division by zero."""
    x = np.asarray(docs)
    if x.ndim != 2 or x.shape[0] == 0:
        raise EmbedbenchError(f"int8 calibration needs a non-empty (n, d) corpus, got {x.shape}")
    starts = np.min(x, axis=0).astype(np.float32)
    stops = np.max(x, axis=0).astype(np.float32)
    steps = (stops - starts) / np.float32(255)
    steps = np.where(steps == 0, np.float32(1), steps).astype(np.float32)
    return starts, steps


def to_int8_posthoc(x: np.ndarray, starts: np.ndarray, steps: np.ndarray) -> np.ndarray:
    """int8 codes ``floor((x - starts) / steps) - 128`` clipped to [-128, 127] (the same
    mapping for queries and documents; computed in float32 exactly like
    sentence-transformers, so the codes match its ``quantize_embeddings``)."""
    x = np.asarray(x)
    starts = np.asarray(starts, dtype=np.float32)
    steps = np.asarray(steps, dtype=np.float32)
    out = np.empty(x.shape, dtype=np.int8)
    for r0 in range(0, x.shape[0], _CHUNK):
        xc = np.asarray(x[r0 : r0 + _CHUNK], dtype=np.float32)
        v = np.floor((xc - starts) / steps)
        np.clip(v, 0, 255, out=v)
        v -= 128
        out[r0 : r0 + _CHUNK] = v.astype(np.int8)
    return out


def to_binary_posthoc(x: np.ndarray) -> np.ndarray:
    """Bits ``x > 0`` (sentence-transformers' convention), bool (n, d)."""
    return np.asarray(x) > 0


def apply_precision(
    spec: PrecisionSpec,
    queries: np.ndarray,
    docs: np.ndarray,
    dim: int | None,
    native: dict[str, Callable[[np.ndarray], np.ndarray]] | None,
    rescore_depth: int = DEFAULT_RESCORE_DEPTH,
) -> Encoded:
    """Turn float32 query and document vectors into ``spec``'s stored form at ``dim``.

    ``rescore_depth`` only matters for two-stage specs (binary+int8, binary+fp32).
    """
    native = native or {}
    q = np.asarray(queries)
    x = np.asarray(docs)
    if q.ndim != 2 or x.ndim != 2:
        raise EmbedbenchError(f"embeddings must be 2-D, got shapes {q.shape} and {x.shape}")
    if q.shape[1] != x.shape[1]:
        raise EmbedbenchError(
            f"query and document embeddings differ in dimension: {q.shape[1]} vs {x.shape[1]}"
        )
    _check_finite(q, "query")
    _check_finite(x, "document")
    tq = truncate(q, dim)
    tx = truncate(x, dim)
    if spec.rescore is not None:
        if int(rescore_depth) < 1:
            raise EmbedbenchError(f"rescore depth must be at least 1, got {rescore_depth}")
        first = _encode(PrecisionSpec(spec.kind, spec.kind, False), tq, tx, native)
        second = _encode(PrecisionSpec(spec.rescore, spec.rescore, False), tq, tx, native)
        first.rescore = second
        first.rescore_depth = int(rescore_depth)
        first.bytes_per_vector += second.bytes_per_vector
        return first
    return _encode(spec, tq, tx, native)


def _encode(
    spec: PrecisionSpec,
    tq: np.ndarray,
    tx: np.ndarray,
    native: dict[str, Callable[[np.ndarray], np.ndarray]],
) -> Encoded:
    d = tq.shape[1]

    if spec.kind == "fp32":
        return Encoded(_unit(tq, np.float32), _unit(tx, np.float32), "fp32", "none", d, 4 * d)
    if spec.kind == "fp16":
        # Normalized in float32 first (so no value can overflow float16), then stored as
        # float16; search() scores the float32 of those float16 values.
        return Encoded(_unit(tq, np.float16), _unit(tx, np.float16), "fp16", "none", d, 2 * d)
    if spec.kind == "int8":
        fn = None if spec.force_posthoc else native.get("int8")
        if fn is not None:
            cq = _native_codes(fn, tq, "int8")
            cx = _native_codes(fn, tx, "int8")
            return Encoded(cq, cx, "int8", "native", d, d)
        starts, steps = calibrate_int8(tx)
        return Encoded(
            to_int8_posthoc(tq, starts, steps), to_int8_posthoc(tx, starts, steps),
            "int8", "posthoc", d, d,
        )
    if spec.kind == "binary":
        fn = None if spec.force_posthoc else native.get("binary")
        if fn is not None:
            bq = _native_codes(fn, tq, "binary")
            bx = _native_codes(fn, tx, "binary")
            quant = "native"
        else:
            bq = to_binary_posthoc(tq)
            bx = to_binary_posthoc(tx)
            quant = "posthoc"
        nbytes = (d + 7) // 8
        return Encoded(
            np.packbits(bq, axis=1), np.packbits(bx, axis=1), "binary", quant, d, nbytes
        )
    raise EmbedbenchError(f"unknown precision kind {spec.kind!r}; valid: {', '.join(KINDS)}")


def search(enc: Encoded, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k of ``enc``: (scores float32 (nq, k'), indices int64), higher = better,
    ``k' = min(k, n_docs)``; on equal scores the lower document index ranks first."""
    from embedbench.search import search_dense, search_hamming

    if enc.rescore is not None:
        return _two_stage(enc, k)
    if enc.kind == "binary":
        dist, idx = search_hamming(enc.queries, enc.docs, k)
        # Cosine of the +-1 vectors: (d - 2h) / d. Padding bits are 0 on both sides.
        scores = (1.0 - 2.0 * dist.astype(np.float64) / enc.dim).astype(np.float32)
        return scores, idx
    if enc.kind in ("fp32", "fp16"):
        # fp16 documents stay float16 in memory; search_dense converts them block by block.
        return search_dense(np.asarray(enc.queries, dtype=np.float32), enc.docs, k)
    if enc.kind == "int8":
        # Cosine of the integer codes: the normalized query codes against the int8 document
        # codes, each document block converted to float32 (exact for integers) and scaled by
        # 1/||codes|| inside search_dense, so the index is never expanded as a whole. The
        # scores carry float32 rounding like fp32 scores do.
        return search_dense(_unit(enc.queries, np.float32), enc.docs, k, doc_scale=_inverse_norms(enc.docs))
    raise EmbedbenchError(f"unknown precision kind {enc.kind!r}; valid: {', '.join(KINDS)}")


def exact_overlap(enc: Encoded, idx: np.ndarray, k: int = 10) -> np.ndarray:
    """Per query, the fraction of the exact top-k of ``enc``'s re-ranking stage (a full
    search with it) found in the first k columns of ``idx``; float64 (nq,). For a
    single-stage precision the reference is ``enc`` itself."""
    ref = enc.rescore if enc.rescore is not None else enc
    _, exact = search(ref, k)
    kk = exact.shape[1]
    got = np.asarray(idx)[:, :k]
    out = np.empty(exact.shape[0], dtype=np.float64)
    for r in range(exact.shape[0]):
        out[r] = np.isin(exact[r], got[r][got[r] >= 0]).sum() / kk
    return out


# ----------------------------------------------------------------------------- helpers


def _two_stage(enc: Encoded, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Binary top-depth candidates re-ranked by the second stage's cosine.

    Returns (nq, min(k, depth, n)): only the re-ranked candidates are retrieved.
    Ordered by (score desc, index asc), like every other search.
    """
    assert enc.rescore is not None and enc.rescore_depth is not None
    if int(k) <= 0:
        raise ValueError(f"k must be positive, got {k}")
    first = Encoded(enc.queries, enc.docs, enc.kind, enc.quantization, enc.dim,
                    (enc.dim + 7) // 8)
    _, cand = search(first, enc.rescore_depth)  # (nq, min(depth, n))
    second = enc.rescore
    q = _unit(second.queries, np.float32)
    nq, m = cand.shape
    kk = min(int(k), m)
    scores = np.empty((nq, kk), dtype=np.float32)
    idx = np.empty((nq, kk), dtype=np.int64)
    for r in range(nq):
        c = np.sort(cand[r])
        s = _unit(second.docs[c], np.float32) @ q[r]
        order = np.lexsort((c, -s))[:kk]
        scores[r] = s[order]
        idx[r] = c[order]
    return scores, idx




def _check_finite(x: np.ndarray, what: str) -> None:
    if not np.issubdtype(x.dtype, np.number):
        raise EmbedbenchError(f"{what} embeddings must be numeric, got dtype {x.dtype}")
    if np.issubdtype(x.dtype, np.integer):
        return
    for r0 in range(0, x.shape[0], _CHUNK):
        chunk = x[r0 : r0 + _CHUNK]
        if not np.isfinite(chunk).all():
            bad = r0 + int(np.flatnonzero(~np.isfinite(chunk).all(axis=1))[0])
            raise EmbedbenchError(
                f"{what} embeddings contain NaN or inf values (first at row {bad}); "
                "the model produced invalid vectors"
            )


def _inverse_norms(x: np.ndarray) -> np.ndarray:
    """1/||row|| in float32 (zero rows get 1), computed in chunks."""
    out = np.empty(x.shape[0], dtype=np.float32)
    for r0 in range(0, x.shape[0], _CHUNK):
        norms = np.linalg.norm(np.asarray(x[r0 : r0 + _CHUNK], dtype=np.float32), axis=1)
        norms[norms == 0] = 1.0
        out[r0 : r0 + _CHUNK] = 1.0 / norms
    return out


def _unit(x: np.ndarray, dtype: type) -> np.ndarray:
    """Rows L2-normalized in float32 (zero rows stay zero), stored as ``dtype``."""
    out = np.empty(x.shape, dtype=dtype)
    for r0 in range(0, x.shape[0], _CHUNK):
        xc = np.asarray(x[r0 : r0 + _CHUNK], dtype=np.float32)
        norms = np.linalg.norm(xc, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        out[r0 : r0 + _CHUNK] = xc / norms
    return out


def _native_codes(fn: Callable[[np.ndarray], np.ndarray], x: np.ndarray, kind: str) -> np.ndarray:
    """Call a native quantizer on float32 vectors and check what comes back."""
    codes = np.asarray(fn(np.ascontiguousarray(x, dtype=np.float32)))
    if codes.shape != x.shape:
        raise ModelError(
            f"native {kind} quantizer returned shape {codes.shape} for input {x.shape}"
        )
    if kind == "int8":
        if codes.dtype != np.int8:
            raise ModelError(f"native int8 quantizer returned dtype {codes.dtype}, expected int8")
        return codes
    if codes.dtype == np.bool_:
        return codes
    if np.issubdtype(codes.dtype, np.integer) and np.isin(codes, (0, 1)).all():
        return codes.astype(bool)
    raise ModelError(f"native binary quantizer returned dtype {codes.dtype}, expected bool")
