"""A static feature-hashing encoder: signed counts of hashed UTF-8 byte n-grams, vectorized in numpy.

No weights and no torch: it exists to exercise the scale machinery (10^6-10^7 documents, precisions,
streaming) at millions of texts per minute, and as a cheap lexical-ish baseline. A text is lowercased,
padded with spaces, and every byte n-gram (n in `ngrams`, default 3, 4, 5; n-grams never cross two
texts) is hashed (polynomial hash, then a 64-bit mixer keyed by n and `seed`) to a bucket in [0, dim)
and a sign. Bucket sums are damped (sign(x) * log1p(|x|)), L2-normalized and rotated by a fixed
orthogonal matrix (random signs, then an orthonormal DCT-II): inner products are unchanged, but every
coordinate becomes dense, so sign binarization behaves like SimHash instead of reading zero buckets as
negative (short queries leave most buckets empty). Deterministic; the fingerprint names every setting.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from embedbench.encoders.protocol import EncoderMeta
from embedbench.encoders.settings import EncodeSettings
from embedbench.errors import EmbedbenchError

VERSION = "2"  # bump whenever a vector changes
_P = np.uint64(0x100000001B3)  # FNV prime, as the polynomial base
_M1 = np.uint64(0xBF58476D1CE4E5B9)  # splitmix64 constants
_M2 = np.uint64(0x94D049BB133111EB)
_CHUNK_BYTES = 256 << 10  # texts are hashed in chunks of about this many characters (cache-sized)


def _mix(h: np.ndarray, key: int) -> np.ndarray:
    """A keyed 64-bit finalizer (in place); its high 32 bits are well mixed."""
    h ^= np.uint64(key % 2**64)
    h *= _M1
    h ^= h >> np.uint64(29)
    h *= _M2
    return h


@lru_cache(maxsize=4)
def rotation(dim: int, seed: int) -> np.ndarray:
    """The (dim, dim) orthogonal float32 matrix diag(signs) @ DCT-II^T; signs are hashed from (seed, i)."""
    signs = _mix(np.arange(dim, dtype=np.uint64), 0xD1B54A32D192ED03 + seed * 0x632BE59BD9B4E019) >> np.uint64(63)
    n = np.arange(dim, dtype=np.float64)
    dct = np.sqrt(2.0 / dim) * np.cos(np.pi * (n[None, :] + 0.5) * n[:, None] / dim)  # rows k, columns n
    dct[0] /= np.sqrt(2.0)
    return ((1.0 - 2.0 * signs.astype(np.float64))[:, None] * dct.T).astype(np.float32)


class HashingEncoder:
    """Dense float32 vectors of hashed byte n-grams; same function for queries and documents."""

    def __init__(self, dim: int = 384, ngrams: Sequence[int] = (3, 4, 5), seed: int = 0, name: str = "hashing") -> None:
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 8:
            raise EmbedbenchError(f"hashing encoder: dim must be an integer >= 8, got {dim!r}")
        grams = tuple(sorted({int(n) for n in ngrams}))
        if not grams or grams[0] < 1 or grams[-1] > 8:
            raise EmbedbenchError(f"hashing encoder: ngrams must be between 1 and 8, got {list(ngrams)}")
        self.dim, self.ngrams, self.seed = dim, grams, int(seed)
        settings = f"dim={dim}:ngrams={','.join(map(str, grams))}:seed={self.seed}"
        self.meta = EncoderMeta(
            name=name,
            revision=f"v{VERSION}",
            fingerprint=f"hashing-v{VERSION}:{settings}",
            dim=dim,
            pooling="hashed-byte-ngrams",
            float_note="signed, log-damped bucket sums of hashed byte n-grams, L2-normalized",
            source="embedbench.encoders.hashing (no weights)",
            license="mit",
            libraries=(),  # numpy only: no torch / transformers / sentence-transformers code touches a vector
        )

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self.encode(texts)

    def encode_documents(self, texts: Sequence[str]) -> np.ndarray:
        return self.encode(texts)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        start, size = 0, 0
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                raise EmbedbenchError(f"hashing encoder: text {i} is {type(t).__name__}, not str")
            size += len(t) + 3
            if size >= _CHUNK_BYTES:
                out[start:i + 1] = self._chunk(texts[start:i + 1])
                start, size = i + 1, 0
        if start < len(texts):
            out[start:] = self._chunk(texts[start:])
        return out

    def _chunk(self, texts: Sequence[str]) -> np.ndarray:
        n, dim = len(texts), self.dim
        # Texts are joined with " \0 " so each is space-padded and n-grams never span a NUL.
        joined = " \x00 ".join(t.replace("\x00", " ") for t in texts)
        buf = np.frombuffer((" " + joined.lower() + " ").encode("utf-8"), dtype=np.uint8)
        seps = np.concatenate(([0], np.cumsum(buf == 0, dtype=np.int32)))  # seps[p]: NULs before byte p
        base = seps.astype(np.int64) * (2 * dim)  # first of the text's 2*dim (bucket, sign) slots
        counts = np.zeros(2 * n * dim, dtype=np.int64)
        h = buf.astype(np.uint64)  # rolling: h[p] is the hash of the g bytes starting at p
        for g in range(1, self.ngrams[-1] + 1):
            if g > 1:
                m = len(buf) - g + 1
                if m <= 0:
                    break
                h = h[:m] * _P + buf[g - 1:g - 1 + m]
            if g not in self.ngrams:
                continue
            m = len(h)
            valid = np.flatnonzero(seps[g:g + m] == seps[:m])  # n-grams with no separator inside
            mixed = _mix(h[valid], g * 0x9E3779B97F4A7C15 + self.seed * 0x632BE59BD9B4E019)
            # Multiply-shift of the high 32 bits onto [0, 2*dim): slot 2b is bucket b with sign +, 2b+1 with -.
            mixed >>= np.uint64(32)
            mixed *= np.uint64(2 * dim)
            mixed >>= np.uint64(32)
            counts += np.bincount(base[valid] + mixed.view(np.int64), minlength=2 * n * dim)
        pairs = counts.reshape(n, dim, 2)
        x = (pairs[:, :, 0] - pairs[:, :, 1]).astype(np.float32)
        x = np.sign(x) * np.log1p(np.abs(x))
        norms = np.linalg.norm(x, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        return ((x / norms).astype(np.float32) @ rotation(dim, self.seed)).astype(np.float32)


def build(settings: EncodeSettings | None = None) -> HashingEncoder:
    """Entry-point factory (`embedbench.encoders` group): the default 384-dimensional hashing encoder."""
    return HashingEncoder()
