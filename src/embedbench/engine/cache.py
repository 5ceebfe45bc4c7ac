"""The embedding cache: each text is encoded once per (encode settings, role, text).

Layout under ``root``::

    embeddings/<namespace>/key.json              settings + role, human-readable
    embeddings/<namespace>/<uuid>.npy            float32 (m, d): one persisted chunk
    embeddings/<namespace>/<uuid>.keys.json      {"format", "dim", "n", "keys": [m text hashes]}
    embeddings/<namespace>/.lock                 held (flock) by the run encoding into the namespace

``<namespace>`` is ``sha256(json.dumps({"settings": ..., "role": ...}, sort_keys=True))[:24]``.
A text's key is the first 32 hex digits of the sha256 of its UTF-8 bytes.

A multi-vector model's namespace (its settings say ``"kind": "multi-vector"``) holds token matrices
the same way: a chunk's ``.npy`` is the flat float32 (total tokens, d) array of its texts' token
vectors, and its keys file adds ``"offsets"`` (n + 1 integers: text i's rows are
``offsets[i]:offsets[i + 1]``). Same keys, atomic writes, locking and resuming; see
``get_or_encode_tokens`` and ``token_matrices``. A chunk of the other layout is ignored (warned).

Every file is written through ``embedbench.atomic`` (temp name, fsync, ``os.replace``), the
``.npy`` first and the ``.keys.json`` last, so a chunk becomes visible only once complete. A killed
run leaves at worst an orphan ``.npy`` or a ``.tmp-*`` file, which readers ignore; the next run
re-encodes only what no complete chunk holds.

A run encodes only while holding ``fcntl.flock`` on ``<namespace>/.lock`` (take the lock, refresh
the index, encode what is still missing, release), so two runs sharing a cache encode each text
once: the one that waited finds the other's chunks and encodes nothing they hold. Other code (a
cache prune) must not remove a namespace while ``namespace_locked(path)`` is True, and should hold
``namespace_lock(path)`` itself while removing it. Duplicate chunks (from older versions, or a
namespace written without the lock) are harmless: every reader prefers, for each text, the chunk
with the smallest (mtime of its keys file, chunk id), so all processes score the same vector.

Each object indexes a namespace in numpy arrays, about 24 bytes a text (the key's 16 bytes, a chunk
number, a row): a table sorted by key, and a small one for the chunks added since, merged into the
first when it passes an eighth of its size. So a refresh (before each encoded chunk) costs about the
size of what is new, and a batch of keys is looked up by binary search, without a dict per text.

Besides ``get_or_encode``, a distributed encoder (a driver and worker processes) uses:

* ``lock(settings, role)``: the namespace lock as a context manager (re-entrant within one object),
  for a driver to hold while its workers fill the namespace;
* ``missing(settings, role, texts)``: the distinct texts no chunk holds yet;
* ``store(settings, role, texts, vectors)``: persist one chunk, validated like an encoder's output,
  without taking the lock (a worker's write while its driver holds it);
* ``text_keys(texts)``: the texts' keys as a compact ``S16`` array (16 raw bytes each);
* ``vectors(settings, role, keys)``: the cached rows of such keys, in order (ModelError if any is
  not cached); ``token_matrices(settings, role, keys)`` the same for a multi-vector namespace.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import uuid
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from embedbench.atomic import atomic_write, atomic_write_text, exclusive_lock, is_locked
from embedbench.data.locations import default_cache_dir
from embedbench.errors import ModelError
from embedbench.engine.progress import progress_bars
from embedbench.scoring.token_matrices import TokenMatrices, token_rows

__all__ = ["EmbeddingCache", "default_cache_dir", "namespace_id", "namespace_lock", "namespace_locked",
           "text_key", "text_keys"]

_FORMAT = 1
_KEYS_SUFFIX = ".keys.json"
_CHUNK_KEYS_RE = re.compile(r"^([0-9a-f]{32})\.keys\.json$")
LOCK_NAME = ".lock"
_KEY = np.dtype("S16")  # a text key as its 16 raw bytes
_RECENT_MIN = 1 << 16  # the recent-chunks table is merged into the main one past max(this, main / 8)
_ADD_BATCH = 1 << 21  # a refresh indexes the keys of new chunks about this many at a time


def namespace_id(settings: dict, role: str) -> str:
    """The directory name for one (settings, role): 24 hex digits of a sha256.

    ``settings`` must be JSON-serializable (a TypeError says otherwise): a
    lossy fallback such as ``default=str`` could give two different settings
    the same key, or one setting a different key in every process.
    """
    blob = json.dumps({"settings": settings, "role": role}, sort_keys=True)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:24]


@contextmanager
def namespace_lock(path: Path | str, *, wait: bool = True) -> Iterator[bool]:
    """Hold the lock of the namespace folder ``path`` (created if absent); yields True while held.

    With ``wait=False`` yields False at once when a run is encoding into the namespace. The lock
    dies with its process, so a killed run never leaves the namespace locked.
    """
    with exclusive_lock(Path(path) / LOCK_NAME, wait=wait) as held:
        yield held


def namespace_locked(path: Path | str) -> bool:
    """Whether a run is encoding into the namespace folder ``path`` right now."""
    return is_locked(Path(path) / LOCK_NAME)


def text_key(text: str) -> str:
    """32 hex digits of the sha256 of the text's UTF-8 bytes (lone surrogates kept as-is)."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def text_keys(texts: Sequence[str]) -> np.ndarray:
    """The keys of ``texts`` as a fresh ``S16`` array: item i is the 16 bytes whose hex is ``text_key(texts[i])``.

    16 bytes a text (160 MB for 10^7 texts). Pass it whole (or sliced) to ``EmbeddingCache.vectors``;
    NumPy drops trailing zero bytes when it hands out one item as ``bytes``, so take an item's hex
    from ``arr[i:i+1].tobytes().hex()``, not ``arr[i].hex()``.
    """
    digests = []
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise TypeError(f"texts[{i}] is {type(t).__name__}, not str")
        digests.append(hashlib.sha256(t.encode("utf-8", "surrogatepass")).digest()[:16])
    return np.frombuffer(bytearray(b"".join(digests)), dtype=_KEY)


