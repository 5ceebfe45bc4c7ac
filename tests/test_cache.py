"""The embedding cache: encode once, resume after a crash, share between processes."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest
from cache_workers import call_in_subprocess, run_two_workers

from embedbench.engine.cache import (EmbeddingCache, default_cache_dir, namespace_id, namespace_locked, text_key,
                                    text_keys)
from embedbench.errors import ModelError

DIM = 8
SETTINGS = {"fingerprint": "fake-model@abc", "max_tokens": 128, "pooling": "mean", "prompts": {}}


def fake_vector(text: str, dim: int = DIM) -> np.ndarray:
    seed = int.from_bytes(hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()[:8], "little")
    return np.random.default_rng(seed).standard_normal(dim).astype(np.float32)


class CountingEncoder:
    """Deterministic fake model that records every batch it is given."""

    def __init__(self, dim: int = DIM, fail_on_call: int | None = None) -> None:
        self.dim = dim
        self.fail_on_call = fail_on_call
        self.batches: list[list[str]] = []

    @property
    def calls(self) -> int:
        return len(self.batches)

    @property
    def n_texts(self) -> int:
        return sum(len(b) for b in self.batches)

    def __call__(self, texts: list[str]) -> np.ndarray:
        assert isinstance(texts, list)
        if self.fail_on_call is not None and self.calls + 1 == self.fail_on_call:
            raise KeyboardInterrupt("killed")  # like a ^C / OOM in the middle of a run
        self.batches.append(list(texts))
        return np.stack([fake_vector(t, self.dim) for t in texts]) if texts else np.zeros((0, self.dim))


def expected(texts: list[str], dim: int = DIM) -> np.ndarray:
    return np.stack([fake_vector(t, dim) for t in texts])


def texts_n(n: int, prefix: str = "doc") -> list[str]:
    return [f"{prefix} number {i}" for i in range(n)]


def ns_dir(root: Path, settings: dict = SETTINGS, role: str = "document") -> Path:
    return root / "embeddings" / namespace_id(settings, role)


def chunk_files(root: Path, settings: dict = SETTINGS, role: str = "document") -> list[Path]:
    d = ns_dir(root, settings, role)
    return sorted(d.glob("*.keys.json")) if d.exists() else []


# --------------------------------------------------------------------- basics


def test_default_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("EMBEDBENCH_CACHE_DIR", str(tmp_path / "c"))
    assert default_cache_dir() == tmp_path / "c"
    monkeypatch.delenv("EMBEDBENCH_CACHE_DIR")
    assert default_cache_dir() == Path.home() / ".cache" / "embedbench"


def test_second_call_encodes_nothing_and_returns_identical_rows(tmp_path):
    texts = texts_n(50)
    enc = CountingEncoder()
    cache = EmbeddingCache(tmp_path)
    first = cache.get_or_encode(SETTINGS, "document", texts, enc, chunk_size=16)
    assert first.dtype == np.float32 and first.shape == (50, DIM)
    np.testing.assert_array_equal(first, expected(texts))
    assert enc.n_texts == 50 and [len(b) for b in enc.batches] == [16, 16, 16, 2]
    assert cache.stats == {"hits": 0, "encoded": 50}

    # Same object and a fresh object (a new run): nothing is encoded.
    for c in (cache, EmbeddingCache(tmp_path)):
        c.stats = {"hits": 0, "encoded": 0}
        enc2 = CountingEncoder()
        again = c.get_or_encode(SETTINGS, "document", texts, enc2, chunk_size=16)
        assert enc2.calls == 0
        assert c.stats == {"hits": 50, "encoded": 0}
        np.testing.assert_array_equal(again, first)


def test_rows_follow_input_order_and_duplicates_encoded_once(tmp_path):
    cache = EmbeddingCache(tmp_path)
    enc = CountingEncoder()
    cache.get_or_encode(SETTINGS, "document", ["a", "b", "c"], enc)
    texts = ["c", "new", "a", "c", "new", "b", "a"]
    out = cache.get_or_encode(SETTINGS, "document", texts, enc)
    np.testing.assert_array_equal(out, expected(texts))
    assert enc.batches == [["a", "b", "c"], ["new"]]

    enc2 = CountingEncoder()
    dup = ["x", "y", "x", "x", "y"]
    out2 = EmbeddingCache(tmp_path).get_or_encode(SETTINGS, "document", dup, enc2)
    assert enc2.batches == [["x", "y"]]
    np.testing.assert_array_equal(out2, expected(dup))


def test_unicode_empty_string_and_surrogates(tmp_path):
    texts = ["", "héllo wörld", "日本語", "emoji \U0001f600", "lone \ud800 surrogate"]
    enc = CountingEncoder()
    out = EmbeddingCache(tmp_path).get_or_encode(SETTINGS, "query", texts, enc)
    np.testing.assert_array_equal(out, expected(texts))
    assert len({text_key(t) for t in texts}) == len(texts)
    assert text_key("abc") == hashlib.sha256(b"abc").hexdigest()[:32]


def test_empty_texts(tmp_path):
    cache = EmbeddingCache(tmp_path)
    enc = CountingEncoder()
    out = cache.get_or_encode(SETTINGS, "document", [], enc)
    assert out.shape == (0, 0) and out.dtype == np.float32 and enc.calls == 0
    assert not (tmp_path / "embeddings").exists()  # nothing written for nothing
    cache.get_or_encode(SETTINGS, "document", ["a"], enc)
    out = EmbeddingCache(tmp_path).get_or_encode(SETTINGS, "document", [], enc)
    assert out.shape == (0, DIM)


def test_settings_or_role_change_means_separate_namespace(tmp_path):
    texts = texts_n(5)
    cache = EmbeddingCache(tmp_path)
    enc = CountingEncoder()
    cache.get_or_encode(SETTINGS, "document", texts, enc)
    cache.get_or_encode(SETTINGS, "query", texts, enc)
    cache.get_or_encode({**SETTINGS, "max_tokens": 256}, "document", texts, enc)
    cache.get_or_encode({**SETTINGS, "prompts": {"query": "q: "}}, "document", texts, enc)
    assert enc.n_texts == 20
    assert len(list((tmp_path / "embeddings").iterdir())) == 4
    # Key order inside settings does not matter.
    reordered = dict(reversed(list(SETTINGS.items())))
    cache.get_or_encode(reordered, "document", texts, enc)
    assert enc.n_texts == 20


def test_layout_key_json_and_chunk_files(tmp_path):
    EmbeddingCache(tmp_path).get_or_encode(SETTINGS, "document", texts_n(10), CountingEncoder(), chunk_size=4)
    d = ns_dir(tmp_path)
    expected_id = hashlib.sha256(
        json.dumps({"settings": SETTINGS, "role": "document"}, sort_keys=True).encode()
    ).hexdigest()[:24]
    assert d.name == expected_id
    key = json.loads((d / "key.json").read_text())
    assert key["settings"] == SETTINGS and key["role"] == "document"
    keys_files = chunk_files(tmp_path)
    assert len(keys_files) == 3
    for kf in keys_files:
        meta = json.loads(kf.read_text())
        arr = np.load(kf.with_name(kf.name.replace(".keys.json", ".npy")))
        assert arr.dtype == np.float32 and arr.shape == (len(meta["keys"]), meta["dim"])
    assert not [p for p in d.iterdir() if p.name.startswith(".tmp-") or p.name.endswith(".tmp")]


# --------------------------------------------------------------- crash/resume


def test_resume_after_crash_encodes_only_the_rest(tmp_path):
    texts = texts_n(100)
    cache = EmbeddingCache(tmp_path)
    dying = CountingEncoder(fail_on_call=3)
    with pytest.raises(KeyboardInterrupt):
        cache.get_or_encode(SETTINGS, "document", texts, dying, chunk_size=30)
    assert dying.n_texts == 60
    assert len(chunk_files(tmp_path)) == 2
    assert cache.stats["encoded"] == 60

    enc = CountingEncoder()
    out = EmbeddingCache(tmp_path).get_or_encode(SETTINGS, "document", texts, enc, chunk_size=30)
    assert enc.n_texts == 40
    assert set(sum(enc.batches, [])) == set(texts[60:])
    np.testing.assert_array_equal(out, expected(texts))


def test_crash_leftovers_are_ignored(tmp_path):
    texts = texts_n(10)
    EmbeddingCache(tmp_path).get_or_encode(SETTINGS, "document", texts[:5], CountingEncoder())
    d = ns_dir(tmp_path)
    # A run killed between the two renames: an orphan .npy holding garbage for texts[5:].
    np.save(d / f"{'a' * 32}.npy", np.full((5, DIM), 7.0, dtype=np.float32))
    # A run killed mid-write: stray temp files, one of them a half keys file.
    (d / f"{'b' * 32}.npy.1234abcd.tmp").write_bytes(b"\x93NUMPY garbage")
    (d / f"{'b' * 32}.keys.json.1234abcd.tmp").write_text('{"dim": 8, "keys": ["')
    (d / "key.json.deadbeef.tmp").write_text("{")
    (d / ".tmp-k3y8zq0a.json").write_text('{"dim": 8, "keys": ["')  # embedbench.atomic's temp names
    (d / ".tmp-k3y8zq0b.npy").write_bytes(b"\x93NUMPY garbage")

    enc = CountingEncoder()
    out = EmbeddingCache(tmp_path).get_or_encode(SETTINGS, "document", texts, enc)
    assert enc.batches == [texts[5:]]
    np.testing.assert_array_equal(out, expected(texts))


def test_corrupt_chunk_is_skipped_with_warning(tmp_path):
    texts = texts_n(6)
    EmbeddingCache(tmp_path).get_or_encode(SETTINGS, "document", texts, CountingEncoder(), chunk_size=3)
    first_npy = chunk_files(tmp_path)[0].with_name(chunk_files(tmp_path)[0].name.replace(".keys.json", ".npy"))
    first_npy.write_bytes(b"")  # e.g. power loss after the rename
    enc = CountingEncoder()
    with pytest.warns(RuntimeWarning, match="ignoring bad embedding-cache chunk"):
        out = EmbeddingCache(tmp_path).get_or_encode(SETTINGS, "document", texts, enc, chunk_size=3)
    assert enc.n_texts == 3
    np.testing.assert_array_equal(out, expected(texts))


def test_chunk_vanishing_after_indexing_is_reencoded(tmp_path):
    texts = texts_n(6)
    cache = EmbeddingCache(tmp_path)
    cache.get_or_encode(SETTINGS, "document", texts, CountingEncoder(), chunk_size=3)
    for kf in chunk_files(tmp_path):  # someone prunes the cache under our feet
        kf.with_name(kf.name.replace(".keys.json", ".npy")).unlink()
    enc = CountingEncoder()
    with pytest.warns(RuntimeWarning, match="unreadable"):
        out = cache.get_or_encode(SETTINGS, "document", texts, enc, chunk_size=3)
    assert enc.n_texts == 6
    np.testing.assert_array_equal(out, expected(texts))


# -------------------------------------------------------------- other writers


def test_index_refreshes_when_another_writer_adds_chunks(tmp_path):
    a, b = EmbeddingCache(tmp_path), EmbeddingCache(tmp_path)
    a.get_or_encode(SETTINGS, "document", ["x"], CountingEncoder())
    b.get_or_encode(SETTINGS, "document", ["y", "z"], CountingEncoder())
    enc = CountingEncoder()
    out = a.get_or_encode(SETTINGS, "document", ["z", "x", "y"], enc)
    assert enc.calls == 0
    np.testing.assert_array_equal(out, expected(["z", "x", "y"]))


def test_duplicate_chunks_are_harmless(tmp_path):
    texts = texts_n(4)
    # Two runs that did not see each other: both persist the same texts.
    EmbeddingCache(tmp_path).get_or_encode(SETTINGS, "document", texts, CountingEncoder())
    c = EmbeddingCache(tmp_path)
    c._namespace(namespace_id(SETTINGS, "document"))  # fresh, empty index
    c._refresh = lambda ns: None  # blind to the first run
    c.get_or_encode(SETTINGS, "document", texts, CountingEncoder())
    assert len(chunk_files(tmp_path)) == 2
    enc = CountingEncoder()
    out = EmbeddingCache(tmp_path).get_or_encode(SETTINGS, "document", texts, enc)
    assert enc.calls == 0
    np.testing.assert_array_equal(out, expected(texts))


def test_two_processes_fill_the_same_cache(tmp_path):
    root = tmp_path / "cache"
    all_texts = texts_n(400)
    counts = run_two_workers(tmp_path, root, SETTINGS, [all_texts[0:300], all_texts[100:400]], chunk=7, sleep=0.01)
    a, b = np.load(tmp_path / "out0.npy"), np.load(tmp_path / "out1.npy")
    np.testing.assert_array_equal(a, expected(all_texts[0:300]))
    np.testing.assert_array_equal(b, expected(all_texts[100:400]))
    np.testing.assert_array_equal(a[100:], b[:200])
    # The namespace lock: every text encoded exactly once between them, the overlap by one run only.
    assert sum(encoded for encoded, _hits in counts) == 400

    reader = EmbeddingCache(root)
    enc = CountingEncoder()
    out = reader.get_or_encode(SETTINGS, "document", all_texts, enc)
    assert enc.calls == 0 and reader.stats == {"hits": 400, "encoded": 0}
    np.testing.assert_array_equal(out, expected(all_texts))
    assert not list(ns_dir(root).glob(".tmp-*"))


# ----------------------------------------------------------------- validation


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_output_raises_and_persists_nothing(tmp_path, bad):
    cache = EmbeddingCache(tmp_path)
    cache.get_or_encode(SETTINGS, "document", ["ok"], CountingEncoder())

    def broken(texts):
        out = expected(texts)
        out[1, 3] = bad
        out[2, 0] = bad
        return out

    with pytest.raises(ModelError, match=r"fake-model@abc.*NaN embeddings for 2 texts"):
        cache.get_or_encode(SETTINGS, "document", ["a", "b", "c", "d"], broken)
    assert len(chunk_files(tmp_path)) == 1
    enc = CountingEncoder()
    EmbeddingCache(tmp_path).get_or_encode(SETTINGS, "document", ["a", "b", "c", "d"], enc)
    assert enc.n_texts == 4


def test_float64_overflow_to_inf_is_caught(tmp_path):
    with pytest.raises(ModelError, match="NaN embeddings for 1 texts"):
        EmbeddingCache(tmp_path).get_or_encode(
            SETTINGS, "document", ["a"], lambda t: np.full((1, DIM), 1e300, dtype=np.float64))
    assert chunk_files(tmp_path) == []


def test_nan_in_a_later_chunk_keeps_earlier_chunks(tmp_path):
    calls = []

    def encode(texts):
        calls.append(len(texts))
        out = expected(texts)
        if len(calls) == 2:
            out[0, 0] = np.nan
        return out

    with pytest.raises(ModelError):
        EmbeddingCache(tmp_path).get_or_encode(SETTINGS, "document", texts_n(10), encode, chunk_size=4)
    assert len(chunk_files(tmp_path)) == 1


def test_wrong_dim_vs_existing_chunks_raises(tmp_path):
    EmbeddingCache(tmp_path).get_or_encode(SETTINGS, "document", ["a"], CountingEncoder(dim=8))
    with pytest.raises(ModelError, match=r"16-dim.*8-dim"):
        EmbeddingCache(tmp_path).get_or_encode(SETTINGS, "document", ["b"], CountingEncoder(dim=16))
    assert len(chunk_files(tmp_path)) == 1


def test_dim_changing_between_chunks_of_one_run_raises(tmp_path):
    calls = []

    def encode(texts):
        calls.append(1)
        return expected(texts, dim=8 if len(calls) == 1 else 9)

    with pytest.raises(ModelError, match=r"9-dim.*8-dim"):
        EmbeddingCache(tmp_path).get_or_encode(SETTINGS, "document", texts_n(4), encode, chunk_size=2)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda texts: expected(texts)[:-1], r"shape \(2, 8\) for 3 texts"),
        (lambda texts: expected(texts).ravel(), "shape"),
        (lambda texts: expected(texts).astype(np.int64), "int64 embeddings"),
        (lambda texts: np.zeros((len(texts), 0), dtype=np.float32), "0-dimensional"),
    ],
)
def test_malformed_output_raises(tmp_path, make, match):
    with pytest.raises(ModelError, match=match):
        EmbeddingCache(tmp_path).get_or_encode(SETTINGS, "document", ["a", "b", "c"], make)
    assert chunk_files(tmp_path) == []


def test_float64_and_list_outputs_are_stored_as_float32(tmp_path):
    cache = EmbeddingCache(tmp_path)
    out = cache.get_or_encode(SETTINGS, "document", ["a", "b"], lambda t: expected(t).astype(np.float64))
    assert out.dtype == np.float32
    out2 = cache.get_or_encode(SETTINGS, "query", ["a"], lambda t: expected(t).tolist())
    assert out2.dtype == np.float32
    np.testing.assert_array_equal(out2, expected(["a"]))


def test_bad_arguments(tmp_path):
    cache = EmbeddingCache(tmp_path)
    with pytest.raises(ValueError):
        cache.get_or_encode(SETTINGS, "document", ["a"], CountingEncoder(), chunk_size=0)
    with pytest.raises(TypeError, match=r"texts\[1\]"):
        cache.get_or_encode(SETTINGS, "document", ["a", 3], CountingEncoder())


# ------------------------------------------------------------------ ownership


def test_result_is_float32_writable_and_independent_of_cache(tmp_path):
    texts = ["a", "b", "c"]
    cache = EmbeddingCache(tmp_path)
    out = cache.get_or_encode(SETTINGS, "document", texts, CountingEncoder())
    for arr in (out, cache.get_or_encode(SETTINGS, "document", texts, CountingEncoder()),
                cache.get_or_encode(SETTINGS, "document", ["c", "a", "c"], CountingEncoder())):
        assert arr.dtype == np.float32
        assert arr.flags.writeable and arr.flags.c_contiguous
        assert not isinstance(arr, np.memmap) and not isinstance(arr.base, np.memmap)
        arr[:] = 0.0
    again = EmbeddingCache(tmp_path).get_or_encode(SETTINGS, "document", texts, CountingEncoder())
    np.testing.assert_array_equal(again, expected(texts))


def test_progress_bar_only_when_encoding(tmp_path, capsys):
    cache = EmbeddingCache(tmp_path)
    cache.get_or_encode(SETTINGS, "document", ["a", "b"], CountingEncoder(), progress="encoding corpus")
    err = capsys.readouterr().err
    assert "encoding corpus" in err
    cache.get_or_encode(SETTINGS, "document", ["a", "b"], CountingEncoder(), progress="encoding corpus")
    assert "encoding corpus" not in capsys.readouterr().err


# ------------------------------------------------- the distributed-encoder API


def test_text_keys_are_the_hex_keys_as_16_bytes():
    texts = ["a", "", "lone \ud800 surrogate", "a"]
    keys = text_keys(texts)
    assert keys.dtype == np.dtype("S16") and keys.shape == (4,) and keys.flags.writeable
    assert [keys[i:i + 1].tobytes().hex() for i in range(4)] == [text_key(t) for t in texts]
    assert EmbeddingCache.text_keys(texts).tobytes() == keys.tobytes()
    assert text_keys([]).shape == (0,)
    with pytest.raises(TypeError, match=r"texts\[1\]"):
        text_keys(["a", b"b"])


def test_missing_lists_the_distinct_uncached_texts_in_first_occurrence_order(tmp_path):
    cache = EmbeddingCache(tmp_path)
    assert cache.missing(SETTINGS, "document", ["b", "a", "b"]) == ["b", "a"]
    cache.get_or_encode(SETTINGS, "document", ["a", "c"], CountingEncoder())
    texts = ["d", "a", "b", "d", "c", "e", "b"]
    assert cache.missing(SETTINGS, "document", texts) == ["d", "b", "e"]
    EmbeddingCache(tmp_path).store(SETTINGS, "document", ["e"], expected(["e"]))  # another writer
    assert cache.missing(SETTINGS, "document", texts) == ["d", "b"]
    assert cache.missing(SETTINGS, "query", texts) == ["d", "a", "b", "c", "e"]
    assert cache.missing(SETTINGS, "document", []) == []


def test_store_then_vectors_in_any_key_form(tmp_path):
    writer = EmbeddingCache(tmp_path)
    texts = ["x", "y", "x", "z"]
    rows = expected(texts)
    rows[2] = 5.0  # a duplicate is stored once, with its first row
    writer.store(SETTINGS, "document", texts, rows.astype(np.float64))
    assert writer.stats == {"hits": 0, "encoded": 3}
    [keys_file] = chunk_files(tmp_path)
    assert json.loads(keys_file.read_text())["keys"] == [text_key(t) for t in ["x", "y", "z"]]

    reader = EmbeddingCache(tmp_path)
    want = expected(["z", "x", "x", "y"])
    hexes = [text_key(t) for t in ["z", "x", "x", "y"]]
    for keys in (text_keys(["z", "x", "x", "y"]), hexes, np.array(hexes)):
        out = reader.vectors(SETTINGS, "document", keys)
        assert out.dtype == np.float32 and out.flags.writeable and not isinstance(out.base, np.memmap)
        np.testing.assert_array_equal(out, want)
    assert reader.stats == {"hits": 9, "encoded": 0}  # 3 distinct keys, 3 calls
    assert reader.vectors(SETTINGS, "document", []).shape == (0, DIM)
    assert EmbeddingCache(tmp_path).vectors(SETTINGS, "query", []).shape == (0, 0)
    enc = CountingEncoder()
    np.testing.assert_array_equal(reader.get_or_encode(SETTINGS, "document", ["y", "x"], enc), expected(["y", "x"]))
    assert enc.calls == 0


def test_vectors_of_uncached_keys_raise_and_say_how_many(tmp_path):
    cache = EmbeddingCache(tmp_path)
    cache.store(SETTINGS, "document", ["a", "b"], expected(["a", "b"]))
    keys = text_keys(["a", "new1", "b", "new2", "new1"])
    with pytest.raises(ModelError, match=r"2 of 4 distinct text keys are not in the embedding cache"):
        cache.vectors(SETTINGS, "document", keys)
    with pytest.raises(ModelError, match=r"1 of 1 distinct"):
        EmbeddingCache(tmp_path).vectors(SETTINGS, "query", keys[:1])
    with pytest.raises(ValueError, match="32 hex digits"):
        cache.vectors(SETTINGS, "document", ["abc"])
    assert cache.stats["hits"] == 0


def test_vectors_of_a_chunk_that_vanished_raise_model_error(tmp_path):
    cache = EmbeddingCache(tmp_path)
    cache.store(SETTINGS, "document", ["a", "b"], expected(["a", "b"]))
    for kf in chunk_files(tmp_path):
        kf.with_name(kf.name.replace(".keys.json", ".npy")).unlink()
    with pytest.warns(RuntimeWarning, match="unreadable"):
        with pytest.raises(ModelError, match="2 of 2 distinct"):
            cache.vectors(SETTINGS, "document", text_keys(["a", "b"]))


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda texts: expected(texts)[:-1], r"shape \(2, 8\) for 3 texts"),
        (lambda texts: expected(texts).astype(np.int64), "int64 embeddings"),
        (lambda texts: np.where(np.arange(DIM) == 3, np.nan, expected(texts)), "NaN embeddings for 3 texts"),
        (lambda texts: expected(texts, dim=16), r"16-dim.*8-dim"),
    ],
)
def test_store_validates_like_get_or_encode_and_writes_nothing_bad(tmp_path, make, match):
    EmbeddingCache(tmp_path).store(SETTINGS, "document", ["ok"], expected(["ok"]))
    with pytest.raises(ModelError, match=match):  # a fresh object still knows the namespace's dim
        EmbeddingCache(tmp_path).store(SETTINGS, "document", ["a", "b", "c"], make(["a", "b", "c"]))
    assert len(chunk_files(tmp_path)) == 1
    EmbeddingCache(tmp_path).store(SETTINGS, "document", [], [])
    assert len(chunk_files(tmp_path)) == 1


def test_workers_store_while_the_driver_holds_the_lock(tmp_path):
    driver = EmbeddingCache(tmp_path)
    texts = texts_n(30)
    with driver.lock(SETTINGS, "document"):
        assert namespace_locked(ns_dir(tmp_path))
        todo = driver.missing(SETTINGS, "document", texts)
        assert todo == texts
        for part in (todo[:10], todo[10:20]):  # two workers; store must not wait for the lock
            stats = call_in_subprocess(tmp_path, {"call": "store", "settings": SETTINGS, "role": "document",
                                                  "texts": part, "vectors": expected(part).tolist()})
            assert stats == {"hits": 0, "encoded": 10}
        assert driver.missing(SETTINGS, "document", texts) == texts[20:]
        with driver.lock(SETTINGS, "document"):  # re-entrant: the driver encodes the rest itself
            enc = CountingEncoder()
            out = driver.get_or_encode(SETTINGS, "document", texts, enc)
        assert enc.batches == [texts[20:]] and namespace_locked(ns_dir(tmp_path))
        np.testing.assert_array_equal(out, expected(texts))
        np.testing.assert_array_equal(driver.vectors(SETTINGS, "document", text_keys(texts)), expected(texts))
    assert not namespace_locked(ns_dir(tmp_path))


def test_lock_is_the_namespace_lock(tmp_path):
    from embedbench.engine.cache import namespace_lock

    cache = EmbeddingCache(tmp_path)
    with cache.lock(SETTINGS, "query"):
        with namespace_lock(ns_dir(tmp_path, role="query"), wait=False) as held:
            assert held is False
        with EmbeddingCache(tmp_path).lock(SETTINGS, "document"):  # another namespace: free
            pass
    with namespace_lock(ns_dir(tmp_path, role="query"), wait=False) as held:
        assert held is True


def test_stored_duplicates_are_read_from_the_oldest_chunk_in_every_process(tmp_path):
    def store_in_subprocess(texts, value, mtime_ns):
        before = set(chunk_files(tmp_path))
        call_in_subprocess(tmp_path, {"call": "store", "settings": SETTINGS, "role": "document", "texts": texts,
                                      "vectors": [[value] * DIM for _ in texts]})
        [keys_file] = set(chunk_files(tmp_path)) - before
        os.utime(keys_file, ns=(mtime_ns, mtime_ns))

    def read_in_subprocess(texts):
        call_in_subprocess(tmp_path, {"call": "vectors", "settings": SETTINGS, "role": "document", "texts": texts,
                                      "out": str(tmp_path / "read.npy")})
        return np.load(tmp_path / "read.npy")[:, 0].tolist()

    store_in_subprocess(["a", "b"], 2.0, mtime_ns=2_000_000_000)
    early = EmbeddingCache(tmp_path)
    assert early.vectors(SETTINGS, "document", text_keys(["a", "b"]))[:, 0].tolist() == [2.0, 2.0]
    # A worker that started earlier finishes now: its keys file is older, so it is preferred.
    store_in_subprocess(["b", "c"], 1.0, mtime_ns=1_000_000_000)
    store_in_subprocess(["a", "c"], 3.0, mtime_ns=3_000_000_000)
    want = [2.0, 1.0, 1.0]
    assert early.vectors(SETTINGS, "document", text_keys(["a", "b", "c"]))[:, 0].tolist() == want
    assert EmbeddingCache(tmp_path).vectors(SETTINGS, "document", text_keys(["a", "b", "c"]))[:, 0].tolist() == want
    assert read_in_subprocess(["a", "b", "c"]) == want


def test_a_refresh_reads_only_the_new_chunks(tmp_path, monkeypatch):
    cache = EmbeddingCache(tmp_path)
    cache.get_or_encode(SETTINGS, "document", texts_n(9), CountingEncoder(), chunk_size=3)
    loaded = []
    real = EmbeddingCache._load_chunk
    monkeypatch.setattr(EmbeddingCache, "_load_chunk",
                        staticmethod(lambda ns, chunk_id: loaded.append(chunk_id) or real(ns, chunk_id)))
    assert cache.missing(SETTINGS, "document", texts_n(9)) == []
    assert loaded == []
    call_in_subprocess(tmp_path, {"call": "store", "settings": SETTINGS, "role": "document", "texts": ["new"],
                                  "vectors": expected(["new"]).tolist()})
    assert cache.missing(SETTINGS, "document", ["new", "other"]) == ["other"]
    assert len(loaded) == 1


# ----------------------------------------------------------------- token matrices (multi-vector models)

TOKEN_SETTINGS = {**SETTINGS, "kind": "multi-vector"}


def fake_tokens(text: str, dim: int = DIM) -> np.ndarray:
    """A deterministic (tokens, dim) matrix: one row per word (none for an empty text)."""
    return np.stack([fake_vector(f"{text}#{i}", dim) for i in range(len(text.split()))]) if text.split() \
        else np.zeros((0, dim), np.float32)


class TokenEncoder(CountingEncoder):
    def __call__(self, texts: list[str]) -> list[np.ndarray]:
        if self.fail_on_call is not None and self.calls + 1 == self.fail_on_call:
            raise KeyboardInterrupt("killed")
        self.batches.append(list(texts))
        return [fake_tokens(t, self.dim) for t in texts]


def _assert_tokens(out, texts: list[str]) -> None:
    assert len(out) == len(texts) and out.offsets[0] == 0
    for i, t in enumerate(texts):
        np.testing.assert_array_equal(out.matrix(i), fake_tokens(t))


def test_token_matrices_are_encoded_once_and_resume_after_a_kill(tmp_path):
    texts = [f"doc {i} " + "word " * (i % 5) for i in range(50)] + ["", "doc 3 word word word "]
    with pytest.raises(KeyboardInterrupt):  # killed while encoding the third chunk
        EmbeddingCache(tmp_path).get_or_encode_tokens(TOKEN_SETTINGS, "document", texts, TokenEncoder(fail_on_call=3),
                                                     chunk_size=10)
    assert len(chunk_files(tmp_path, TOKEN_SETTINGS)) == 2  # the two finished chunks stay
    cache, enc = EmbeddingCache(tmp_path), TokenEncoder()
    out = cache.get_or_encode_tokens(TOKEN_SETTINGS, "document", texts, enc, chunk_size=10)
    _assert_tokens(out, texts)
    assert enc.n_texts == 51 - 20 and cache.stats == {"hits": 20, "encoded": 31}  # a repeated text counts once
    # Read back by key, in any order, by a fresh object: the same matrices (an empty text included).
    order = [51, 50, 7, 0]
    back = EmbeddingCache(tmp_path).token_matrices(TOKEN_SETTINGS, "document", text_keys([texts[i] for i in order]))
    _assert_tokens(back, [texts[i] for i in order])
    keys = json.loads(chunk_files(tmp_path, TOKEN_SETTINGS)[0].read_text())
    assert len(keys["offsets"]) == keys["n"] + 1 and keys["offsets"][0] == 0


def test_two_writers_encode_each_token_text_once(tmp_path):
    """Two cache objects (each its own lock file handle, as two processes have) filling one namespace at once."""
    import threading

    texts = [f"text {i} " + "w " * (i % 7) for i in range(120)]
    encoders, outs = [TokenEncoder(), TokenEncoder()], [None, None]

    def fill(i: int, part: list[str]) -> None:
        outs[i] = EmbeddingCache(tmp_path).get_or_encode_tokens(TOKEN_SETTINGS, "document", part, encoders[i],
                                                                chunk_size=8)

    threads = [threading.Thread(target=fill, args=(0, texts[:80])), threading.Thread(target=fill, args=(1, texts[40:]))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    _assert_tokens(outs[0], texts[:80])
    _assert_tokens(outs[1], texts[40:])
    assert sum(e.n_texts for e in encoders) == 120


@pytest.mark.parametrize("bad", ["nan", "width", "count", "ndim"])
def test_bad_token_output_raises_and_persists_nothing(tmp_path, bad):
    cache = EmbeddingCache(tmp_path)
    cache.get_or_encode_tokens(TOKEN_SETTINGS, "document", ["ok text"], TokenEncoder())

    def broken(texts):
        out = [fake_tokens(t) for t in texts]
        if bad == "nan":
            out[0][0, 0] = np.nan
        elif bad == "width":
            out = [fake_tokens(t, DIM + 1) for t in texts]
        elif bad == "count":
            out = out[1:]
        else:
            out[0] = out[0][0]
        return out

    with pytest.raises(ModelError):
        cache.get_or_encode_tokens(TOKEN_SETTINGS, "document", ["two words", "three more words"], broken)
    assert len(chunk_files(tmp_path, TOKEN_SETTINGS)) == 1


def test_a_chunk_of_the_other_layout_is_ignored(tmp_path):
    """A vector chunk in a token namespace (or the reverse) is never read as the other: warned, re-encoded."""
    EmbeddingCache(tmp_path).get_or_encode(TOKEN_SETTINGS, "document", ["a b"], CountingEncoder())  # vectors there
    enc = TokenEncoder()
    with pytest.warns(RuntimeWarning, match="chunk of vectors"):
        out = EmbeddingCache(tmp_path).get_or_encode_tokens(TOKEN_SETTINGS, "document", ["a b"], enc)
    _assert_tokens(out, ["a b"])
    assert enc.n_texts == 1
    with pytest.raises(ModelError, match="not in the embedding cache"), pytest.warns(RuntimeWarning):
        EmbeddingCache(tmp_path).token_matrices(TOKEN_SETTINGS, "document", text_keys(["never encoded"]))
