"""The multi-vector engine (engine/late.py) on real data: the library's own MaxSim numbers, the same numbers from
the cache read a piece at a time, every token precision, and chunked / RAG tasks (or one line where they cannot
apply)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from multivector_fixtures import tiny_multi_vector

import embedbench
from embedbench.engine import late
from embedbench.errors import EmbedbenchError

LIMIT = 40
MAX_LENGTH = 48  # tokens: XQuAD's paragraphs cut, to keep the test short (the --max-length path, both sides)


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tiny_multi_vector(tmp_path_factory)


@pytest.fixture(scope="module")
def xquad_en(shared_data_dir: Path) -> Path:
    return shared_data_dir / "xquad-r" / "en.json"


@pytest.fixture(scope="module")
def shared_data_dir() -> Path:
    from conftest import SHARED_DATASETS, require_data

    for relative in SHARED_DATASETS:
        path = require_data(relative)
    return path.parents[1]


def _library_ndcg(folder: Path, path: Path, qids: list[str]) -> float:
    """nDCG@10 on XQuAD-R en from sentence-transformers' MultiVectorEncoder (encode + MaxSim similarity) and
    pytrec_eval, the questions `qids` only."""
    import pytrec_eval
    from sentence_transformers import MultiVectorEncoder

    corpus, queries, qrels = {}, {}, {}
    for article in json.loads(path.read_text())["data"]:
        for para in article["paragraphs"]:
            did = corpus.setdefault(para["context"], f"d{len(corpus)}")
            for qa in para["qas"]:
                queries[qa["id"]], qrels[qa["id"]] = qa["question"], {did: 1}
    model = MultiVectorEncoder(str(folder), device="cpu")
    model.max_seq_length = MAX_LENGTH
    texts, dids = list(corpus), list(corpus.values())
    scores = model.similarity(model.encode_query([queries[q] for q in qids], convert_to_numpy=True, batch_size=64),
                              model.encode_document(texts, convert_to_numpy=True, batch_size=64)).numpy()
    run = {q: dict(zip(dids, map(float, row))) for q, row in zip(qids, scores)}
    per_query = pytrec_eval.RelevanceEvaluator({q: qrels[q] for q in qids}, {"ndcg_cut.10"}).evaluate(run)
    return float(np.mean([v["ndcg_cut_10"] for v in per_query.values()]))


def test_xquad_scores_the_librarys_maxsim_and_reads_the_cache_a_piece_at_a_time(
        folder: Path, xquad_en: Path, shared_data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """XQuAD-R en (240 paragraphs, cut at MAX_LENGTH tokens): the number is the library's own MaxSim one; the
    same ranking comes back when the corpus is read from the cache in pieces of 100 documents, encoding nothing."""
    from embedbench.engine.queries import sample_queries
    from embedbench.data.squad import load_squad

    run = dict(dataset=f"squad:{xquad_en}", limit_queries=LIMIT, write=False, cache_dir=tmp_path / "cache",
               data_dir=shared_data_dir, batch_size=64, precisions="fp32,fp16,int8,binary", max_length=MAX_LENGTH)
    whole = embedbench.evaluate(str(folder), **run)
    qids = sample_queries(load_squad(xquad_en), LIMIT)
    assert whole[0].metrics["ndcg_at_10"] == pytest.approx(_library_ndcg(folder, xquad_en, qids), abs=1e-6)
    assert whole[0].provenance.texts_encoded == 240 + LIMIT
    monkeypatch.setattr(late, "PIECE_DOCS", 100)
    pieces = embedbench.evaluate(str(folder), **run)
    assert pieces[0].provenance.texts_encoded == 0 and pieces[0].provenance.texts_cached == 240 + LIMIT
    for a, b in zip(whole, pieces):
        assert (a.precision, a.quantization, a.bytes_per_vector) == (b.precision, b.quantization, b.bytes_per_vector)
        assert a.metrics == pytest.approx(b.metrics, abs=1e-9)
    by = {r.precision: r for r in whole}
    assert [by[p].quantization for p in ("fp32", "fp16", "int8", "binary")] == ["none", "none", "posthoc", "posthoc"]
    tokens = by["fp32"].bytes_per_vector / 512  # mean tokens per document
    for precision, per_token in (("fp16", 256), ("int8", 128), ("binary", 16)):
        assert abs(by[precision].bytes_per_vector - tokens * per_token) <= 0.5


def _tiny_xquad(root: Path, source: Path, articles: int = 2) -> Path:
    """A data folder whose xquad-r/en.json holds the first `articles` articles of the real file."""
    data = json.loads(source.read_text())
    data["data"] = data["data"][:articles]
    (root / "xquad-r").mkdir(parents=True)
    (root / "xquad-r" / "en.json").write_text(json.dumps(data))
    return root


SUITE = """
name: tiny-late
description: chunked and RAG tasks of XQuAD-R en, first two articles
tasks:
  - {name: Chunks, loader: xquad-r, path: xquad-r, split: test, language: en, type: ContextualRetrieval,
     main_score: ndcg_at_10, options: {mode: contextual, document: paragraph, languages: [en]}}
  - {name: Rag, loader: xquad-r, path: xquad-r, split: test, language: en, type: RAG,
     main_score: answer_recall_at_5, metrics: [answer_recall], options: {mode: rag, languages: [en]}}
