"""Runs sharing one cache (and one results folder) encode each text once and score the same vectors."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from cache_workers import run_two_workers

import embedbench.engine.cache as cache_mod
from embedbench.engine.cache import EmbeddingCache, namespace_id

SETTINGS = {"fingerprint": "fake@1", "max_tokens": 64, "pooling": "mean", "prompts": {}}
DIM = 8


def fake_vectors(texts: list[str]) -> np.ndarray:
    rows = []
    for t in texts:
        seed = int.from_bytes(hashlib.sha256(t.encode()).digest()[:8], "little")
        rows.append(np.random.default_rng(seed).standard_normal(DIM).astype(np.float32))
    return np.stack(rows)


def ns_path(root: Path) -> Path:
    return root / "embeddings" / namespace_id(SETTINGS, "document")


# ------------------------------------------------------------- the namespace lock

def test_two_processes_encode_each_text_once(tmp_path):
    root, texts = tmp_path / "cache", [f"text {i}" for i in range(200)]
    # both start encoding the same 200 texts (20 chunks of 10) at once
    counts = run_two_workers(tmp_path, root, SETTINGS, [texts, texts], chunk=10, sleep=0.02)
    assert sum(encoded for encoded, _hits in counts) == 200, counts
    want = fake_vectors([f"text {i}" for i in range(200)])
    for i in range(2):
        np.testing.assert_array_equal(np.load(tmp_path / f"out{i}.npy"), want)
    rows = sum(json.loads(p.read_text())["n"] for p in ns_path(root).glob("*.keys.json"))
    assert rows == 200  # no duplicate chunk was written


class GatedEncoder:
    """Blocks inside encode until released, so a test can look at the cache while a run encodes."""

    def __init__(self) -> None:
        self.inside, self.release = threading.Event(), threading.Event()
        self.texts: list[str] = []

    def __call__(self, texts: list[str]) -> np.ndarray:
        self.inside.set()
        assert self.release.wait(30)
        self.texts += texts
        return fake_vectors(texts)


def test_waiting_run_reads_what_the_first_wrote_and_the_lock_is_visible(tmp_path, capsys):
    texts = [f"text {i}" for i in range(30)]
    first, second = GatedEncoder(), GatedEncoder()
    second.release.set()
    out: dict[str, np.ndarray] = {}

    def run(name: str, encoder: GatedEncoder) -> None:
        out[name] = EmbeddingCache(tmp_path).get_or_encode(SETTINGS, "document", texts, encoder)

    assert not cache_mod.namespace_locked(ns_path(tmp_path))
    a = threading.Thread(target=run, args=("a", first))
    a.start()
    assert first.inside.wait(30)
    assert cache_mod.namespace_locked(ns_path(tmp_path))  # what a cache prune checks
    with cache_mod.namespace_lock(ns_path(tmp_path), wait=False) as held:
        assert held is False
    b = threading.Thread(target=run, args=("b", second))
    b.start()
    time.sleep(0.3)
    assert b.is_alive() and not second.inside.is_set()  # waiting on the lock, not encoding
    first.release.set()
    a.join(30)
    b.join(30)
    assert first.texts == texts and second.texts == []
    np.testing.assert_array_equal(out["a"], fake_vectors(texts))
    np.testing.assert_array_equal(out["b"], out["a"])
    assert not cache_mod.namespace_locked(ns_path(tmp_path))
    assert capsys.readouterr().err.count("waiting for another run") == 1


def test_lock_is_retaken_when_the_namespace_is_removed_while_waiting(tmp_path):
    ns = ns_path(tmp_path)
    acquired = threading.Event()

    def waiter() -> None:
        with cache_mod.namespace_lock(ns):
            acquired.set()
            time.sleep(0.5)

    with cache_mod.namespace_lock(ns):  # a prune holds the lock while it removes the folder
        t = threading.Thread(target=waiter)
        t.start()
        time.sleep(0.2)
        shutil.rmtree(ns)
    assert acquired.wait(10)
    # The waiter holds the lock of the folder as it is now, not of the removed one.
    assert cache_mod.namespace_locked(ns)
    t.join(10)
    assert not cache_mod.namespace_locked(ns)


# ----------------------------------------------------- which duplicate is read


def write_chunk(root: Path, texts: list[str], value: float, mtime_ns: int) -> None:
    """A chunk of constant vectors written by a run blind to the others, with a chosen mtime."""
    blind = EmbeddingCache(root)
    blind._refresh = lambda ns: None
    before = set(ns_path(root).glob("*.keys.json")) if ns_path(root).exists() else set()
    blind.get_or_encode(SETTINGS, "document", texts, lambda t: np.full((len(t), DIM), value))
    [keys] = set(ns_path(root).glob("*.keys.json")) - before
    os.utime(keys, ns=(mtime_ns, mtime_ns))


def read(cache: EmbeddingCache, texts: list[str]) -> np.ndarray:
    return cache.get_or_encode(SETTINGS, "document", texts, lambda t: pytest.fail(f"encoded {t}"))


def test_writer_reads_the_older_duplicate_not_its_own_chunk(tmp_path):
    texts = ["a", "b"]
    write_chunk(tmp_path, texts, 1.0, mtime_ns=1_000_000_000)
    late = EmbeddingCache(tmp_path)
    late._refresh = lambda ns: None  # did not see the first chunk when it encoded
    late.get_or_encode(SETTINGS, "document", texts, lambda t: np.full((len(t), DIM), 2.0))
    del late._refresh
    assert read(late, texts)[:, 0].tolist() == [1.0, 1.0]
    assert read(EmbeddingCache(tmp_path), texts)[:, 0].tolist() == [1.0, 1.0]


def test_a_preferred_chunk_appearing_later_wins_in_every_reader(tmp_path):
    write_chunk(tmp_path, ["a", "b"], 2.0, mtime_ns=2_000_000_000)
    early_reader = EmbeddingCache(tmp_path)
    assert read(early_reader, ["a", "b"])[:, 0].tolist() == [2.0, 2.0]
    # A run that started earlier finishes now: its keys file is older (smaller mtime).
    write_chunk(tmp_path, ["b", "c"], 1.0, mtime_ns=1_000_000_000)
    for reader in (early_reader, EmbeddingCache(tmp_path)):
        assert read(reader, ["a", "b", "c"])[:, 0].tolist() == [2.0, 1.0, 1.0]


def test_equal_mtimes_are_broken_by_chunk_id(tmp_path):
    write_chunk(tmp_path, ["a"], 2.0, mtime_ns=1_000_000_000)
    early_reader = EmbeddingCache(tmp_path)
    assert read(early_reader, ["a"])[0, 0] == 2.0
    write_chunk(tmp_path, ["a"], 1.0, mtime_ns=1_000_000_000)
    ns = ns_path(tmp_path)
    [npy] = [p for p in ns.glob("*.npy") if np.load(p)[0, 0] == 1.0]
    for suffix in (".npy", ".keys.json"):  # give the second chunk the smallest possible id
        ns.joinpath(npy.stem + suffix).rename(ns / ("0" * 32 + suffix))
    os.utime(ns / ("0" * 32 + ".keys.json"), ns=(1_000_000_000, 1_000_000_000))
    for reader in (early_reader, EmbeddingCache(tmp_path)):
        assert read(reader, ["a"])[0, 0] == 1.0


# ------------------------------------------------------ two `embedbench eval`s


@pytest.fixture
def small_squad(shared_data, tmp_path) -> Path:
    """XQuAD-R en cut to its first 6 articles (30 paragraphs), so three model runs fit in a minute."""
    data = json.loads((shared_data / "xquad-r" / "en.json").read_text(encoding="utf-8"))
    data["data"] = data["data"][:6]
    path = tmp_path / "small" / "en.json"
    path.parent.mkdir()
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def eval_cmd(squad: Path, precision: str, results: Path) -> list[str]:
    return [sys.executable, "-m", "embedbench.cli", "eval", "--model", "minilm-l6", "--dataset", f"squad:{squad}",
            "--precision", precision, "--limit-queries", "20", "--results-dir", str(results)]


def stored(results: Path) -> dict[str, dict]:
    """Each summary under `results` by precision, with the folder it lies in."""
    by_precision = {}
    for path in results.rglob("*.json"):
        if not path.name.endswith(".queries.json"):
            summary = json.loads(path.read_text())
            by_precision[summary["precision"]] = {**summary, "folder": path.parent}
    return by_precision


@pytest.mark.slow
def test_two_concurrent_evals_encode_each_text_once_and_match_an_isolated_run(small_squad, tmp_path):
    """Run A scores fp32 and run B int8 (both need every vector), so both summaries stay in the folder."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "EMBEDBENCH_CACHE_DIR": str(tmp_path / "alone-cache")}
    alone = subprocess.run(eval_cmd(small_squad, "fp32,int8", tmp_path / "alone"), env=env, capture_output=True,
                           text=True, timeout=300)
    assert alone.returncode == 0, alone.stderr

    env["EMBEDBENCH_CACHE_DIR"] = str(tmp_path / "shared-cache")
    procs = [subprocess.Popen(eval_cmd(small_squad, precision, tmp_path / "shared"), env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for precision in ("fp32", "int8")]
    for p in procs:
        _, stderr = p.communicate(timeout=300)
        assert p.returncode == 0, stderr

    isolated, shared = stored(tmp_path / "alone"), stored(tmp_path / "shared")
    distinct = isolated["fp32"]["provenance"]["texts_encoded"]
    assert distinct == isolated["fp32"]["n_docs"] + isolated["fp32"]["n_queries"] == 30 + 20
    assert sum(r["provenance"]["texts_encoded"] for r in shared.values()) == distinct
    rows = sum(json.loads(p.read_text())["n"] for p in (tmp_path / "shared-cache").rglob("*.keys.json")
               if vector_role(p.parent))  # not the truncation flags cached beside the vectors
    assert rows == distinct
    for precision in ("fp32", "int8"):
        assert shared[precision]["metrics"] == isolated[precision]["metrics"]
        assert (shared[precision]["folder"] / shared[precision]["per_query_file"]).is_file()
    assert not list((tmp_path / "shared").rglob(".tmp-*"))


def vector_role(namespace: Path) -> bool:
    """Whether a cache namespace holds vectors (role query or document), not truncation flags."""
    return json.loads((namespace / "key.json").read_text())["role"] in ("query", "document")
