"""The encoder contract: a small runtime-checkable Protocol and the meta record beside it.

Plugins need not inherit anything. A dense encoder returns float32 vectors *before*
any quantization; the harness derives every precision and dimension from them.
A multi-vector (late-interaction) encoder says `kind="multi-vector"` in its meta and returns one
float32 (tokens, d) matrix per text (`encode_queries_multi` / `encode_documents_multi`), scored by MaxSim.
A lexical model (BM25) has no vectors and offers `index` + `search` instead.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

from embedbench.encoders.runtime import TORCH_STACK, library_versions
from embedbench.errors import ModelError

KINDS = ("dense", "multi-vector")


@dataclass(frozen=True)
class EncoderMeta:
    """What a result needs to say about the model that produced it."""

    name: str
    revision: str
    fingerprint: str
    dim: int | None
    max_tokens: int | None = None
    pooling: str | None = None
    mrl_dims: tuple[int, ...] = ()
    prompts: dict[str, str] = field(default_factory=dict)
    # Native quantizers by precision name ("int8", "binary"): float32 (n, d) -> codes.
    # int8 codes are int8 (n, d) scored by cosine; binary codes are bool (n, d), True = bit set.
    native_quantizers: dict[str, Callable[[np.ndarray], np.ndarray]] = field(default_factory=dict)
    # Which float the fp32 result scores, and why (e.g. pplx: "x, the mean-pooled vector").
    float_note: str = ""
    source: str = ""
    license: str | None = None
    # A contextual model (pplx-embed-context): chunked documents go through encode_nested by default.
    contextual: bool = False
    # Where and in what the vectors are computed: the device type (cpu, cuda, mps; not the index) and
    # the real compute dtype (float32, or bfloat16 / float16 under CUDA autocast or half weights).
    device_type: str = "cpu"
    compute_dtype: str = "float32"
    # What the vectors already are when the model hands them over: fp32, or int8 / binary codes
    # (an HTTP endpoint that serves quantized embeddings).
    served_precision: str = "fp32"
    # Distributions whose code computes the vectors; their major.minor versions are part of the cache key.
    # Plugins that run none of them (hashing, BM25, a remote HTTP server) set () -- see encode_settings.
    libraries: tuple[str, ...] = TORCH_STACK
    # What one text becomes: "dense" (one vector) or "multi-vector" (one vector per token, scored by MaxSim).
    kind: str = "dense"

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ModelError(f"model {self.name!r}: meta kind must be one of {', '.join(KINDS)}, got {self.kind!r}")

    def encode_settings(self) -> dict[str, object]:
        """Every setting that changes a vector; part of the embedding cache key.

        Library versions are read for `libraries` only: a plugin whose vectors no torch, transformers
        or sentence-transformers code touches (the hashing encoder, BM25, vectors computed by a remote
        server) leaves them out, so upgrading torch does not discard caches it cannot have changed.
        """
        settings: dict[str, object] = {
            "fingerprint": self.fingerprint,
            "max_tokens": self.max_tokens,
            "pooling": self.pooling,
            "prompts": dict(sorted(self.prompts.items())),
            "device_type": self.device_type,
            "compute_dtype": self.compute_dtype,
            "served_precision": self.served_precision,
            "libraries": library_versions(self.libraries),
        }
        if self.kind != "dense":  # a dense model's key is what it always was, so its caches stay valid
            settings["kind"] = self.kind
        return settings


@runtime_checkable
class Encoder(Protocol):
    meta: EncoderMeta

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray: ...

    def encode_documents(self, texts: Sequence[str]) -> np.ndarray: ...


@runtime_checkable
class NestedEncoder(Encoder, Protocol):
    """A contextual encoder: each chunk's vector sees its whole document."""

    def encode_nested(self, documents: Sequence[Sequence[str]]) -> list[np.ndarray]: ...


@runtime_checkable
class LateInteractionEncoder(Encoder, Protocol):
    """A late-interaction encoder (meta.kind "multi-vector"): one float32 (tokens, d) matrix per text.

    The matrices are what the model's own MaxSim scores (after its prompts, markers, skiplist and
    normalization), before any quantization. It is an `Encoder` too, so every loader and check that
    takes an encoder takes it; its `encode_queries` / `encode_documents` refuse, since one vector per
    text would be another model, and a dense path reaching it must stop rather than score something.
    """

    def encode_queries_multi(self, texts: Sequence[str]) -> list[np.ndarray]: ...

    def encode_documents_multi(self, texts: Sequence[str]) -> list[np.ndarray]: ...


@runtime_checkable
class SearchModel(Protocol):
    """A model that ranks a corpus itself (e.g. BM25): no vectors, no precisions."""

    meta: EncoderMeta

    def index(self, doc_ids: Sequence[str], texts: Sequence[str]) -> None: ...

    def search(self, queries: Sequence[str], k: int) -> list[dict[str, float]]: ...