@dataclass
class _Table:
    """Index entries sorted by key, one per key: the key as two uint64 halves, its chunk number and row."""

    hi: np.ndarray
    lo: np.ndarray
    chunk: np.ndarray  # int32
    row: np.ndarray  # int32

    @classmethod
    def empty(cls) -> _Table:
        u64, i32 = np.empty(0, np.uint64), np.empty(0, np.int32)
        return cls(u64, u64.copy(), i32, i32.copy())

    def __len__(self) -> int:
        return len(self.hi)

    def columns(self) -> tuple[np.ndarray, ...]:
        return self.hi, self.lo, self.chunk, self.row

    def subset(self, which: np.ndarray) -> _Table:
        return _Table(*(a[which] for a in self.columns()))

    def search(self, hi: np.ndarray, lo: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(where each key is, or would be inserted; whether it is there). Fastest with ``hi`` sorted."""
        n = len(self)
        pos = np.searchsorted(self.hi, hi)
        if n == 0:
            return pos, np.zeros(len(hi), dtype=bool)
        while True:  # keys sharing ``hi`` are sorted by ``lo``: step over the smaller ones (rare)
            at = np.minimum(pos, n - 1)
            same_hi = (pos < n) & (self.hi[at] == hi)
            step = same_hi & (self.lo[at] < lo)
            if not step.any():
                return pos, same_hi & (self.lo[at] == lo)
            pos += step

    def preferred(self, rank: np.ndarray) -> _Table:
        """Sorted by key, keeping for each key the entry of the best-ranked chunk (then its first row)."""
        order = _key_order(self.hi, self.lo, rank[self.chunk] << 32 | self.row)
        return self.subset(order[_run_starts(self.hi[order], self.lo[order])])

    def absorb(self, batch: _Table, rank: np.ndarray) -> tuple[_Table, np.ndarray]:
        """Point keys held by both at ``batch``'s entry where its chunk ranks first.

        Returns the entries of ``batch`` with keys not held here, and where they would be inserted.
        """
        pos, found = self.search(batch.hi, batch.lo)
        at, src = pos[found], np.flatnonzero(found)
        better = rank[batch.chunk[src]] < rank[self.chunk[at]]
        self.chunk[at[better]] = batch.chunk[src[better]]
        self.row[at[better]] = batch.row[src[better]]
        return batch.subset(~found), pos[~found]

    def merged(self, other: _Table, pos: np.ndarray) -> _Table:
        """A new table: this one with ``other`` (keys not held here, sorted) inserted at ``pos``."""
        at = pos + np.arange(len(other))
        mine = np.ones(len(self) + len(other), dtype=bool)
        mine[at] = False
        columns = []
        for a, b in zip(self.columns(), other.columns(), strict=True):
            out = np.empty(len(mine), dtype=a.dtype)
            out[at], out[mine] = b, a
            columns.append(out)
        return _Table(*columns)


class _Index:
    """Text key -> (chunk number, row) in the preferred chunk holding it; about 24 bytes a key.

    ``main`` holds most keys, ``recent`` those of the chunks added since ``main`` was last rebuilt
    (no key is in both); ``recent`` is merged into ``main`` when it passes an eighth of its size. So
    adding a chunk costs about its size plus ``recent``'s, amortized, and a lookup is two binary
    searches. A key held by several chunks points at the one with the smallest (mtime_ns of its keys
    file, chunk id), whatever order the chunks were added in.
    """

    def __init__(self) -> None:
        self.chunk_ids: list[str] = []  # chunk number -> chunk id
        self.mtimes: list[int] = []  # chunk number -> mtime_ns of its keys file
        self.main = _Table.empty()
        self.recent = _Table.empty()

    def __len__(self) -> int:
        return len(self.main) + len(self.recent)

    @property
    def nbytes(self) -> int:
        """Bytes held by the key tables (the chunk table, one entry a chunk, is not counted)."""
        return sum(a.nbytes for t in (self.main, self.recent) for a in t.columns())

    def add(self, chunks: list[tuple[str, int, np.ndarray]]) -> None:
        """Index chunks given as (chunk id, mtime_ns of its keys file, its keys as ``S16``)."""
        if not chunks:
            return
        first = len(self.chunk_ids)
        sizes = [len(keys) for _id, _mtime, keys in chunks]
        for chunk_id, mtime_ns, _keys in chunks:
            self.chunk_ids.append(chunk_id)
            self.mtimes.append(mtime_ns)
        hi, lo = _halves(np.concatenate([keys for _id, _mtime, keys in chunks]))
        number = np.repeat(np.arange(first, len(self.chunk_ids), dtype=np.int32), sizes)
        row = np.concatenate([np.arange(n, dtype=np.int32) for n in sizes])
        rank = self._rank()
        batch, _pos = self.main.absorb(_Table(hi, lo, number, row).preferred(rank), rank)
        self.recent = self.recent.merged(*self.recent.absorb(batch, rank))
        if len(self.recent) > max(len(self.main) // 8, _RECENT_MIN):
            pos, _found = self.main.search(self.recent.hi, self.recent.lo)
            self.main, self.recent = self.main.merged(self.recent, pos), _Table.empty()

    def lookup(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(chunk number, row) of each ``S16`` key, as int32 arrays; chunk number -1 where none holds it."""
        hi, lo = _halves(keys)
        order = np.argsort(hi)  # searched in key order, the tables are read front to back
        hi, lo = hi[order], lo[order]
        chunk = np.full(len(order), -1, dtype=np.int32)
        row = np.zeros(len(order), dtype=np.int32)
        for table in (self.main, self.recent):
            pos, found = table.search(hi, lo)
            chunk[order[found]] = table.chunk[pos[found]]
            row[order[found]] = table.row[pos[found]]
        return chunk, row

    def drop(self, numbers: list[int]) -> None:
        """Forget the keys read from these chunks (gone bad), so that they are encoded again."""
        self.main = self.main.subset(~np.isin(self.main.chunk, numbers))
        self.recent = self.recent.subset(~np.isin(self.recent.chunk, numbers))

    def _rank(self) -> np.ndarray:
        """Each chunk number's place in (mtime_ns, chunk id) order, as int64: the smaller is preferred."""
        order = sorted(range(len(self.chunk_ids)), key=lambda c: (self.mtimes[c], self.chunk_ids[c]))
        rank = np.empty(len(order), dtype=np.int64)
        rank[order] = np.arange(len(order))
        return rank


@dataclass
class _Namespace:
    """What this object knows about one namespace directory."""

    path: Path
    dim: int | None = None
    index: _Index = field(default_factory=_Index)
    # chunk ids already looked at (loaded or rejected), so a refresh reads only new ones.
    seen: set[str] = field(default_factory=set)
    locked: bool = False  # this object holds the namespace lock
    tokens: bool = False  # holds token matrices (a multi-vector model's), not one vector a text
    offsets: dict[str, np.ndarray] = field(default_factory=dict)  # token namespaces: chunk id -> offsets


class EmbeddingCache:
    """Encode-once storage of float32 embeddings, safe to share between processes.

    One object may serve many namespaces; it keeps an index per namespace and
    refreshes it from the directory listing on each call, so chunks added by
    other processes (or other objects) are picked up. Not meant to be used from
    several threads at once; several processes are fine.

    ``stats`` counts, over this object's lifetime, the *distinct* texts served
    from the cache (``hits``, by ``get_or_encode`` and ``vectors``) and the
    distinct texts persisted (``encoded``: passed to ``encode``, or given to
    ``store``); a duplicate within one call counts once. Reset it by assigning
    a fresh dict.
    """

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root).expanduser()
        self.stats: dict[str, int] = {"hits": 0, "encoded": 0}
        self._namespaces: dict[str, _Namespace] = {}

    text_keys = staticmethod(text_keys)

    # ------------------------------------------------------------------ public

    def namespace_dir(self, settings: dict, role: str) -> Path:
        return self.root / "embeddings" / namespace_id(settings, role)

    def get_or_encode(
        self,
        settings: dict,
        role: str,
        texts: Sequence[str],
        encode: Callable[[list[str]], np.ndarray],
        chunk_size: int = 2048,
        progress: str | None = None,
    ) -> np.ndarray:
        """float32 ``(len(texts), d)``, rows in the order of ``texts``.

        Only texts not yet cached are passed to ``encode``, ``chunk_size`` at a
        time, each distinct text once; every chunk is persisted as soon as it
        is encoded, so a killed run resumes where it stopped. Before each chunk
        the index is refreshed, so texts another process cached meanwhile are
        skipped. ``encode`` must return a 2-D float array with one finite row
        per text and the same dimension as the namespace's existing chunks;
        otherwise ModelError, and nothing of that chunk is persisted.

        The result is a fresh, writable array owned by the caller (no view of
        the cache files). Empty ``texts`` returns ``(0, d)`` when the namespace
        already holds vectors of dimension ``d``, else ``(0, 0)``; ``encode`` is
        not called.
        """
        return self._get_or_encode(settings, role, texts, encode, chunk_size, progress, tokens=False)

    def get_or_encode_tokens(
        self,
        settings: dict,
        role: str,
        texts: Sequence[str],
        encode: Callable[[list[str]], Sequence[np.ndarray]],
        chunk_size: int = 256,
        progress: str | None = None,
    ) -> TokenMatrices:
        """``get_or_encode`` for a multi-vector model: each text's (tokens, d) matrix, in the order of ``texts``.

        ``encode`` returns one 2-D float matrix per text (a text may have no token), all of one width,
        finite; otherwise ModelError and nothing of that chunk is persisted. Chunks of ``chunk_size``
        texts (a chunk holds all their tokens). Same resuming, locking and counting as ``get_or_encode``.
        """
        return self._get_or_encode(settings, role, texts, encode, chunk_size, progress, tokens=True)

    def _get_or_encode(self, settings: dict, role: str, texts: Sequence[str], encode: Callable, chunk_size: int,
                       progress: str | None, *, tokens: bool) -> np.ndarray | TokenMatrices:
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
        keys = text_keys(texts)
        first, inverse = _distinct(keys)
        unique = keys[first]
        ns_id = namespace_id(settings, role)
        ns = self._namespace(ns_id, tokens)
        if not len(keys):
            self._refresh(ns)
            return _empty(ns)
        encoded = 0
        for _attempt in range(3):
            self._refresh(ns)
            if (ns.index.lookup(unique)[0] < 0).any():
                with self._locked(ns):
                    self._refresh(ns)  # what a run holding the lock before us wrote
                    encoded += self._encode_missing(ns, settings, role, _model_label(settings, ns_id), unique,
                                                    [texts[i] for i in first], encode, chunk_size, progress)
            try:
                out = self._gather(ns, *ns.index.lookup(unique))
            except _StaleChunks:
                # A chunk vanished or went bad between indexing and reading:
                # it is dropped from the index; go round again and re-encode.
                continue
            self.stats["hits"] += max(len(unique) - encoded, 0)
            return out if len(unique) == len(keys) else _rows(out, inverse)
        raise ModelError(f"embedding cache {ns.path} keeps losing chunks while being read")

    @contextmanager
    def lock(self, settings: dict, role: str) -> Iterator[None]:
        """Hold the lock of the (settings, role) namespace for the block, as a run encoding into it does.

        Says once on stderr when another run holds it, then waits. Re-entrant within this object: its
        own ``get_or_encode`` inside the block encodes without waiting for itself. ``store`` never
        takes the lock, so worker processes can persist chunks while a driver holds it.
        """
        with self._locked(self._namespace(namespace_id(settings, role))):
            yield

    def missing(self, settings: dict, role: str, texts: Sequence[str], *, tokens: bool = False) -> list[str]:
        """The distinct ``texts`` no complete chunk holds (after a refresh), in order of first occurrence.
        ``tokens``: the namespace holds token matrices (a multi-vector model's)."""
        keys = text_keys(texts)
        first, _inverse = _distinct(keys)
        ns = self._namespace(namespace_id(settings, role), tokens)
        self._refresh(ns)
        return [texts[i] for i in first[ns.index.lookup(keys[first])[0] < 0]]

    def store(self, settings: dict, role: str, texts: Sequence[str], vectors: object) -> None:
        """Persist ``vectors`` (row i for ``texts[i]``) as one chunk, without taking the namespace lock.

        ``vectors`` is checked as ``get_or_encode`` checks an encoder's output (2-D, one finite float
        row per text, the dimension of the namespace's chunks), else ModelError and nothing is written.
        A text given twice is stored once, with its first row; texts already cached are stored again
        (harmless: readers keep preferring the older chunk). Counted in ``stats["encoded"]``. No texts:
        nothing is checked or written.
        """
        keys = text_keys(texts)
        if not len(keys):
            return
        first, _inverse = _distinct(keys)
        ns_id = namespace_id(settings, role)
        ns = self._namespace(ns_id, False)
        if ns.dim is None:
            ns.dim = self._first_dim(ns)
        arr = self._validated(vectors, len(keys), ns, _model_label(settings, ns_id))
        self._persist(ns, settings, role, keys[first], arr[first])
        self.stats["encoded"] += len(first)

    def vectors(self, settings: dict, role: str, keys: np.ndarray | Sequence[str]) -> np.ndarray:
        """float32 ``(len(keys), d)``: the cached row of each text key, in order, read from the chunks.

        ``keys`` is a ``text_keys`` array, or text keys as 32-hex-digit strings (a list or a numpy
        array). ModelError, saying how many distinct keys are missing, when any is not cached after a
        refresh. A fresh, writable array; distinct keys count in ``stats["hits"]``. No keys give
        ``(0, d)``, or ``(0, 0)`` while the namespace holds no vectors.
        """
        return self._cached(settings, role, keys, tokens=False)

    def token_matrices(self, settings: dict, role: str, keys: np.ndarray | Sequence[str]) -> TokenMatrices:
        """``vectors`` for a multi-vector namespace: the cached token matrix of each text key, in order."""
        return self._cached(settings, role, keys, tokens=True)

    def _cached(self, settings: dict, role: str, keys: np.ndarray | Sequence[str], *,
                tokens: bool) -> np.ndarray | TokenMatrices:
        keys = _as_keys(keys)
        first, inverse = _distinct(keys)
        unique = keys[first]
        ns = self._namespace(namespace_id(settings, role), tokens)
        if not len(keys):
            self._refresh(ns)
            return _empty(ns)
        for _attempt in range(3):
            self._refresh(ns)
            chunk, row = ns.index.lookup(unique)
            absent = int(np.count_nonzero(chunk < 0))
            if absent:
                raise ModelError(f"{absent} of {len(unique)} distinct text keys are not in the "
                                 f"embedding cache {ns.path}")
            try:
                out = self._gather(ns, chunk, row)
            except _StaleChunks:
                continue  # its keys are dropped: they are reported missing next round
            self.stats["hits"] += len(unique)
            return out if len(unique) == len(keys) else _rows(out, inverse)
        raise ModelError(f"embedding cache {ns.path} keeps losing chunks while being read")

    # ---------------------------------------------------------------- encoding

    @contextmanager
    def _locked(self, ns: _Namespace) -> Iterator[None]:
        """The namespace lock, unless this object holds it already (then a no-op)."""
        if ns.locked:
            yield
            return
        with self._flock(ns):
            ns.locked = True
            try:
                yield
            finally:
                ns.locked = False

    @staticmethod
    @contextmanager
    def _flock(ns: _Namespace) -> Iterator[None]:
        """The namespace lock; says once on stderr when another run holds it (we then wait)."""
        with namespace_lock(ns.path, wait=False) as held:
            if held:
                yield
                return
        print(f"embedbench: waiting for another run encoding into {ns.path}", file=sys.stderr)
        with namespace_lock(ns.path):
            yield

    def _encode_missing(self, ns: _Namespace, settings: dict, role: str, label: str, keys: np.ndarray,
                        texts: list[str], encode: Callable[[list[str]], np.ndarray], chunk_size: int,
                        progress: str | None) -> int:
        """Encode and persist chunk by chunk the distinct ``keys`` (of ``texts``) not cached; returns how many."""
        pending = np.flatnonzero(ns.index.lookup(keys)[0] < 0)
        encoded = pos = 0
        with tqdm(total=len(pending), desc=progress, unit="text", file=sys.stderr,
                  disable=not len(pending) or not progress_bars(), dynamic_ncols=True) as bar:
            while pos < len(pending):
                if pos:  # another process may have cached some of the rest meanwhile
                    self._refresh(ns)
                chunk, end = _next_chunk(ns.index, keys, pending, pos, chunk_size)
                if len(chunk):
                    vectors = self._validated(encode([texts[i] for i in chunk]), len(chunk), ns, label)
                    self._persist(ns, settings, role, keys[chunk], vectors)
                    encoded += len(chunk)
                    self.stats["encoded"] += len(chunk)
                bar.update(end - pos)
                pos = end
        return encoded

    @staticmethod
    def _validated(out: object, n: int, ns: _Namespace, label: str) -> np.ndarray | TokenMatrices:
        if ns.tokens:
            return _validated_tokens(out, n, ns, label)
        try:
            arr = np.asarray(out)
        except Exception as exc:  # e.g. a GPU tensor
            raise ModelError(f"model {label} returned {type(out).__name__}, "
                             f"not an array: {exc}") from exc
        if arr.ndim != 2 or arr.shape[0] != n:
            raise ModelError(f"model {label} returned an array of shape {arr.shape} "
                             f"for {n} texts; expected ({n}, dim)")
        if not np.issubdtype(arr.dtype, np.floating):
            raise ModelError(f"model {label} returned {arr.dtype} embeddings; expected floats")
        if arr.shape[1] == 0:
            raise ModelError(f"model {label} returned 0-dimensional embeddings")
        if ns.dim is not None and arr.shape[1] != ns.dim:
            raise ModelError(f"model {label} returned {arr.shape[1]}-dim embeddings but the "
                             f"cache {ns.path} holds {ns.dim}-dim ones for the same settings")
        with np.errstate(over="ignore"):  # float64 beyond float32 range becomes inf: caught below
            arr = np.ascontiguousarray(arr, dtype=np.float32)
        bad = int(np.count_nonzero(~np.isfinite(arr).all(axis=1)))
        if bad:
            raise ModelError(f"model {label} returned NaN embeddings for {bad} texts "
                             f"(non-finite values in {bad} of {n} rows)")
        return arr

    def _persist(self, ns: _Namespace, settings: dict, role: str, keys: np.ndarray,
                 vectors: np.ndarray | TokenMatrices) -> None:
        """Write one chunk (``S16`` keys, their rows; or their token matrices, flat, and offsets) and index it."""
        key_path = ns.path / "key.json"
        if not key_path.exists():  # every chunk: a `cache prune` may have removed the namespace meanwhile
            atomic_write_text(key_path, json.dumps({"format": _FORMAT, "settings": settings, "role": role},
                                                   sort_keys=True, indent=2))
        chunk_id = uuid.uuid4().hex
        meta: dict[str, object] = {"format": _FORMAT, "n": len(keys), "keys": _hex_list(keys)}
        if isinstance(vectors, TokenMatrices):
            meta["offsets"] = vectors.offsets.tolist()
            ns.offsets[chunk_id] = vectors.offsets
            vectors = vectors.flat
        dim = int(vectors.shape[1])
        keys_body = json.dumps({"dim": dim, **meta})
        # Data first, keys last: the keys file is what makes the chunk visible.
        atomic_write(ns.path / f"{chunk_id}.npy", lambda f: np.save(f, vectors))
        keys_path = atomic_write_text(ns.path / f"{chunk_id}{_KEYS_SUFFIX}", keys_body)
        ns.seen.add(chunk_id)
        if ns.dim is None:
            ns.dim = dim
        # Ranked by the same stat every reader sees, not "my own chunk first".
        ns.index.add([(chunk_id, keys_path.stat().st_mtime_ns, keys)])

    # ----------------------------------------------------------------- reading

    def _namespace(self, ns_id: str, tokens: bool = False) -> _Namespace:
        ns = self._namespaces.get(ns_id)
        if ns is None:
            ns = _Namespace(path=self.root / "embeddings" / ns_id, tokens=tokens)
            self._namespaces[ns_id] = ns
        if ns.tokens != tokens:
            raise ValueError(f"cache namespace {ns.path} holds {'token matrices' if ns.tokens else 'vectors'}, "
                             f"not {'token matrices' if tokens else 'vectors'}")
        return ns

    def _refresh(self, ns: _Namespace) -> None:
        """Index the complete chunks that appeared since the last look."""
        batch: list[tuple[str, int, np.ndarray]] = []
        for mtime, chunk_id in self._unseen(ns):
            ns.seen.add(chunk_id)
            loaded = self._load_chunk(ns, chunk_id)
            if loaded is None:
                continue
            dim, chunk_keys, offsets = loaded
            if ns.dim is None:
                ns.dim = dim
            if offsets is not None:
                ns.offsets[chunk_id] = offsets
            batch.append((chunk_id, mtime, chunk_keys))
            if sum(len(keys) for _id, _mtime, keys in batch) >= _ADD_BATCH:
                ns.index.add(batch)
                batch = []
        ns.index.add(batch)

    def _first_dim(self, ns: _Namespace) -> int | None:
        """The dimension a refresh would give the namespace: that of its first chunk, in (mtime_ns, id) order, that loads."""
        for _mtime, chunk_id in self._unseen(ns):
            loaded = self._load_chunk(ns, chunk_id)
            if loaded is not None:
                return loaded[0]
        return None

    @staticmethod
    def _unseen(ns: _Namespace) -> list[tuple[int, str]]:
        """(mtime_ns of its keys file, chunk id) of each complete chunk not looked at yet, sorted."""
        try:
            entries = list(os.scandir(ns.path))
        except FileNotFoundError:
            return []
        new: list[tuple[int, str]] = []
        for entry in entries:
            m = _CHUNK_KEYS_RE.match(entry.name)
            if m is None or m.group(1) in ns.seen:
                continue
            try:
                mtime = entry.stat().st_mtime_ns
            except FileNotFoundError:
                continue
            new.append((mtime, m.group(1)))
        return sorted(new)

    @staticmethod
    def _load_chunk(ns: _Namespace, chunk_id: str) -> tuple[int, np.ndarray, np.ndarray | None] | None:
        """(dim, ``S16`` keys, token offsets or None) of a complete, consistent chunk of the namespace's layout;
        None (with a warning) otherwise."""
        keys_path = ns.path / f"{chunk_id}{_KEYS_SUFFIX}"
        npy_path = ns.path / f"{chunk_id}.npy"
        try:
            meta = json.loads(keys_path.read_text(encoding="utf-8"))
            dim, n, chunk_keys = int(meta["dim"]), int(meta["n"]), meta["keys"]
            if not isinstance(chunk_keys, list) or len(chunk_keys) != n:
                raise ValueError("keys do not match n")
            keys = _keys_from_hex(chunk_keys)
            offsets = _chunk_offsets(meta, n, ns.tokens)
            rows = n if offsets is None else int(offsets[-1])
            data = np.load(npy_path, mmap_mode="r")
            shape, dtype = data.shape, data.dtype
            del data
            if shape != (rows, dim) or dtype != np.float32:
                raise ValueError(f"array is {dtype} {shape}, keys say float32 ({rows}, {dim})")
            if ns.dim is not None and dim != ns.dim:
                raise ValueError(f"dim {dim} differs from the namespace's {ns.dim}")
        except (OSError, ValueError, KeyError, TypeError, EOFError) as exc:
            warnings.warn(f"ignoring bad embedding-cache chunk {keys_path}: {exc}",
                          RuntimeWarning, stacklevel=3)
            return None
        return dim, keys, offsets

    def _gather(self, ns: _Namespace, chunk: np.ndarray, row: np.ndarray) -> np.ndarray:
        """The rows at (chunk number, row), each chunk read once through mmap; _StaleChunks if one went bad."""
        if (chunk < 0).any():
            raise _StaleChunks([])
        if ns.tokens:
            return self._gather_tokens(ns, chunk, row)
        out = np.empty((len(chunk), ns.dim or 0), dtype=np.float32)
        parts = _chunk_parts(chunk, row)

        def copy(part: np.ndarray, data: np.ndarray) -> None:
            rows = row[part]
            if data.ndim != 2 or data.shape[1] != ns.dim or rows[-1] >= data.shape[0]:
                raise ValueError(f"shape {data.shape}")
            out[part] = data[rows]

        _read_chunks(ns, chunk, parts, copy)
        return out

    def _gather_tokens(self, ns: _Namespace, chunk: np.ndarray, row: np.ndarray) -> TokenMatrices:
        """``_gather`` for token matrices: each text's token rows, in order, each chunk read once through mmap."""
        parts = _chunk_parts(chunk, row)
        starts, lengths = np.zeros(len(chunk), np.int64), np.zeros(len(chunk), np.int64)
        for part in parts:
            offsets = ns.offsets[ns.index.chunk_ids[int(chunk[part[0]])]]
            starts[part], lengths[part] = offsets[row[part]], offsets[row[part] + 1] - offsets[row[part]]
        out = TokenMatrices(np.empty((int(lengths.sum()), ns.dim or 0), dtype=np.float32),
                            np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64))

        def copy(part: np.ndarray, data: np.ndarray) -> None:
            number = int(chunk[part[0]])
            if data.ndim != 2 or data.shape != (int(ns.offsets[ns.index.chunk_ids[number]][-1]), ns.dim):
                raise ValueError(f"shape {data.shape}")
            out.flat[token_rows(out.offsets[part], lengths[part])] = data[token_rows(starts[part], lengths[part])]

        _read_chunks(ns, chunk, parts, copy)
        return out


