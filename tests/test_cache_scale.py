"""The embedding cache's index at scale: numpy tables of about 24 bytes a text, equal to a dict of the preferred chunk."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import embedbench.engine.cache as cache_mod
from embedbench.engine.cache import EmbeddingCache, namespace_id
from embedbench.errors import ModelError

SETTINGS = {"fingerprint": "fake@scale", "max_tokens": 64, "pooling": "mean", "prompts": {}}


def keys_of(hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
    """``S16`` keys whose two uint64 halves (as the index reads them) are ``hi`` and ``lo``."""
    return np.stack([hi, lo], axis=1).astype(np.uint64).view(cache_mod._KEY).ravel()


def crowded_keys(rng: np.random.Generator, n: int) -> np.ndarray:
    """Keys from a 4 x 6 grid: many duplicates, and many distinct keys sharing their first half."""
    return keys_of(rng.integers(0, 4, n), rng.integers(0, 6, n))


ALL_KEYS = keys_of(np.repeat(np.arange(5), 7), np.tile(np.arange(7), 5))  # the grid and keys outside it


class DictIndex:
    """The index as it was: key -> (mtime_ns, chunk id, row, chunk number), replaced by a smaller (mtime_ns, id)."""

    def __init__(self) -> None:
        self.entries: dict[bytes, tuple[int, str, int, int]] = {}

    def add(self, number: int, chunk_id: str, mtime_ns: int, keys: np.ndarray) -> None:
        for row in range(len(keys)):
            k, held = keys[row:row + 1].tobytes(), self.entries.get(keys[row:row + 1].tobytes())
            if held is None or (mtime_ns, chunk_id) < held[:2]:
                self.entries[k] = (mtime_ns, chunk_id, row, number)

    def drop(self, number: int) -> None:
        self.entries = {k: v for k, v in self.entries.items() if v[3] != number}

    def lookup(self, keys: np.ndarray) -> list[tuple[int, int]]:
        held = [self.entries.get(keys[i:i + 1].tobytes()) for i in range(len(keys))]
        return [(-1, 0) if h is None else (h[3], h[2]) for h in held]


@pytest.mark.parametrize("seed", range(25))
def test_index_equals_a_dict_of_the_preferred_chunk(seed, monkeypatch):
    monkeypatch.setattr(cache_mod, "_RECENT_MIN", 3)  # the recent table is merged into the main one often
    rng = np.random.default_rng(seed)
    index, ref = cache_mod._Index(), DictIndex()
    ids = [f"{i:032x}" for i in rng.choice(10**6, size=40, replace=False)]
    batch: list[tuple[str, int, np.ndarray]] = []
    for chunk_id in ids:
        chunk = (chunk_id, int(rng.integers(0, 3)), crowded_keys(rng, int(rng.integers(0, 300))))  # equal mtimes too
        batch.append(chunk)
        if rng.random() < 0.5:  # one chunk at a time, as while encoding, or several, as a refresh does
            for number, c in enumerate(batch, start=len(index.chunk_ids)):
                ref.add(number, *c)
            index.add(batch)
            batch = []
            assert len(index.recent) <= max(len(index.main) // 8, 3)
        if rng.random() < 0.1 and index.chunk_ids:
            gone = int(rng.integers(0, len(index.chunk_ids)))
            index.drop([gone])
            ref.drop(gone)
        queries = ALL_KEYS[rng.permutation(len(ALL_KEYS))]
        chunk_no, row = index.lookup(queries)
        assert list(zip(chunk_no.tolist(), row.tolist(), strict=True)) == ref.lookup(queries)
        assert len(index) == len(ref.entries)
    main, recent = ([*zip(t.hi.tolist(), t.lo.tolist(), strict=True)] for t in (index.main, index.recent))
    assert main == sorted(set(main)) and recent == sorted(set(recent))  # sorted by key, one entry a key
    assert not set(main) & set(recent)


@pytest.mark.parametrize("seed", range(10))
def test_distinct_keys_in_first_occurrence_order(seed):
    keys = crowded_keys(np.random.default_rng(seed), 2000)
    first, inverse = cache_mod._distinct(keys)
    as_bytes = [keys[i:i + 1].tobytes() for i in range(len(keys))]
    assert [as_bytes[i] for i in first] == list(dict.fromkeys(as_bytes))
    np.testing.assert_array_equal(keys[first][inverse].view(np.uint64), keys.view(np.uint64))


def write_chunk(ns: Path, keys: np.ndarray, rows: np.ndarray) -> None:
    """One chunk in the cache's format, written directly (not atomically: nothing reads it meanwhile)."""
    chunk_id = f"{len(list(ns.glob('*.npy'))):032x}"
    np.save(ns / f"{chunk_id}.npy", rows)
    body = {"format": 1, "dim": rows.shape[1], "n": len(keys), "keys": cache_mod._hex_list(keys)}
    (ns / f"{chunk_id}.keys.json").write_text(json.dumps(body))


def test_two_million_keys_take_at_most_40_bytes_each(tmp_path):
    n, chunks = 2_000_000, 4
    rng = np.random.default_rng(0)
    keys = np.frombuffer(rng.bytes(16 * n), dtype=cache_mod._KEY)
    ns = tmp_path / "embeddings" / namespace_id(SETTINGS, "document")
    ns.mkdir(parents=True)
    for part in np.array_split(np.arange(n), chunks):
        write_chunk(ns, keys[part], part.astype(np.float32)[:, None])  # row value = the key's position
    cache = EmbeddingCache(tmp_path)
    assert cache.missing(SETTINGS, "document", []) == []  # indexes the namespace
    index = cache._namespace(namespace_id(SETTINGS, "document")).index
    assert len(index) == n and len(index.chunk_ids) == chunks
    assert index.nbytes / n <= 40

    sample = rng.choice(n, size=10_000)
    out = cache.vectors(SETTINGS, "document", keys[sample])
    np.testing.assert_array_equal(out[:, 0], sample.astype(np.float32))
    absent = np.frombuffer(rng.bytes(16 * 3), dtype=cache_mod._KEY)
    with pytest.raises(ModelError, match=f"3 of {len(np.unique(sample)) + 3} distinct"):
        cache.vectors(SETTINGS, "document", np.concatenate([keys[sample], absent]))
