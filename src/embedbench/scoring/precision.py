"""Every precision is derived from the cached float32 vectors: vectors in, vectors or codes out.

A model is encoded once; each requested precision (and MRL dimension) is a cheap
transformation of those vectors; :mod:`embedbench.scoring.retrieval` then searches the result:

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
so bytes_per_vector is the sum.

:data:`PRECISIONS` is the one table of specs (names, kinds, stages) and :func:`bytes_per_vector`
the one storage rule; :func:`check_dims` the one check of MRL dimensions.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from embedbench.errors import EmbedbenchError, ModelError

# Stored kinds, coarsest last. BITS: storage per dimension; FINENESS: finer kinds rank higher.
KINDS = ("fp32", "fp16", "int8", "binary")
_BITS = {"fp32": 32, "fp16": 16, "int8": 8, "binary": 1}
_FINENESS = {"binary": 0, "int8": 1, "fp16": 2, "fp32": 3}

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

    @property
    def stages(self) -> tuple[str, ...]:
        """The kinds this spec stores: its kind, then the re-ranking kind of a two-stage spec."""
        return (self.kind,) if self.rescore is None else (self.kind, self.rescore)

    def bytes_per_vector(self, dim: int) -> int:
        """Index storage of one ``dim``-dimensional vector, every stage counted."""
        return sum(bytes_per_vector(kind, dim) for kind in self.stages)


# The precision specs of the CLI contract, in the order error messages list them.
PRECISIONS: dict[str, PrecisionSpec] = {spec.name: spec for spec in (
    PrecisionSpec("fp32", "fp32", False),
    PrecisionSpec("fp16", "fp16", False),
    PrecisionSpec("int8", "int8", False),
    PrecisionSpec("binary", "binary", False),
    PrecisionSpec("int8:posthoc", "int8", True),
    PrecisionSpec("binary:posthoc", "binary", True),
    PrecisionSpec("binary+int8", "binary", False, rescore="int8"),
    PrecisionSpec("binary+fp32", "binary", False, rescore="fp32"),
)}
VALID_PRECISIONS = tuple(PRECISIONS)


def bytes_per_vector(kind: str, dim: int) -> int:
    """Bytes of one stored ``dim``-dimensional vector of ``kind``: 4d, 2d, d or ceil(d/8) (bits packed)."""
    return (_BITS[kind] * dim + 7) // 8


def _fineness(spec: PrecisionSpec) -> int:
    return max(_FINENESS[kind] for kind in spec.stages)


def check_served(specs: list[PrecisionSpec], served: str, model: str) -> None:
    """Refuse specs finer than what the model serves: an fp32 result over int8 codes would be the int8
    number, labelled fp32 and costed at 4·d bytes, and compared with real fp32 results as if it were one."""
    if served == "fp32":
        return
    limit = _FINENESS[served]
    too_fine = [s.name for s in specs if _fineness(s) > limit]
    if too_fine:
        ok = [name for name, spec in PRECISIONS.items() if _fineness(spec) <= limit]
        raise EmbedbenchError(f"model {model!r} serves {served} codes, not floats: {', '.join(too_fine)} cannot be "
                              f"measured on it; use {', '.join(ok)}")


def parse_precisions(text: str) -> list[PrecisionSpec]:
    """Parse "fp32,int8,binary" (case and spaces ignored); duplicates dropped, order kept."""
    items = [item.strip().lower() for item in str(text).split(",")]
    if not any(items):
        raise EmbedbenchError(f"no precision given; valid: {', '.join(VALID_PRECISIONS)}")
    specs: list[PrecisionSpec] = []
    for item in filter(None, items):
        if item not in PRECISIONS:
            raise EmbedbenchError(f"unknown precision {item!r}; valid: {', '.join(VALID_PRECISIONS)}")
        if PRECISIONS[item] not in specs:
            specs.append(PRECISIONS[item])
    return specs


def check_dims(dims: Sequence[int] | None, model_dim: int | None = None) -> list[int | None]:
    """The MRL dimensions to evaluate, in order, repeats dropped; none given is ``[None]`` (full size).

    Each must be a positive integer (numpy integers too; bools and floats are refused) and, when
    ``model_dim`` is known, no larger than it: truncation can only drop columns.
    """
    if not dims:
        return [None]
    out: list[int | None] = []
    for d in dims:
        if isinstance(d, bool) or not isinstance(d, (int, np.integer)) or d < 1:
            raise EmbedbenchError(f"dims must be positive integers, got {d!r}")
        if model_dim is not None and d > model_dim:
            raise EmbedbenchError(f"--dims {d} is larger than the model's dimension {model_dim}")
        if int(d) not in out:
            out.append(int(d))
    return out


@dataclass
class Encoded:
    """What a precision turns vectors into, as stored; :func:`embedbench.scoring.retrieval.search_encoded`
    scores it.

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
    (dim,) = check_dims([dim], model_dim=x.shape[1])
    return x[:, :dim]


