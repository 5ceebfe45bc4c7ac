"""ConTEB loader on a local mirror of an illuin-conteb repo (documents + queries configs, hub layout)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml
from conftest import FakeEncoder, pytrec_oracle

import embedbench
from embedbench.data.conteb import split_chunk_id
from embedbench.data.tasks import LoadContext, load_task_data
from embedbench.errors import DataError, EmbedbenchError
from embedbench.data.spec import TaskSpec
from embedbench.data.suites import load_suite
from hub_mirrors import CONTEB_CHUNKS, CONTEB_QUERIES, write_conteb_mirror, write_repo

REPO = "illuin-conteb/football"


@pytest.fixture
def mirror(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = write_conteb_mirror(tmp_path / "mirror", REPO, "train")
    monkeypatch.setenv("EMBEDBENCH_HUB_MIRROR", str(root))
    return root


def load(tmp_path: Path, split: str = "train", data_dir: Path | None = None, **options):
    spec = TaskSpec(name="ConTEB-Test", loader="conteb", split=split, options={"repo": REPO, **options})
    return load_task_data(spec, LoadContext(data_dir, tmp_path / "cache"))


def test_documents_chunk_order_and_qrels(mirror, tmp_path):
    (sub,) = load(tmp_path)
    data = sub.data
    assert (sub.language, sub.split) == ("en", "train")
    assert len(data.corpus) == 5 and len(data.queries) == 4
    # the mirror stores chunks shuffled; documents list them by position, documents sorted by id
    assert data.documents == {"12": ["12_0", "12_1", "12_2"], "7": ["7_0", "7_1"]}
    for doc, texts in CONTEB_CHUNKS.items():
        assert [data.corpus[c].text for c in data.documents[doc]] == texts
    assert data.qrels == {f"q{i}": {chunk: 1} for i, (_, chunk, _) in enumerate(CONTEB_QUERIES)}
    chunks_in_docs = {c for ids in data.documents.values() for c in ids}
    assert all(c in data.corpus and c in chunks_in_docs for rels in data.qrels.values() for c in rels)
    assert data.queries["q2"].text == CONTEB_QUERIES[2][0]
    assert data.answers == {f"q{i}": [a] for i, (_, _, a) in enumerate(CONTEB_QUERIES)}
    assert data.extra == {"empty_chunks": 0, "queries_dropped": 0}
    assert data.source.startswith(f"{REPO}@latest (local mirror ")


def test_hub_path_relative_to_data_dir(tmp_path, monkeypatch):
    monkeypatch.delenv("EMBEDBENCH_HUB_MIRROR", raising=False)
    write_conteb_mirror(tmp_path / "data", REPO, "test")
    (sub,) = load(tmp_path, split="test", data_dir=tmp_path / "data", hub_path=REPO)
    assert sub.split == "test" and len(sub.data.queries) == 4
    with pytest.raises(EmbedbenchError, match="is not a folder"):
        load(tmp_path, split="test", data_dir=tmp_path / "data", hub_path="elsewhere")


def test_mirror_changed_in_place_is_reread(mirror, tmp_path):
    load(tmp_path)
    time.sleep(0.01)
    write_repo(mirror / REPO, {"documents": {"train": [{"chunk_id": "1_0", "chunk": "only chunk"}]},
                               "queries": {"train": [{"query": "which chunk?", "chunk_id": "1_0"}]}})
    (sub,) = load(tmp_path)
    assert sub.data.documents == {"1": ["1_0"]} and sub.data.answers is None


def test_empty_chunks_and_their_queries_are_dropped(mirror, tmp_path):
    write_repo(mirror / REPO, {
        "documents": {"train": [{"chunk_id": "3_0", "chunk": "A text."}, {"chunk_id": "3_1", "chunk": "  "},
                                {"chunk_id": "3_2", "chunk": "More text."}]},
        "queries": {"train": [{"query": "a", "chunk_id": "3_1"}, {"query": "b", "chunk_id": "3_2"}]}})
    (sub,) = load(tmp_path)
    assert sub.data.documents == {"3": ["3_0", "3_2"]}
    assert sub.data.qrels == {"q1": {"3_2": 1}}
    assert sub.data.extra == {"empty_chunks": 1, "queries_dropped": 1}


def test_chunk_ids_list_column(mirror, tmp_path):
    write_repo(mirror / REPO, {
        "documents": {"train": [{"chunk_id": "3_0", "chunk": "A text."}, {"chunk_id": "3_1", "chunk": "B text."}]},
        "queries": {"train": [{"query": "a and b", "chunk_ids": ["3_0", "3_1"]}]}})
    (sub,) = load(tmp_path)
    assert sub.data.qrels == {"q0": {"3_0": 1, "3_1": 1}}


@pytest.mark.parametrize("documents, queries, message", [
    ([{"chunk_id": "nochunk", "chunk": "x"}], [{"query": "q", "chunk_id": "nochunk"}], "not <doc id>_<position>"),
    ([{"chunk_id": "3_0", "chunk": "x"}, {"chunk_id": "3_0", "chunk": "y"}], [{"query": "q", "chunk_id": "3_0"}],
     "duplicate chunk '3_0'"),
    ([{"chunk_id": "3_0", "chunk": "x"}], [{"query": "q", "chunk_id": "4_0"}], "unknown chunk '4_0'"),
])
def test_malformed_splits(mirror, tmp_path, documents, queries, message):
    write_repo(mirror / REPO, {"documents": {"train": documents}, "queries": {"train": queries}})
    with pytest.raises(DataError, match=message):
        load(tmp_path)


def test_option_and_split_errors(mirror, tmp_path):
    with pytest.raises(EmbedbenchError, match="options.repo"):
        load_task_data(TaskSpec(name="x", loader="conteb"), LoadContext(None, tmp_path))
    with pytest.raises(EmbedbenchError, match="unknown ConTEB options"):
        load(tmp_path, chunking="fixed")
    with pytest.raises(EmbedbenchError, match="split 'test'.*Unknown split"):
        load(tmp_path, split="test")
    assert split_chunk_id("a_b_12") == ("a_b", 12) and split_chunk_id("a_") is None


def test_shipped_suite():
    suite = load_suite("conteb")
    assert {t.options["repo"].split("/")[0] for t in suite.tasks} == {"illuin-conteb"}
    assert len(suite.tasks) == 8 and all(t.main_score == "ndcg_at_10" for t in suite.tasks)
    splits = {t.name: t.split for t in suite.tasks}
    assert splits["ConTEB-SQuAD"] == "validation" and splits["ConTEB-NarrativeQA"] == "test"


def _suite_file(tmp_path: Path, mirror: Path) -> Path:
    path = tmp_path / "conteb-mirror.yaml"
    path.write_text(yaml.safe_dump({"name": "conteb-mirror", "tasks": [{
        "name": "ConTEB-Football", "loader": "conteb", "split": "train", "type": "ContextualRetrieval",
        "options": {"repo": REPO, "hub_path": str(mirror / REPO)}}]}))
    return path


def test_evaluate_with_fake_encoder(mirror, tmp_path):
    (r,) = embedbench.evaluate(FakeEncoder(), suite=str(_suite_file(tmp_path, mirror)), context="none",
                               results_dir=tmp_path / "results")
    assert (r.n_docs, r.n_queries, r.variant) == (5, 4, {"context": "none"})
    # context "none": each chunk on its own, so exact cosine search + pytrec_eval must give the same numbers
    (sub,) = load(tmp_path)
    oracle = pytrec_oracle(FakeEncoder(), sub.data, ["ndcg_cut_10", "recall_1"])
    assert (r.main_score_name, r.main_score) == ("ndcg_at_10", pytest.approx(oracle["ndcg_cut_10"], abs=1e-6))
    assert r.metrics["recall_at_1"] == pytest.approx(oracle["recall_1"], abs=1e-6)


@pytest.mark.slow
def test_evaluate_minilm_without_and_with_late_chunking(mirror, tmp_path):
    suite = str(_suite_file(tmp_path, mirror))
    (plain,) = embedbench.evaluate("minilm-l6", suite=suite, context="none", results_dir=tmp_path / "results")
    (late,) = embedbench.evaluate("minilm-l6", suite=suite, context="late-chunking", results_dir=tmp_path / "results")
    assert plain.variant == {"context": "none"} and late.variant == {"context": "late-chunking"}
    for r in (plain, late):
        assert (r.n_docs, r.n_queries) == (5, 4)
        assert r.main_score > 0.4  # four easy questions on five chunks
    # the chunks of a document see each other under late chunking: different vectors, so new encodes
    assert late.provenance.texts_encoded > 0
