"""Search indexes (--index): faiss indexes beside the exact search, what they lose and what they cost.

One evaluation of a small synthetic Query2Doc task with the hashing encoder runs every index kind at
fp32, binary and binary+int8 (binary HNSW as the first stage); the exact results must equal a run without --index bit for bit (same identity,
metrics and per-query values), and each index is checked against an oracle: its overlap with the
exact top-k recomputed from faiss's own flat search, SQ8 against fp32, a wide HNSW against exact.
"""

from __future__ import annotations

import faiss
import numpy as np
import pytest

from embedbench.cli.main import main
from embedbench.engine.runner import evaluate
from embedbench.errors import EmbedbenchError
from embedbench.results import read_per_query, read_results
from embedbench.scoring.index import AnnIndex, check_index_plans, parse_index_specs
from embedbench.engine.ann import rerank_candidates
from embedbench.scoring.precision import PRECISIONS, apply_precision
from embedbench.scoring.retrieval import two_stage_search
from embedbench.scoring.search import search_hamming

INDEXES = ("exact,hnsw:m=16:ef=2000:efc=200,hnsw:m=16:ef=40:efc=200,sq8,ivf:nlist=16:nprobe=1,"
           "binary-hnsw:m=16:ef=2000:efc=200")


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """faiss single-threaded: HNSW graphs are then built in one order, so runs are reproducible."""
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    yield
    faiss.omp_set_num_threads(before)


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    path = tmp_path_factory.mktemp("suite") / "s.yaml"
    path.write_text("name: s\ntasks:\n  - {name: S, loader: synthetic-q2d, main_score: ndcg_at_10, "
                    "options: {n_queries: 60, languages: [en, de]}}\n")
    return path


@pytest.fixture(scope="module")
def runs(tmp_path_factory, suite):
    """The same task without --index and with every index kind: {index name: (Result, per-query)} each."""
    root = tmp_path_factory.mktemp("ann")
    common = dict(suite=str(suite), corpus_sizes=[2000], precisions="fp32,binary,binary+int8", cache_dir=root / "cache")
    out = {}
    for name, index in (("plain", None), ("indexed", INDEXES)):
        evaluate("hashing", results_dir=root / name, index=index, **common)
        out[name] = {(r.precision, (r.costs or {}).get("index")): (r, read_per_query(root / name, r))
                     for r in read_results(root / name)}
    return out


def test_exact_through_the_index_path_equals_todays_results(runs):
    plain, indexed = runs["plain"], runs["indexed"]
    for precision in ("fp32", "binary", "binary+int8"):
        before, before_pq = plain[(precision, "exact")]
        after, after_pq = indexed[(precision, "exact")]
        assert "index" not in after.variant
        assert after.identity_hash() == before.identity_hash()
        assert after.metrics == before.metrics and after.main_score == before.main_score
        assert after_pq == before_pq


def test_every_index_kind_is_a_result_with_its_spec_in_the_variant(runs):
    got = sorted(k for k in runs["indexed"] if k[1] != "exact")
    assert got == [("binary", "binary-hnsw:m=16:ef=2000:efc=200"), ("binary+int8", "binary-hnsw:m=16:ef=2000:efc=200"),
                   ("fp32", "hnsw:m=16:ef=2000:efc=200"),
                   ("fp32", "hnsw:m=16:ef=40:efc=200"), ("fp32", "ivf:nlist=16:nprobe=1:seed=0"), ("fp32", "sq8")]
    for (precision, index), (result, _) in runs["indexed"].items():
        if index != "exact":
            assert result.variant["index"] == index
            costs = result.costs
            assert costs["index_bytes"] > 0 and costs["qps"] > 0 and costs["build_seconds"] >= 0
            assert costs["latency_p50_ms"] <= costs["latency_p99_ms"] and costs["latency_queries"] == 60
            assert costs["main_score_delta"] == pytest.approx(result.main_score - costs["exact_main_score"], abs=1e-6)


def test_wide_hnsw_finds_the_exact_top_k(runs):
    for key in (("fp32", "hnsw:m=16:ef=2000:efc=200"), ("binary", "binary-hnsw:m=16:ef=2000:efc=200")):
        result, _ = runs["indexed"][key]
        assert result.metrics["ann_overlap_at_10"] >= 0.99, key
        assert result.metrics["ann_overlap_at_100"] >= 0.99, key