@dataclass(frozen=True)
class ColumnRange:
    """Per-dimension min and max of a corpus: what post-hoc int8 calibration reads, mergeable over shards.

    The min (max) of shard minima (maxima) is the corpus min (max) exactly, so a corpus read a shard
    at a time calibrates bit-identically to the whole corpus in memory.
    """

    low: np.ndarray  # float32 (d,)
    high: np.ndarray  # float32 (d,)

    @classmethod
    def of(cls, docs: np.ndarray) -> ColumnRange:
        x = np.asarray(docs)
        if x.ndim != 2 or x.shape[0] == 0:
            raise EmbedbenchError(f"int8 calibration needs a non-empty (n, d) corpus, got {x.shape}")
        return cls(np.min(x, axis=0).astype(np.float32), np.max(x, axis=0).astype(np.float32))

    def merge(self, other: ColumnRange) -> ColumnRange:
        return ColumnRange(np.minimum(self.low, other.low), np.maximum(self.high, other.high))

    def truncated(self, dim: int) -> ColumnRange:
        """The range of the first ``dim`` columns (MRL truncation commutes with a per-column min / max)."""
        return ColumnRange(self.low[:dim], self.high[:dim])


def calibrate_int8(docs: np.ndarray | ColumnRange) -> tuple[np.ndarray, np.ndarray]:
    """Per-dimension (starts, steps) from the corpus min/max, as sentence-transformers'
    ``quantize_embeddings(..., "int8", calibration_embeddings=docs)`` computes them:
    ``starts = min``, ``steps = (max - min) / 255``, and a zero-range dimension gets
    step 1 (its codes are then all -128) instead of a division by zero. ``docs`` may be the
    corpus or its :class:`ColumnRange` (merged over shards)."""
    span = docs if isinstance(docs, ColumnRange) else ColumnRange.of(docs)
    starts, stops = span.low, span.high
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


def inverse_norms(x: np.ndarray) -> np.ndarray:
    """1/||row|| in float32 (zero rows get 1), computed in chunks."""
    out = np.empty(x.shape[0], dtype=np.float32)
    for r0 in range(0, x.shape[0], _CHUNK):
        norms = np.linalg.norm(np.asarray(x[r0 : r0 + _CHUNK], dtype=np.float32), axis=1)
        norms[norms == 0] = 1.0
        out[r0 : r0 + _CHUNK] = 1.0 / norms
    return out