class _StaleChunks(Exception):
    pass


def _chunk_offsets(meta: dict, n: int, tokens: bool) -> np.ndarray | None:
    """A token chunk's offsets (n + 1, from 0, non-decreasing), checked; None for a vector chunk.
    ValueError for a chunk of the other layout than the namespace's."""
    if ("offsets" in meta) != tokens:
        raise ValueError("a chunk of token matrices in a vector namespace" if "offsets" in meta
                         else "a chunk of vectors in a namespace of token matrices")
    if not tokens:
        return None
    offsets = np.asarray(meta["offsets"])
    if offsets.shape != (n + 1,) or not np.issubdtype(offsets.dtype, np.integer) or (n >= 0 and offsets[0] != 0) \
            or (np.diff(offsets) < 0).any():
        raise ValueError("token offsets must be n + 1 non-decreasing integers from 0")
    return offsets.astype(np.int64)


def _empty(ns: _Namespace) -> np.ndarray | TokenMatrices:
    """No texts: (0, d) vectors, or no token matrices, of the namespace's width (0 while it holds none)."""
    return TokenMatrices.from_list([], ns.dim or 0) if ns.tokens else np.zeros((0, ns.dim or 0), dtype=np.float32)


def _rows(out: np.ndarray | TokenMatrices, which: np.ndarray) -> np.ndarray | TokenMatrices:
    return out.take(which) if isinstance(out, TokenMatrices) else out[which]


