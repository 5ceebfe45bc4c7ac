"""Synthetic Query2Query / Query2Doc: determinism, the size knob, relevance invariants, languages, runner."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from embedbench.data.tasks import LoadContext, load_task_data
from embedbench.data.types import RetrievalData
from embedbench.errors import EmbedbenchError
from embedbench.data.spec import TaskSpec
from embedbench.data.suites import load_suite
from embedbench.data.synthetic import BLOCK_SIZE, Config, build_q2d, build_q2q, iter_q2d_corpus, iter_q2q_corpus
from embedbench.data.synthetic import q2d, q2q
from embedbench.data.synthetic.templates import LANGUAGES, check_language, language, value_text
from embedbench.data.synthetic.transforms import normalize
from embedbench.data.synthetic.world import ATTRIBUTES, judged_entities, judged_rng

SMALL = {"q2q": (Config(n_queries=60), 3_500), "q2d": (Config(n_queries=60), 1_500)}
BUILD = {"q2q": build_q2q, "q2d": build_q2d}
ITER = {"q2q": iter_q2q_corpus, "q2d": iter_q2d_corpus}


def serialized_hash(data: RetrievalData) -> str:
    """sha256 of everything the generator produces, languages and titles included."""
    blob = json.dumps({
        "corpus": [[i, d.title, d.text, d.language] for i, d in data.corpus.items()],
        "queries": [[i, q.text, q.language] for i, q in data.queries.items()],
        "qrels": data.qrels,
    }, ensure_ascii=False).encode()
    return hashlib.sha256(blob).hexdigest()


@pytest.fixture(scope="module")
def built() -> dict[str, RetrievalData]:
    return {s: BUILD[s](*SMALL[s]) for s in SMALL}


@pytest.mark.parametrize("suite", ["q2q", "q2d"])
def test_same_seed_same_bytes_other_seed_differs(suite, built):
    cfg, size = SMALL[suite]
    q2q.judged.cache_clear()
    q2d.judged.cache_clear()
    assert serialized_hash(BUILD[suite](cfg, size)) == serialized_hash(built[suite])
    other = BUILD[suite](Config(seed=1, n_queries=cfg.n_queries), size)
    assert serialized_hash(other) != serialized_hash(built[suite])
    assert {q.text for q in other.queries.values()} != {q.text for q in built[suite].queries.values()}


def test_bytes_do_not_depend_on_the_process_hash_seed(built):
    code = ("import hashlib,json,sys; sys.path.insert(0, %r); from test_synthetic import serialized_hash, SMALL, BUILD;"
            "print(serialized_hash(BUILD['q2q'](*SMALL['q2q'])), serialized_hash(BUILD['q2d'](*SMALL['q2d'])))"
            % str(Path(__file__).parent))
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [serialized_hash(built["q2q"]), serialized_hash(built["q2d"])]


@pytest.mark.parametrize("suite", ["q2q", "q2d"])
def test_size_knob_only_appends_distractors(suite, built):
    cfg, size = SMALL[suite]
    small, large = built[suite], BUILD[suite](cfg, size + 2 * BLOCK_SIZE + 123)
    assert len(small.corpus) == size and len(large.corpus) == size + 2 * BLOCK_SIZE + 123
    assert small.queries == large.queries and small.qrels == large.qrels
    assert all(large.corpus[i] == d for i, d in small.corpus.items())  # same ids, same texts: a prefix
    added = set(large.corpus) - set(small.corpus)
    assert added and all(i.startswith("x") for i in added)
    assert not added & {d for rels in large.qrels.values() for d in rels}


@pytest.mark.parametrize("suite", ["q2q", "q2d"])
def test_blocks_are_generated_alone_and_streaming_matches(suite, built):
    cfg, size = SMALL[suite]
    module = q2q if suite == "q2q" else q2d
    chunks = list(ITER[suite](cfg, size))
    assert [i for c in chunks for i, _ in c] == list(built[suite].corpus)
    assert all(len(c) <= BLOCK_SIZE for c in chunks[1:])
    block1 = module.distractor_block(cfg, 1)
    assert len(block1) == BLOCK_SIZE and block1 == module.distractor_block(cfg, 1)
    assert dict(block1[:10]).items() <= built[suite].corpus.items()


@pytest.mark.parametrize("suite", ["q2q", "q2d"])
def test_every_query_has_relevant_items_and_never_itself(suite, built):
    data = built[suite]
    texts = {normalize(d.full_text) for d in data.corpus.values()}
    for qid, query in data.queries.items():
        rels = data.qrels[qid]
        assert rels and all(r == 1 for r in rels.values())
        assert qid not in data.corpus
        assert normalize(query.text) not in texts, (qid, query.text)


def test_q2q_relevant_are_the_cluster_and_judged_texts_are_unique(built):
    data = built["q2q"]
    for qid, rels in data.qrels.items():
        assert sorted(rels) == sorted(d for d in data.corpus if d.startswith(f"j{qid[1:]}-"))
        assert len(rels) >= 1
    judged = [normalize(d.text) for i, d in data.corpus.items() if not i.startswith("x")]
    assert len(judged) == len(set(judged))
    assert any(i.startswith("h") and "-s" in i for i in data.corpus)  # sibling hard negatives
    assert any(i.startswith("h") and "-a" in i for i in data.corpus)  # same entity, other attribute


def test_q2d_relevant_pages_state_the_fact_and_siblings_are_confusable():
    cfg = Config(n_queries=24)
    data = build_q2d(cfg, 600)
    mains, sibs, _ = judged_entities(judged_rng(cfg.seed, "q2d"), cfg.n_queries, len(cfg.languages))
    for i, (e, s) in enumerate(zip(mains, sibs)):
        assert e.kind == s.kind and e.key != s.key
        rels = data.qrels[f"q{i:05d}"]
        pages = [data.corpus[d] for d in data.corpus if d.startswith(f"j{i:05d}-")]
        assert 3 <= len(pages) <= 5 and 1 <= len(rels) <= 2
        for did in rels:
            page = data.corpus[did]
            stated = [a for a in ATTRIBUTES[e.kind] if value_text(e.facts[a], language(page.language)) in page.text]
            assert stated, (did, page.text)


def test_every_language_asks_about_every_kind():
    languages = 6
    mains, _, _ = judged_entities(judged_rng(0, "q2q"), 48, languages)
    for lang in range(languages):
        assert {e.kind for e in mains[lang::languages]} == set(ATTRIBUTES)


def test_all_languages_present_with_their_scripts(built):
    for code in LANGUAGES:
        check_language(language(code))
    for data in built.values():
        assert {q.language for q in data.queries.values()} == set(LANGUAGES)
        assert {d.language for d in data.corpus.values()} == set(LANGUAGES)
    ru = [q.text for q in built["q2q"].queries.values() if q.language == "ru"]
    ja = [q.text for q in built["q2q"].queries.values() if q.language == "ja"]
    # A few are legitimately script-free ("Kelego Bank CEO" is a fine Japanese query).
    assert sum(bool(re.search("[а-яё]", t.lower())) for t in ru) >= 0.85 * len(ru)
    assert sum(bool(re.search("[\u3040-\u30ff\u4e00-\u9fff]", t)) for t in ja) >= 0.85 * len(ja)


def _spec(loader: str, **options) -> TaskSpec:
    return TaskSpec(name="Synth", loader=loader, options=options)


def test_loaders_variant_default_size_and_by_language(tmp_path):
    ctx = LoadContext(None, tmp_path)
    [sub] = load_task_data(_spec("synthetic-q2q", n_queries=30, corpus_size=2000), ctx)
    assert sub.variant == {"corpus_size": 2000} and sub.language == "mul" and len(sub.data.corpus) == 2000
    [sized] = load_task_data(_spec("synthetic-q2q", n_queries=30), LoadContext(None, tmp_path, 2500))
    assert sized.variant == {"corpus_size": 2500} and len(sized.data.corpus) == 2500
    subs = load_task_data(_spec("synthetic-q2d", n_queries=12, corpus_size=400, languages=["en", "ja"],
                                by_language=True), ctx)
    assert [s.language for s in subs] == ["en", "ja"]
    assert all(s.variant == {"corpus_size": 400} and len(s.data.queries) == 6 for s in subs)
    assert all(q.language == s.language for s in subs for q in s.data.queries.values())


@pytest.mark.parametrize("options, message", [
    ({"n_queries": 60, "corpus_size": 100}, "smaller than its judged part"),
    ({"colour": 1}, "unknown option 'colour'"),
    ({"languages": ["en", "xx"]}, "unknown synthetic language 'xx'"),
    ({"seed": "abc"}, "seed must be an integer"),
])
def test_bad_options_are_one_line_errors(tmp_path, options, message):
    with pytest.raises(EmbedbenchError, match=message):
        load_task_data(_spec("synthetic-q2q", **options), LoadContext(None, tmp_path))


def test_suite_files_load_and_document_their_counts():
    root = Path(__file__).resolve().parents[1] / "suites"
    for suite, module, unit in (("q2q", q2q, "items"), ("q2d", q2d, "pages")):
        [task] = load_suite(f"synthetic-{suite}").tasks
        assert task.loader == f"synthetic-{suite}"
        assert {"seed", "languages", "n_queries", "corpus_size"} <= set(task.options)
        module.judged.cache_clear()
        judged = module.judged(Config(seed=task.options["seed"], languages=tuple(task.options["languages"]),
                                      n_queries=task.options["n_queries"]))
        text = (root / f"synthetic-{suite}.yaml").read_text()
        assert f"{len(judged.corpus):,} {unit}" in text  # the documented judged-part size is the real one


def test_evaluate_runs_the_suites_with_the_hashing_encoder(tmp_path):
    import embedbench
    from embedbench.encoders.hashing import HashingEncoder

    suite = tmp_path / "synth.yaml"
    suite.write_text(
        "name: synth\ntasks:\n"
        "  - {name: Q2Q, loader: synthetic-q2q, main_score: recall_at_10, options: {n_queries: 30}}\n"
        "  - {name: Q2D, loader: synthetic-q2d, main_score: recall_at_100, options: {n_queries: 30}}\n")
    results = embedbench.evaluate(HashingEncoder(), suite=str(suite), precisions="fp32,binary",
                                  corpus_sizes=[2000, 3000], results_dir=tmp_path / "results")
    assert len(results) == 8
    points = {(r.task, r.variant["corpus_size"]) for r in results}
    assert points == {(t, n) for t in ("Q2Q", "Q2D") for n in (2000, 3000)}
    assert all(r.n_docs == r.variant["corpus_size"] and r.n_queries == 30 for r in results)
    q2d_fp32 = {r.variant["corpus_size"]: r.main_score for r in results if r.task == "Q2D" and r.precision == "fp32"}
    assert q2d_fp32[2000] > 0.5 and q2d_fp32[3000] <= q2d_fp32[2000] + 1e-9  # more distractors never help


class RandomEncoder:
    """A vector per text from its hash: the floor every real model must clear."""

    def __init__(self) -> None:
        from embedbench.encoders.protocol import EncoderMeta

        self.meta = EncoderMeta(name="random", revision="r1", fingerprint="random-384", dim=384)

    def encode_queries(self, texts):
        import numpy as np

        seeds = (int.from_bytes(hashlib.sha256(t.encode()).digest()[:8], "little") for t in texts)
        return np.stack([np.random.default_rng(s).standard_normal(384).astype(np.float32) for s in seeds])

    encode_documents = encode_queries


@pytest.mark.slow
def test_minilm_and_bm25_beat_a_random_encoder(tmp_path):
    import embedbench

    suite = tmp_path / "synth.yaml"
    suite.write_text(
        "name: synth\ntasks:\n"
        "  - {name: Q2Q, loader: synthetic-q2q, main_score: recall_at_10, options: {n_queries: 60}}\n"
        "  - {name: Q2D, loader: synthetic-q2d, main_score: recall_at_100, options: {n_queries: 60}}\n")
    scores = {}
    for name, model in (("random", RandomEncoder()), ("bm25", "bm25"), ("minilm-l6", "minilm-l6")):
        results = embedbench.evaluate(model, suite=str(suite), corpus_sizes=[2000], write=False,
                                      cache_dir=tmp_path / "cache")
        scores[name] = {r.task: r.main_score for r in results}
    for task in ("Q2Q", "Q2D"):
        assert scores["random"][task] < 0.1, scores
        assert scores["minilm-l6"][task] > scores["random"][task] + 0.3, scores
        assert scores["bm25"][task] > scores["random"][task] + 0.2, scores


def test_scale_curve_streaming_matches_the_runner(tmp_path):
    """scripts/scale_curve.py is a driver over `embedbench eval`: its rows are the runner's metrics."""
    import embedbench
    from embedbench.encoders.hashing import HashingEncoder

    out, table = tmp_path / "rows.jsonl", tmp_path / "curve.md"
    script = Path(__file__).resolve().parents[1] / "scripts" / "scale_curve.py"
    done = subprocess.run([sys.executable, str(script), "--suite", "q2d", "--model", "hashing", "--sizes", "1500",
                           "--n-queries", "30", "--out", str(out), "--table", str(table)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and "failed" not in done.stderr, done.stdout + done.stderr
    rows = {r["precision"]: r for r in map(json.loads, out.read_text().splitlines())}
    assert set(rows) == {"fp32", "int8", "binary"} and all(r["size"] == 1500 for r in rows.values())
    for r in rows.values():  # measured by the driver, per point (no value asserted)
        assert r["wall_s"] > 0 and r["peak_rss_gb"] > 0 and r["texts_encoded"] > 0  # a fresh cache per point
        assert r["command"].startswith("embedbench eval --model hashing --suite ")
    assert "| 1,500 |" in table.read_text() and table.read_text() in done.stdout
    suite = tmp_path / "s.yaml"
    suite.write_text("name: s\ntasks:\n  - {name: Q2D, loader: synthetic-q2d, main_score: recall_at_100, "
                     "options: {n_queries: 30}}\n")
    results = embedbench.evaluate(HashingEncoder(), suite=str(suite), precisions="fp32,int8,binary",
                                  corpus_sizes=[1500], write=False, cache_dir=tmp_path / "cache")
    assert {r.precision for r in results} == set(rows)
    for r in results:  # the same engine on the same data: every metric equal, not just close
        assert rows[r.precision]["metrics"] == r.metrics, r.precision
        assert rows[r.precision]["n_queries"] == r.n_queries == 30 and rows[r.precision]["n_docs"] == 1500