def unit_rows(x: np.ndarray, dtype: type) -> np.ndarray:
    """Rows L2-normalized in float32 (zero rows stay zero), stored as ``dtype``."""
    out = np.empty(x.shape, dtype=dtype)
    for r0 in range(0, x.shape[0], _CHUNK):
        xc = np.asarray(x[r0 : r0 + _CHUNK], dtype=np.float32)
        norms = np.linalg.norm(xc, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        out[r0 : r0 + _CHUNK] = xc / norms
    return out


def apply_precision(
    spec: PrecisionSpec,
    queries: np.ndarray,
    docs: np.ndarray,
    dim: int | None,
    native: dict[str, Callable[[np.ndarray], np.ndarray]] | None,
    rescore_depth: int = DEFAULT_RESCORE_DEPTH,
    corpus_range: ColumnRange | None = None,
) -> Encoded:
    """Turn float32 query and document vectors into ``spec``'s stored form at ``dim``.

    ``rescore_depth`` only matters for two-stage specs (binary+int8, binary+fp32).
    ``corpus_range`` (full-dimension, over the whole corpus) calibrates post-hoc int8 when ``docs``
    is one shard of the corpus; without it the calibration reads ``docs``.
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
    span = None if corpus_range is None else corpus_range.truncated(tx.shape[1])
    if spec.rescore is None:
        return _encode(spec, tq, tx, native, span)
    if int(rescore_depth) < 1:
        raise EmbedbenchError(f"rescore depth must be at least 1, got {rescore_depth}")
    first = _encode(PRECISIONS[spec.kind], tq, tx, native, span)
    second = _encode(PRECISIONS[spec.rescore], tq, tx, native, span)
    first.rescore = second
    first.rescore_depth = int(rescore_depth)
    first.bytes_per_vector = spec.bytes_per_vector(first.dim)
    return first


def _encode(
    spec: PrecisionSpec,
    tq: np.ndarray,
    tx: np.ndarray,
    native: dict[str, Callable[[np.ndarray], np.ndarray]],
    span: ColumnRange | None = None,
) -> Encoded:
    """One single-stage spec's stored form of already truncated vectors (``span``: the corpus range)."""
    if spec.kind in ("fp32", "fp16"):
        # fp16: normalized in float32 first (so no value can overflow float16), then stored
        # as float16; the search scores the float32 of those float16 values.
        dtype = np.float32 if spec.kind == "fp32" else np.float16
        queries, docs, quant = unit_rows(tq, dtype), unit_rows(tx, dtype), "none"
    elif spec.kind == "int8":
        queries, docs, quant = _int8_codes(tq, tx, None if spec.force_posthoc else native.get("int8"), span)
    elif spec.kind == "binary":
        queries, docs, quant = _binary_codes(tq, tx, None if spec.force_posthoc else native.get("binary"))
    else:
        raise EmbedbenchError(f"unknown precision kind {spec.kind!r}; valid: {', '.join(KINDS)}")
    d = tq.shape[1]
    return Encoded(queries, docs, spec.kind, quant, d, bytes_per_vector(spec.kind, d))


def _int8_codes(
    tq: np.ndarray, tx: np.ndarray, native: Callable[[np.ndarray], np.ndarray] | None,
    span: ColumnRange | None = None,
) -> tuple[np.ndarray, np.ndarray, str]:
    """(query codes, document codes, quantization): the native quantizer's, else calibrated on the corpus
    (``span``, or ``tx`` itself)."""
    if native is not None:
        return _native_codes(native, tq, "int8"), _native_codes(native, tx, "int8"), "native"
    starts, steps = calibrate_int8(tx if span is None else span)
    return to_int8_posthoc(tq, starts, steps), to_int8_posthoc(tx, starts, steps), "posthoc"


def _binary_codes(
    tq: np.ndarray, tx: np.ndarray, native: Callable[[np.ndarray], np.ndarray] | None
) -> tuple[np.ndarray, np.ndarray, str]:
    """(packed query bits, packed document bits, quantization): the native quantizer's, else x > 0."""
    if native is not None:
        bq, bx, quant = _native_codes(native, tq, "binary"), _native_codes(native, tx, "binary"), "native"
    else:
        bq, bx, quant = to_binary_posthoc(tq), to_binary_posthoc(tx), "posthoc"
    return np.packbits(bq, axis=1), np.packbits(bx, axis=1), quant


# ----------------------------------------------------------------------------- helpers


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