def test_binary_hnsw_as_a_first_stage_is_reranked_like_the_exact_two_stage_search(runs):
    """binary+int8 through a binary HNSW: its candidates re-ranked by int8, compared with the exact
    binary+int8 search; nothing past the rescore depth (100) is measured, the int8 rows count in the bytes."""
    exact, _ = runs["indexed"][("binary+int8", "exact")]
    result, per_query = runs["indexed"][("binary+int8", "binary-hnsw:m=16:ef=2000:efc=200")]
    assert result.variant["rescore_depth"] == 100 and result.variant["index"] == "binary-hnsw:m=16:ef=2000:efc=200"
    assert result.metrics["ann_overlap_at_10"] >= 0.99 and result.metrics["ann_overlap_at_100"] >= 0.99
    assert abs(result.main_score - exact.main_score) <= 0.01
    assert result.metrics["recall_at_1000"] is None and result.metrics["ann_overlap_at_1000"] is None
    assert "ann_overlap_at_1000" not in per_query and "recall_at_1000" not in per_query
    costs = result.costs
    assert costs["rescore_depth"] == 100 and costs["k"] == 100 and costs["rescore_bytes"] == 2000 * 384
    assert costs["bytes_per_vector"] == pytest.approx((costs["index_bytes"] + 2000 * 384) / 2000, abs=1e-3)


def test_reranking_a_candidate_pool_equals_the_in_memory_two_stage_search():
    """The re-rank of given candidates (the faiss first stage's path) is the exact two-stage search's
    re-rank bit for bit when handed the Hamming top-depth; an empty slot (-1) stays last at -inf."""
    rng = np.random.default_rng(3)
    queries = rng.standard_normal((12, 64)).astype(np.float32)
    docs = rng.standard_normal((500, 64)).astype(np.float32)
    enc = apply_precision(PRECISIONS["binary+int8"], queries, docs, None, {}, 50)
    _, candidates = search_hamming(enc.queries, enc.docs, 50)
    want = two_stage_search(enc, 20)
    got = rerank_candidates(enc.rescore, candidates, enc.rescore.docs[candidates], 20)
    assert np.array_equal(got[1], want[1]) and np.array_equal(got[0], want[0])
    holed = candidates.copy()
    holed[:, 0] = -1
    scores, idx = rerank_candidates(enc.rescore, holed, enc.rescore.docs[np.maximum(holed, 0)], 50)
    assert (idx[:, -1] == -1).all() and np.isneginf(scores[:, -1]).all() and (idx[:, :-1] >= 0).all()


def test_specs_that_differ_in_ef_search_one_built_graph(runs):
    wide, _ = runs["indexed"][("fp32", "hnsw:m=16:ef=2000:efc=200")]
    narrow, per_query = runs["indexed"][("fp32", "hnsw:m=16:ef=40:efc=200")]
    assert narrow.costs["build_seconds"] == wide.costs["build_seconds"]
    assert narrow.costs["index_bytes"] == wide.costs["index_bytes"]
    # a narrow search returns fewer of the exact top 1000 (an HNSW search keeps about ef candidates, not k)
    assert narrow.metrics["ann_overlap_at_1000"] < wide.metrics["ann_overlap_at_1000"]
    assert np.mean(list(per_query["ann_overlap_at_1000"].values())) == pytest.approx(narrow.metrics["ann_overlap_at_1000"])


def test_sq8_stays_within_a_hundredth_of_fp32(runs):
    exact, _ = runs["indexed"][("fp32", "exact")]
    sq8, _ = runs["indexed"][("fp32", "sq8")]
    assert abs(sq8.metrics["ndcg_at_10"] - exact.metrics["ndcg_at_10"]) <= 0.01
    assert sq8.bytes_per_vector == pytest.approx(384, abs=2)  # one byte a dimension (faiss's serialized size)


def test_a_one_probe_ivf_loses_documents_and_says_how_many(runs):
    """The overlap is not trivially 1: one list of 16 probed misses much of the exact top 100."""
    result, per_query = runs["indexed"][("fp32", "ivf:nlist=16:nprobe=1:seed=0")]
    assert result.metrics["ann_overlap_at_100"] < 0.9
    assert np.mean(list(per_query["ann_overlap_at_100"].values())) == pytest.approx(result.metrics["ann_overlap_at_100"])