def _validated_tokens(out: object, n: int, ns: _Namespace, label: str) -> TokenMatrices:
    """A multi-vector encoder's output checked like vectors are: one 2-D float matrix per text, one width
    (the namespace's), finite values; a text may have no token."""
    if isinstance(out, TokenMatrices):
        out = out.to_list()
    try:
        matrices = [np.asarray(m) for m in out]  # type: ignore[union-attr]
    except Exception as exc:  # e.g. GPU tensors, or not a sequence
        raise ModelError(f"model {label} returned {type(out).__name__}, not a list of token matrices: {exc}") from exc
    if len(matrices) != n:
        raise ModelError(f"model {label} returned {len(matrices)} token matrices for {n} texts")
    widths = {m.shape[1] for m in matrices if m.ndim == 2}
    if any(m.ndim != 2 for m in matrices) or len(widths) > 1:
        raise ModelError(f"model {label} returned token matrices of shapes "
                         f"{sorted({m.shape for m in matrices})[:4]}; expected (tokens, dim) of one dim")
    if any(not np.issubdtype(m.dtype, np.floating) for m in matrices):
        raise ModelError(f"model {label} returned non-float token embeddings; expected floats")
    width = widths.pop() if widths else ns.dim
    if width == 0:
        raise ModelError(f"model {label} returned 0-dimensional token embeddings")
    if ns.dim is not None and width != ns.dim:
        raise ModelError(f"model {label} returned {width}-dim token embeddings but the "
                         f"cache {ns.path} holds {ns.dim}-dim ones for the same settings")
    with np.errstate(over="ignore"):  # float64 beyond float32 range becomes inf: caught below
        tokens = TokenMatrices.from_list([m.astype(np.float32, copy=False) for m in matrices], width)
    if not tokens.flat.shape[0] and width is None:
        raise ModelError(f"model {label} returned no token for any of {n} texts")
    bad = int(np.count_nonzero(~np.isfinite(tokens.flat).all(axis=1)))
    if bad:
        raise ModelError(f"model {label} returned NaN token embeddings ({bad} non-finite token rows)")
    return tokens


