"""The embedding cache: each text is encoded once per (encode settings, role, text).

Layout under ``root``::

    embeddings/<namespace>/key.json              settings + role, human-readable
    embeddings/<namespace>/<uuid>.npy            float32 (m, d): one persisted chunk
    embeddings/<namespace>/<uuid>.keys.json      {"format", "dim", "n", "keys": [m text hashes]}
    embeddings/<namespace>/.lock                 held (flock) by the run encoding into the namespace

``<namespace>`` is ``sha256(json.dumps({"settings": ..., "role": ...}, sort_keys=True))[:24]``.
A text's key is the first 32 hex digits of the sha256 of its UTF-8 bytes.

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

__all__ = ["EmbeddingCache", "default_cache_dir", "namespace_id", "namespace_lock", "namespace_locked",
           "text_key"]

_FORMAT = 1
_KEYS_SUFFIX = ".keys.json"
_CHUNK_KEYS_RE = re.compile(r"^([0-9a-f]{32})\.keys\.json$")
LOCK_NAME = ".lock"


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


@dataclass
class _Namespace:
    """What this object knows about one namespace directory."""

    path: Path
    dim: int | None = None
    # text key -> (chunk id, row in that chunk), from the preferred chunk holding the text.
    index: dict[str, tuple[str, int]] = field(default_factory=dict)
    # chunk id -> (mtime_ns of its keys file, chunk id): the smallest wins, in every process.
    rank: dict[str, tuple[int, str]] = field(default_factory=dict)
    # chunk ids already looked at (loaded or rejected), so a refresh reads only new ones.
    seen: set[str] = field(default_factory=set)
    key_written: bool = False


class EmbeddingCache:
    """Encode-once storage of float32 embeddings, safe to share between processes.

    One object may serve many namespaces; it keeps an index per namespace and
    refreshes it from the directory listing on each call, so chunks added by
    other processes (or other objects) are picked up. Not meant to be used from
    several threads at once; several processes are fine.

    ``stats`` counts, over this object's lifetime, the *distinct* texts served
    from the cache (``hits``) and the distinct texts passed to ``encode`` and
    persisted (``encoded``); a duplicate within one call counts once. Reset it
    by assigning a fresh dict.
    """

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root).expanduser()
        self.stats: dict[str, int] = {"hits": 0, "encoded": 0}
        self._namespaces: dict[str, _Namespace] = {}

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
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
        keys, first_text = _text_keys(texts)
        unique = list(first_text)  # distinct keys, in order of first occurrence
        ns_id = namespace_id(settings, role)
        ns = self._namespace(ns_id)
        label = _model_label(settings, ns_id)
        if not keys:
            self._refresh(ns)
            return np.zeros((0, ns.dim or 0), dtype=np.float32)
        encoded = 0
        for _attempt in range(3):
            self._refresh(ns)
            if any(k not in ns.index for k in unique):
                with self._locked(ns):
                    self._refresh(ns)  # what a run holding the lock before us wrote
                    pending = [k for k in unique if k not in ns.index]
                    encoded += self._encode_missing(ns, settings, role, label, pending, first_text,
                                                    encode, chunk_size, progress)
            try:
                out = self._gather(ns, unique, keys)
            except _StaleChunks:
                # A chunk vanished or went bad between indexing and reading:
                # it is dropped from the index; go round again and re-encode.
                continue
            self.stats["hits"] += max(len(unique) - encoded, 0)
            return out
        raise ModelError(f"embedding cache {ns.path} keeps losing chunks while being read")

    # ---------------------------------------------------------------- encoding

    @contextmanager
    def _locked(self, ns: _Namespace) -> Iterator[None]:
        """The namespace lock; says once on stderr when another run holds it (we then wait)."""
        with namespace_lock(ns.path, wait=False) as held:
            if held:
                yield
                return
        print(f"embedbench: waiting for another run encoding into {ns.path}", file=sys.stderr)
        with namespace_lock(ns.path):
            yield

    def _encode_missing(self, ns: _Namespace, settings: dict, role: str, label: str,
                        pending: list[str], first_text: dict[str, str],
                        encode: Callable[[list[str]], np.ndarray], chunk_size: int,
                        progress: str | None) -> int:
        """Encode and persist ``pending`` keys chunk by chunk; returns how many were encoded."""
        encoded = 0
        with tqdm(total=len(pending), desc=progress, unit="text", file=sys.stderr,
                  disable=not pending, dynamic_ncols=True) as bar:
            pos = 0
            while pos < len(pending):
                if pos:  # another process may have cached some of the rest meanwhile
                    self._refresh(ns)
                chunk: list[str] = []
                while pos < len(pending) and len(chunk) < chunk_size:
                    k = pending[pos]
                    pos += 1
                    if k in ns.index:
                        bar.update(1)
                    else:
                        chunk.append(k)
                if not chunk:
                    continue
                vectors = self._validated(encode([first_text[k] for k in chunk]),
                                          len(chunk), ns, label)
                self._persist(ns, settings, role, chunk, vectors)
                encoded += len(chunk)
                self.stats["encoded"] += len(chunk)
                bar.update(len(chunk))
        return encoded

    @staticmethod
    def _validated(out: object, n: int, ns: _Namespace, label: str) -> np.ndarray:
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

    def _persist(self, ns: _Namespace, settings: dict, role: str, chunk: list[str],
                 vectors: np.ndarray) -> None:
        if not ns.key_written:
            key_path = ns.path / "key.json"
            if not key_path.exists():
                atomic_write_text(key_path, json.dumps({"format": _FORMAT, "settings": settings, "role": role},
                                                       sort_keys=True, indent=2))
            ns.key_written = True
        chunk_id = uuid.uuid4().hex
        dim = int(vectors.shape[1])
        keys_body = json.dumps({"format": _FORMAT, "dim": dim, "n": len(chunk), "keys": chunk})
        # Data first, keys last: the keys file is what makes the chunk visible.
        atomic_write(ns.path / f"{chunk_id}.npy", lambda f: np.save(f, vectors))
        keys_path = atomic_write_text(ns.path / f"{chunk_id}{_KEYS_SUFFIX}", keys_body)
        ns.seen.add(chunk_id)
        if ns.dim is None:
            ns.dim = dim
        # Ranked by the same stat every reader sees, not "my own chunk first".
        _index_chunk(ns, chunk_id, keys_path.stat().st_mtime_ns, chunk)

    # ----------------------------------------------------------------- reading

    def _namespace(self, ns_id: str) -> _Namespace:
        ns = self._namespaces.get(ns_id)
        if ns is None:
            ns = _Namespace(path=self.root / "embeddings" / ns_id)
            self._namespaces[ns_id] = ns
        return ns

    def _refresh(self, ns: _Namespace) -> None:
        """Index the complete chunks that appeared since the last look."""
        try:
            entries = list(os.scandir(ns.path))
        except FileNotFoundError:
            return
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
        for mtime, chunk_id in sorted(new):
            ns.seen.add(chunk_id)
            loaded = self._load_chunk(ns, chunk_id)
            if loaded is None:
                continue
            dim, chunk_keys = loaded
            if ns.dim is None:
                ns.dim = dim
            _index_chunk(ns, chunk_id, mtime, chunk_keys)

    @staticmethod
    def _load_chunk(ns: _Namespace, chunk_id: str) -> tuple[int, list[str]] | None:
        """(dim, keys) of a complete, consistent chunk; None (with a warning) otherwise."""
        keys_path = ns.path / f"{chunk_id}{_KEYS_SUFFIX}"
        npy_path = ns.path / f"{chunk_id}.npy"
        try:
            meta = json.loads(keys_path.read_text(encoding="utf-8"))
            dim, n, chunk_keys = int(meta["dim"]), int(meta["n"]), meta["keys"]
            if not isinstance(chunk_keys, list) or len(chunk_keys) != n:
                raise ValueError("keys do not match n")
            data = np.load(npy_path, mmap_mode="r")
            shape, dtype = data.shape, data.dtype
            del data
            if shape != (n, dim) or dtype != np.float32:
                raise ValueError(f"array is {dtype} {shape}, keys say float32 ({n}, {dim})")
            if ns.dim is not None and dim != ns.dim:
                raise ValueError(f"dim {dim} differs from the namespace's {ns.dim}")
        except (OSError, ValueError, KeyError, TypeError, EOFError) as exc:
            warnings.warn(f"ignoring bad embedding-cache chunk {keys_path}: {exc}",
                          RuntimeWarning, stacklevel=3)
            return None
        return dim, [str(k) for k in chunk_keys]

    def _gather(self, ns: _Namespace, unique: list[str], keys: list[str]) -> np.ndarray:
        assert ns.dim is not None
        slot = {k: i for i, k in enumerate(unique)}
        by_chunk: dict[str, tuple[list[int], list[int]]] = {}
        for i, k in enumerate(unique):
            chunk_id, row = ns.index[k]
            dst, src = by_chunk.setdefault(chunk_id, ([], []))
            dst.append(i)
            src.append(row)
        out = np.empty((len(unique), ns.dim), dtype=np.float32)
        stale: list[str] = []
        for chunk_id, (dst, src) in by_chunk.items():
            try:
                data = np.load(ns.path / f"{chunk_id}.npy", mmap_mode="r")
                if data.ndim != 2 or data.shape[1] != ns.dim or max(src) >= data.shape[0]:
                    raise ValueError(f"shape {data.shape}")
                out[dst] = data[np.asarray(src)]
                del data
            except (OSError, ValueError, EOFError) as exc:
                warnings.warn(f"embedding-cache chunk {ns.path / chunk_id}.npy unreadable: "
                              f"{exc}", RuntimeWarning, stacklevel=3)
                stale.append(chunk_id)
        if stale:
            gone = set(stale)
            ns.index = {k: v for k, v in ns.index.items() if v[0] not in gone}
            raise _StaleChunks(stale)
        if len(unique) == len(keys):
            return out
        return out[np.fromiter((slot[k] for k in keys), dtype=np.intp, count=len(keys))]


class _StaleChunks(Exception):
    pass


def _index_chunk(ns: _Namespace, chunk_id: str, mtime_ns: int, chunk_keys: list[str]) -> None:
    """Point each key at this chunk unless a preferred one (smaller (mtime_ns, chunk id)) holds it.

    The order does not depend on which chunks a process saw first or wrote itself, so every
    reader scores the same duplicate.
    """
    rank = ns.rank[chunk_id] = (mtime_ns, chunk_id)
    for row, k in enumerate(chunk_keys):
        held = ns.index.get(k)
        if held is None or rank < ns.rank[held[0]]:
            ns.index[k] = (chunk_id, row)


def _text_keys(texts: Sequence[str]) -> tuple[list[str], dict[str, str]]:
    """(the key of each text, in order; each distinct key -> its first text)."""
    keys = []
    first_text: dict[str, str] = {}
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise TypeError(f"texts[{i}] is {type(t).__name__}, not str")
        keys.append(text_key(t))
        first_text.setdefault(keys[-1], t)
    return keys, first_text


def _model_label(settings: dict, ns_id: str) -> str:
    for name in ("fingerprint", "name", "model"):
        value = settings.get(name) if isinstance(settings, dict) else None
        if value:
            return str(value)
    return f"<cache namespace {ns_id}>"