def test_overlap_equals_faiss_flat_against_the_same_index():
    """The overlap the engine reports equals the one computed from faiss's flat search, by sets."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3000, 32)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    q = x[:50] + 0.3 * rng.standard_normal((50, 32)).astype(np.float32)
    ann = AnnIndex(parse_index_specs("ivf:nlist=32:nprobe=2")[0], "fp32", 32, len(x))
    ann.train(x[np.sort(rng.choice(len(x), 2000, replace=False))])
    ann.add(x[:1500])
    ann.add(x[1500:])
    _, idx = ann.search(q, 100)
    flat = faiss.IndexFlatIP(32)
    flat.add(x)
    _, ref = flat.search(q, 100)
    from embedbench.engine.ann import overlaps

    got = overlaps(ref, idx)["ann_overlap_at_10"]
    want = [len(set(ref[r, :10]) & set(idx[r, :10][idx[r, :10] >= 0])) / 10 for r in range(50)]
    assert got.tolist() == pytest.approx(want)
    assert 0 < np.mean(want) < 1


def test_sq8_trained_on_the_corpus_range_equals_training_on_every_row():
    """The engine trains SQ8 on two rows (per-dimension min and max): the same index as on every row."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1000, 24)).astype(np.float32)
    spec = parse_index_specs("sq8")[0]
    a, b = AnnIndex(spec, "fp32", 24, 1000), AnnIndex(spec, "fp32", 24, 1000)
    a.train(x)
    b.train(np.stack([x.min(0), x.max(0)]))
    a.add(x)
    b.add(x)
    assert np.array_equal(faiss.serialize_index(a.faiss), faiss.serialize_index(b.faiss))


def test_ivf_training_is_seeded():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2000, 16)).astype(np.float32)
    built = []
    for seed in (0, 0, 1):
        ann = AnnIndex(parse_index_specs(f"ivfpq:nlist=8:m=4:nbits=4:nprobe=2:seed={seed}")[0], "fp32", 16, 2000)
        ann.train(x)
        ann.add(x)
        built.append(faiss.serialize_index(ann.faiss))
    assert np.array_equal(built[0], built[1]) and not np.array_equal(built[0], built[2])


def test_parse_fills_every_parameter_in_a_canonical_name():
    specs = parse_index_specs("exact, HNSW:ef=64:m=8, ivfpq:nlist=64:m=8")
    assert [s.name for s in specs] == ["exact", "hnsw:m=8:ef=64:efc=40",
                                       "ivfpq:nlist=64:m=8:nbits=8:nprobe=32:seed=0"]
    assert parse_index_specs(None) == parse_index_specs("exact")


@pytest.mark.parametrize("bad", ["annoy", "hnsw:x=3", "hnsw:m=0", "hnsw:m=8:m=9", "hnsw,hnsw:m=32", "",
                                 "ivf:nlist=4:nprobe=8", "ivfpq:nbits=20", "hnsw:ef"])
def test_bad_specs_raise_one_line(bad):
    with pytest.raises(EmbedbenchError) as err:
        parse_index_specs(bad)
    assert "\n" not in str(err.value)


def test_an_index_is_built_only_at_the_precisions_it_applies_to():
    hnsw, sq8, bhnsw = parse_index_specs("hnsw,sq8,binary-hnsw")
    fp32, int8, binary, two = (PRECISIONS[n] for n in ("fp32", "int8", "binary", "binary+int8"))
    check_index_plans([hnsw, sq8, bhnsw], [fp32, int8, binary], [384])  # each applies to one of them
    check_index_plans([bhnsw], [two, PRECISIONS["binary+fp32"]], [384])  # binary HNSW as the first stage
    for index, precisions in ((hnsw, [int8]), (sq8, [binary]), (bhnsw, [fp32]), (hnsw, [two]), (sq8, [two])):
        with pytest.raises(EmbedbenchError, match="applies to"):
            check_index_plans([index], precisions, [384])
    with pytest.raises(EmbedbenchError, match="must divide"):
        check_index_plans(parse_index_specs("ivfpq:m=7"), [fp32], [384])


@pytest.mark.parametrize("args", [["--index", "hnsw:m=x"], ["--index", "hnsw", "--precision", "int8"],
                                  ["--index", "ivfpq:m=5"], ["--model", "bm25", "--index", "hnsw"]])
def test_cli_refuses_a_bad_index_with_one_line_and_writes_nothing(tmp_path, capsys, suite, args):
    out = tmp_path / "results"
    code = main(["eval", "--model", "hashing", "--suite", str(suite), "--corpus-size", "2000",
                 "--results-dir", str(out), *args])  # a second --model (bm25) replaces hashing
    errors = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert code == 2 and len(errors) == 1 and errors[0].startswith("embedbench: error:")
    assert not out.exists() or not any(out.rglob("*.json"))
