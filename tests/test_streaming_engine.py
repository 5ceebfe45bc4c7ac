"""The streaming engine: a corpus read and searched a shard at a time gives the in-memory numbers, bit for bit.

Each case runs the same evaluation twice, once with the whole corpus in one shard (today's in-memory
path: one array, int8 calibrated on it) and once in many small shards (vectors read back from the
cache a shard at a time, int8 ranges merged over shards, top-k lists merged), and requires every
metric and every per-query value to be equal, not close.
"""

from __future__ import annotations

import numpy as np
import pytest

from embedbench.data.corpus import MemoryOrder
from embedbench.data.synthetic import Config, build_q2d, build_q2q
from embedbench.data.synthetic.corpus import GENERATOR_VERSION
from embedbench.encoders.protocol import EncoderMeta
from embedbench.engine.cache import EmbeddingCache
from embedbench.engine import executors
from embedbench.engine.runner import evaluate
from embedbench.results import read_per_query, read_results
from embedbench.errors import EmbedbenchError

ALL_PRECISIONS = "fp32,fp16,int8,int8:posthoc,binary,binary+int8,binary+fp32"


@pytest.fixture(autouse=True)
def small_grid(monkeypatch):
    """A 64-document search block, so these small corpora span many blocks and shards (shards are whole blocks)."""
    monkeypatch.setattr(executors, "SEARCH_BLOCK", 64)


def _run(tmp_path, name: str, model, shard_size: int, **kwargs) -> dict:
    out = tmp_path / f"results-{name}"
    results = evaluate(model, results_dir=out, cache_dir=tmp_path / "cache", shard_size=shard_size, **kwargs)
    assert results
    return {r.identity_hash(): (r.metrics, read_per_query(out, r)) for r in read_results(out)}


def _assert_same(one: dict, many: dict) -> None:
    assert one.keys() == many.keys()
    for identity, (metrics, per_query) in one.items():
        assert many[identity][0] == metrics, identity
        assert many[identity][1] == per_query, identity


def test_xquad_r_cross_lingual_sharded_equals_in_memory(tmp_path, shared_data):
    """Real text, 2,640 paragraphs of 11 languages: shards of 128 (21 shards, a ragged last one) against one shard."""
    suite = tmp_path / "x.yaml"
    suite.write_text("name: x\ntasks:\n  - {name: XQ, loader: xquad-r, path: xquad-r, main_score: map_at_20, "
                     "options: {mode: cross-lingual, unit: paragraph}}\n")
    common = dict(suite=str(suite), data_dir=shared_data, precisions=ALL_PRECISIONS, dims=[384, 96],
                  limit_queries=300, rescore_depth=20)
    one = _run(tmp_path, "one", "hashing", 64 * 10**4, **common)
    _assert_same(one, _run(tmp_path, "s128", "hashing", 128, **common))


class FewVectors:
    """Maps every text to one of 5 vectors (by its length mod 5): the corpus is full of exact ties."""

    meta = EncoderMeta(name="few-vectors", revision="r1", fingerprint="few-vectors-1", dim=8, pooling="mean")

    def _vectors(self, texts):
        table = np.random.default_rng(0).standard_normal((5, 8)).astype(np.float32)
        return table[[len(t) % 5 for t in texts]]

    def encode_queries(self, texts):
        return self._vectors(texts)

    def encode_documents(self, texts):
        return self._vectors(texts)


@pytest.mark.parametrize("loader", ["synthetic-q2d", "synthetic-q2q"])
def test_synthetic_with_ties_sharded_equals_in_memory(tmp_path, loader):
    suite = tmp_path / "s.yaml"
    suite.write_text(f"name: s\ntasks:\n  - {{name: S, loader: {loader}, main_score: recall_at_10, "
                     f"options: {{n_queries: 40, languages: [en, de]}}}}\n")
    common = dict(suite=str(suite), corpus_sizes=[5000], precisions=ALL_PRECISIONS, rescore_depth=30)
    one = _run(tmp_path, "one", FewVectors(), 64 * 10**4, **common)
    _assert_same(one, _run(tmp_path, "many", FewVectors(), 320, **common))


def test_shards_are_read_one_at_a_time(tmp_path, monkeypatch):
    """Past one shard, no step reads more than a shard of document vectors at once, and none holds the corpus."""
    reads = []
    real = EmbeddingCache.vectors

    def counting(self, settings, role, keys):
        reads.append(len(keys))
        return real(self, settings, role, keys)

    monkeypatch.setattr(EmbeddingCache, "vectors", counting)
    suite = tmp_path / "s.yaml"
    suite.write_text("name: s\ntasks:\n  - {name: S, loader: synthetic-q2d, main_score: recall_at_10, "
                     "options: {n_queries: 20, languages: [en]}}\n")
    evaluate("hashing", suite=str(suite), corpus_sizes=[3000], precisions="fp32,int8,binary", shard_size=512,
             write=False, cache_dir=tmp_path / "cache")
    assert reads and max(reads) <= 512
    assert sum(reads) == 2 * 3000  # one pass for the int8 ranges, one for every precision's search


def test_synthetic_search_order_is_ids_descending():
    for build in (build_q2d, build_q2q):
        data = build(Config(seed=3, languages=("en", "fr"), n_queries=30), 2600)  # 3 blocks, the last cut short
        order = data.corpus.search_order()
        ids = sorted(dict(data.corpus.items()), reverse=True)
        assert [order[i] for i in range(len(order))] == ids == MemoryOrder(dict(data.corpus.items())).ids
        assert order.texts(0, len(order)) == [data.corpus[d].full_text for d in ids]
        assert order.texts(450, 1750) == [data.corpus[d].full_text for d in ids[450:1750]]
        assert [order.position(d) for d in ids[::97]] == list(range(0, len(ids), 97))
        assert order.position("x99999-000") == -1 and order.position("nope") == -1


def test_generator_output_is_pinned_by_its_version():
    """A change to what the generators write must come with a new GENERATOR_VERSION (it is in the dataset hash)."""
    import hashlib

    h = hashlib.sha256()
    for build in (build_q2d, build_q2q):
        data = build(Config(seed=0, languages=("en", "ja"), n_queries=10), 2500)
        order = data.corpus.search_order()
        for text in order.texts(0, len(order)):
            h.update(text.encode())
    assert (GENERATOR_VERSION, h.hexdigest()[:16]) == (1, PINNED_TEXTS), h.hexdigest()[:16]


PINNED_TEXTS = "bcbc389fa4583e1e"  # sha256 of the texts above, generator version 1


def test_synthetic_dataset_hash_follows_size_and_seed_not_generation():
    a = build_q2d(Config(seed=0, n_queries=10), 2000)
    assert a.content_hash() == build_q2d(Config(seed=0, n_queries=10), 2000).content_hash()
    assert a.content_hash() != build_q2d(Config(seed=0, n_queries=10), 2001).content_hash()
    assert a.content_hash() != build_q2d(Config(seed=1, n_queries=10), 2000).content_hash()


@pytest.mark.parametrize("size, message", [(0, "a positive integer"), (100, "a multiple of 64")])
def test_bad_shard_size_is_refused(tmp_path, size, message):
    with pytest.raises(EmbedbenchError, match=f"--shard-size must be {message}"):
        evaluate("hashing", suite="default", shard_size=size, results_dir=tmp_path / "r")
    assert not (tmp_path / "r").exists()