def _next_chunk(index: _Index, keys: np.ndarray, pending: np.ndarray, pos: int,
                size: int) -> tuple[np.ndarray, int]:
    """Up to ``size`` of ``pending[pos:]`` (positions in ``keys``) not indexed yet, and where the scan stopped."""
    parts = []
    found = 0
    while pos < len(pending) and found < size:
        window = pending[pos:pos + size - found]
        pos += len(window)
        parts.append(window[index.lookup(keys[window])[0] < 0])
        found += len(parts[-1])
    return (np.concatenate(parts) if parts else pending[:0]), pos


def _halves(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``S16`` keys as two contiguous uint64 arrays (their bytes in native order: any fixed order sorts)."""
    pairs = np.ascontiguousarray(keys, dtype=_KEY).view(np.uint64).reshape(-1, 2)
    return pairs[:, 0].copy(), pairs[:, 1].copy()


def _key_order(hi: np.ndarray, lo: np.ndarray, tiebreak: np.ndarray) -> np.ndarray:
    """The permutation sorting by (hi, lo, tiebreak): an argsort of ``hi``, a lexsort of the rows sharing it."""
    order = np.argsort(hi)
    sorted_hi = hi[order]
    tie = np.flatnonzero(sorted_hi[1:] == sorted_hi[:-1])
    if tie.size:
        slots = np.union1d(tie, tie + 1)  # whole runs of equal ``hi``, which keep their slots
        run = order[slots]
        order[slots] = run[np.lexsort((tiebreak[run], lo[run], hi[run]))]
    return order


def _run_starts(hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
    """For keys sorted by (hi, lo): True where a key differs from the one before it."""
    starts = np.ones(len(hi), dtype=bool)
    starts[1:] = (hi[1:] != hi[:-1]) | (lo[1:] != lo[:-1])
    return starts


def _distinct(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(the position of each distinct key's first occurrence, in order; each key's index among those)."""
    hi, lo = _halves(keys)
    order = _key_order(hi, lo, np.arange(len(keys)))
    starts = _run_starts(hi[order], lo[order])
    first = order[starts]  # sorted by key; the smallest position of each
    by_position = np.argsort(first)
    renumber = np.empty(len(first), dtype=np.intp)
    renumber[by_position] = np.arange(len(first))
    inverse = np.empty(len(keys), dtype=np.intp)
    inverse[order] = renumber[np.cumsum(starts) - 1]
    return first[by_position], inverse


def _keys_from_hex(hexes: list[str]) -> np.ndarray:
    """``S16`` keys from text keys as 32-hex-digit strings; ValueError (TypeError) for anything else."""
    if set(map(len, hexes)) - {32}:
        raise ValueError("text keys must be 32 hex digits")
    raw = bytes.fromhex("".join(hexes))
    if len(raw) != 16 * len(hexes):  # fromhex skips whitespace
        raise ValueError("text keys must be 32 hex digits")
    return np.frombuffer(raw, dtype=_KEY)


def _as_keys(keys: np.ndarray | Sequence[str]) -> np.ndarray:
    """``S16`` keys from a ``text_keys`` array, or from hex text keys in a list or a numpy array."""
    if isinstance(keys, np.ndarray):
        return keys if keys.dtype == _KEY else _keys_from_hex(keys.tolist())
    return _keys_from_hex(list(keys))


def _hex_list(keys: np.ndarray) -> list[str]:
    """``S16`` keys as the 32-hex-digit strings the keys files hold."""
    digits = keys.tobytes().hex()
    return [digits[i:i + 32] for i in range(0, len(digits), 32)]


def _model_label(settings: dict, ns_id: str) -> str:
    for name in ("fingerprint", "name", "model"):
        value = settings.get(name) if isinstance(settings, dict) else None
        if value:
            return str(value)
    return f"<cache namespace {ns_id}>"


def _chunk_parts(chunk: np.ndarray, row: np.ndarray) -> list[np.ndarray]:
    """Positions grouped by chunk number (chunks ascending, rows ascending within one)."""
    order = np.argsort(chunk.astype(np.int64) << 32 | row)
    return [p for p in np.split(order, np.flatnonzero(np.diff(chunk[order])) + 1) if len(p)]


def _read_chunks(ns: _Namespace, chunk: np.ndarray, parts: list[np.ndarray],
                 copy: Callable[[np.ndarray, np.ndarray], None]) -> None:
    """`copy(part, mmapped chunk)` for each part; a chunk that cannot be read (or whose shape `copy` refuses)
    is warned about and dropped from the index, and _StaleChunks raised once every chunk was tried."""
    stale: list[int] = []
    for part in parts:
        number = int(chunk[part[0]])
        path = ns.path / f"{ns.index.chunk_ids[number]}.npy"
        try:
            data = np.load(path, mmap_mode="r")
            copy(part, data)
            del data
        except (OSError, ValueError, EOFError) as exc:
            warnings.warn(f"embedding-cache chunk {path} unreadable: {exc}", RuntimeWarning, stacklevel=4)
            stale.append(number)
    if stale:
        ns.index.drop(stale)
        raise _StaleChunks(stale)