"""


def test_chunked_and_rag_tasks_run_and_late_chunking_is_refused(folder: Path, xquad_en: Path, tmp_path: Path) -> None:
    data = _tiny_xquad(tmp_path / "data", xquad_en)
    suite = tmp_path / "tiny-late.yaml"
    suite.write_text(SUITE)
    run = dict(suite=str(suite), data_dir=data, limit_queries=10, cache_dir=tmp_path / "cache", batch_size=32)
    chunks, rag = embedbench.evaluate(str(folder), results_dir=tmp_path / "results", **run)
    assert chunks.variant["context"] == "none" and 0 < chunks.main_score <= 1
    assert rag.main_score_name == "answer_recall_at_5" and 0 < rag.main_score <= 1
    with pytest.raises(EmbedbenchError, match="late-chunking"):
        embedbench.evaluate(str(folder), context="late-chunking", results_dir=tmp_path / "refused", **run)
    assert not (tmp_path / "refused").exists()


def test_rerank_with_maxsim_re_scores_the_dense_top_n(folder: Path, beir_dir: Path, tmp_path: Path) -> None:
    """minilm-l6's top 15 re-ranked by the tiny model's MaxSim, against the libraries alone: SentenceTransformer
    cosine for the candidates, MultiVectorEncoder.similarity for their order, pytrec_eval for nDCG@10."""
    import pytrec_eval
    from multivector_fixtures import minilm_path
    from sentence_transformers import MultiVectorEncoder, SentenceTransformer

    from embedbench.data.beir import load_beir

    depth = 15
    [result] = embedbench.evaluate("minilm-l6", dataset=f"beir:{beir_dir}", precisions="fp32", write=False,
                                   cache_dir=tmp_path / "cache", rerank_with=str(folder), rerank_depth=depth)
    data = load_beir(beir_dir)
    qids, dids = sorted(data.qrels), sorted(data.corpus, reverse=True)  # trec_eval's tie order: ids descending
    dense = SentenceTransformer(str(minilm_path()), device="cpu")
    cosine = dense.encode([data.queries[q].text for q in qids], normalize_embeddings=True) @ \
        dense.encode([data.corpus[d].full_text for d in dids], normalize_embeddings=True).T
    late = MultiVectorEncoder(str(folder), device="cpu")
    maxsim = late.similarity(late.encode_query([data.queries[q].text for q in qids], convert_to_numpy=True),
                             late.encode_document([data.corpus[d].full_text for d in dids], convert_to_numpy=True)).numpy()
    run, first_stage = {}, []
    for r, qid in enumerate(qids):
        candidates = np.argsort(-cosine[r], kind="stable")[:depth]
        run[qid] = {dids[c]: float(maxsim[r, c]) for c in candidates}
        exact = np.argsort(-maxsim[r], kind="stable")[:10]
        first_stage.append(len(set(exact) & set(candidates)) / 10)
    per_query = pytrec_eval.RelevanceEvaluator(data.qrels, {"ndcg_cut.10"}).evaluate(run)
    assert result.metrics["ndcg_at_10"] == pytest.approx(np.mean([v["ndcg_cut_10"] for v in per_query.values()]),
                                                         abs=1e-6)
    assert result.metrics["first_stage_recall_at_10"] == pytest.approx(np.mean(first_stage), abs=1e-9)
    assert result.metrics["ndcg_at_100"] is None  # past the 15 re-ranked documents: not measured
    assert result.variant["rerank_with"] == str(folder) and result.variant["rerank_depth"] == depth
    with pytest.raises(EmbedbenchError, match="multi-vector"):  # the re-ranker must be a late-interaction model
        embedbench.evaluate("hashing", dataset=f"beir:{beir_dir}", write=False, cache_dir=tmp_path / "cache",
                            rerank_with="hashing")
