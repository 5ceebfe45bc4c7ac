"""Local real suites over the shared data dir: XQuAD-R modes, the contextual codebase set, vaswani."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from embedbench.data.tasks import LoadContext, load_task_data
from embedbench.data.xquad import LANGUAGES
from embedbench.errors import DataError, EmbedbenchError
from embedbench.data.spec import TaskSpec
from embedbench.data.suites import load_suite

LOCAL_SUITES = ("xquad-r", "xquad-r-rag", "xquad-r-contextual", "xquad-r-q2q", "codebase-contextual", "vaswani")


def _load(data_dir: Path | None, tmp: Path, **options):
    spec = TaskSpec(name="t", loader="xquad-r", path="xquad-r", options=options)
    return load_task_data(spec, LoadContext(data_dir, tmp))


def _raw(shared_data: Path, lang: str) -> dict:
    return json.loads((shared_data / "xquad-r" / f"{lang}.json").read_text(encoding="utf-8"))


def test_paragraph_and_rag_counts(shared_data, tmp_path):
    subsets = _load(shared_data, tmp_path, mode="paragraph")
    assert [s.language for s in subsets] == list(LANGUAGES)
    for s in subsets:
        assert (len(s.data.corpus), len(s.data.queries)) == (240, 1190)
        assert all(len(r) == 1 for r in s.data.qrels.values()) and s.data.answers is None
    rag = _load(shared_data, tmp_path, mode="rag", languages=["de"])
    assert len(rag) == 1 and rag[0].language == "de"
    assert set(rag[0].data.answers) == set(rag[0].data.queries) and all(rag[0].data.answers.values())
    assert rag[0].data.content_hash() != subsets[1].data.content_hash()


def test_contextual_counts_and_documents(shared_data, tmp_path):
    (en,) = _load(shared_data, tmp_path, mode="contextual", languages=["en"])
    d = en.data
    assert (len(d.corpus), len(d.queries), len(d.documents)) == (1180, 1190, 240)
    first = _raw(shared_data, "en")["data"][0]["paragraphs"][0]
    assert d.documents["0-0"] == [f"0-0-{i}" for i in range(len(first["sentences"]))]
    assert en.variant == {"document": "paragraph"}
    (th,) = _load(shared_data, tmp_path, mode="contextual", document="article", languages=["th"])
    assert (len(th.data.corpus), len(th.data.documents)) == (852, 48)
    assert th.data.documents["0"][:2] == ["0-0-0", "0-0-1"]


def test_contextual_relevant_sentence_holds_the_answer(shared_data, tmp_path):
    for sub in _load(shared_data, tmp_path, mode="contextual"):
        raw = _raw(shared_data, sub.language)
        answers = {qa["id"]: qa["answers"][0]["text"] for a in raw["data"] for p in a["paragraphs"] for qa in p["qas"]}
        spans = {f"{ai}-{pi}-{si}": p["context"][b:e] for ai, a in enumerate(raw["data"])
                 for pi, p in enumerate(a["paragraphs"]) for si, (b, e) in enumerate(p["sentence_breaks"])}
        full = 0
        for qid, rels in sub.data.qrels.items():
            (cid,) = rels
            answer = answers[qid]
            # `sentences` holds clean text; the context span (the answer's source) may keep mojibake (2 in tr).
            texts = (sub.data.corpus[cid].text, spans[cid])
            full += any(answer in t for t in texts)
            # The rest are splitter breaks at initials ("E.I. | du Pont"): the sentence ends with the answer's start.
            assert any(answer in t or any(t.endswith(answer[:k]) for k in range(1, len(answer))) for t in texts), cid
        assert full >= 0.98 * len(sub.data.qrels), sub.language


def test_contextual_answer_outside_every_sentence_is_a_data_error(tmp_path):
    para = {"context": "Alpha beta. Gamma delta.", "sentences": ["Alpha beta.", "Gamma delta."],
            "sentence_breaks": [[0, 11], [13, 24]],
            "qas": [{"id": "q1", "question": "What?", "answers": [{"text": " Gamma", "answer_start": 11}]}]}
    folder = tmp_path / "xquad-r"
    folder.mkdir()
    (folder / "en.json").write_text(json.dumps({"data": [{"title": "T", "paragraphs": [para]}]}))
    with pytest.raises(DataError, match=r"en\.json: question 'q1': answer_start 11 is in no sentence"):
        _load(tmp_path, tmp_path, mode="contextual", languages=["en"])
    para["qas"][0]["answers"][0]["answer_start"] = 13
    (folder / "en.json").write_text(json.dumps({"data": [{"title": "T", "paragraphs": [para]}]}))
    (sub,) = _load(tmp_path, tmp_path, mode="contextual", languages=["en"])
    assert sub.data.qrels == {"q1": {"0-0-1": 1}}


def test_cross_lingual_relevant_set_is_the_answer_in_every_language(shared_data, tmp_path):
    (pooled,) = _load(shared_data, tmp_path, mode="cross-lingual")
    d = pooled.data
    assert pooled.language == "multilingual" and (len(d.corpus), len(d.queries)) == (2640, 13090)
    mono = {s.language: s.data for s in _load(shared_data, tmp_path, mode="paragraph", languages=["en", "hi"])}
    for qid, rels in list(d.qrels.items())[::97]:
        lang, _, raw_id = qid.partition(":")
        assert sorted(r.split(":")[0] for r in rels) == sorted(LANGUAGES)
        (own,) = mono["en"].qrels[raw_id]
        assert f"en:{own}" in rels and f"hi:{next(iter(mono['hi'].qrels[raw_id]))}" in rels
    (sent,) = _load(shared_data, tmp_path, mode="cross-lingual", unit="sentence")
    assert len(sent.data.corpus) == 13014 and sent.data.documents is None
    assert all(len(r) == 11 for r in sent.data.qrels.values()) and sent.variant == {"unit": "sentence"}


def test_q2q_never_self_relevant(shared_data, tmp_path):
    (en,) = _load(shared_data, tmp_path, mode="q2q")
    d = en.data
    assert en.language == "en" and (len(d.queries), len(d.corpus)) == (1190, 11900)
    assert not any(did.startswith("en:") for did in d.corpus)
    for qid, rels in d.qrels.items():
        assert qid not in rels and len(rels) == 10
        assert {r.partition(":")[2] for r in rels} == {qid.partition(":")[2]}
        assert d.corpus[f"de:{qid.partition(':')[2]}"].language == "de"
    subsets = _load(shared_data, tmp_path, mode="q2q", query_language="all", languages=["en", "zh", "ar"])
    assert [s.language for s in subsets] == ["en", "zh", "ar"]
    for s in subsets:
        assert all(len(r) == 2 and not any(x.startswith(s.language + ":") for x in r) for r in s.data.qrels.values())


def test_codebase_counts(shared_data, tmp_path):
    spec = load_suite("codebase-contextual").tasks[0]
    (sub,) = load_task_data(spec, LoadContext(shared_data, tmp_path))
    d = sub.data
    assert (len(d.documents), len(d.corpus), len(d.queries)) == (90, 737, 248)
    assert d.documents["doc_1"][:3] == ["doc_1_chunk_0", "doc_1_chunk_1", "doc_1_chunk_2"]
    assert sum(len(r) for r in d.qrels.values()) == 306 and max(len(r) for r in d.qrels.values()) == 7
    first = json.loads((shared_data / "contextual-codebase" / "evaluation_set.jsonl").open().readline())
    assert d.queries["q1"].text == first["query"] and d.answers is None
    assert first["golden_chunks"][0]["content"] == d.corpus[next(iter(d.qrels["q1"]))].text


@pytest.mark.parametrize("name", LOCAL_SUITES)
def test_every_local_suite_loads_and_validates(name, shared_data, tmp_path):
    suite = load_suite(name)
    for spec in suite.tasks:
        subsets = load_task_data(spec, LoadContext(shared_data, tmp_path))
        assert subsets and all(s.data.validate() for s in subsets)
        assert all(s.language == spec.language for s in subsets) or spec.language == "multilingual"


MISSING = [("xquad-r", "xquad-r", "ar.json"), ("codebase-contextual", "contextual-codebase", "codebase_chunks.json")]


@pytest.mark.parametrize("loader, path, missing", MISSING)
def test_missing_data_dir_is_one_clear_line(loader, path, missing, tmp_path):
    spec = TaskSpec(name="t", loader=loader, path=path)
    with pytest.raises(EmbedbenchError) as unset:
        load_task_data(spec, LoadContext(None, tmp_path))
    with pytest.raises(EmbedbenchError) as absent:
        load_task_data(spec, LoadContext(tmp_path / "nowhere", tmp_path))
    for exc in (unset.value, absent.value):
        msg = str(exc)
        assert "\n" not in msg and f"{path}/{missing}" in msg and "EMBEDBENCH_DATA_DIR" in msg and "--data-dir" in msg
    assert str(tmp_path / "nowhere" / path / missing) in str(absent.value)


def test_bad_options_are_rejected(tmp_path):
    for options, pattern in [({"mode": "nope"}, "options.mode must be one of"), ({"colour": 1}, "unknown options"),
                             ({"mode": "q2q", "languages": ["en"]}, "at least two languages"),
                             ({"mode": "q2q", "languages": ["de", "es"]}, "query_language 'en' is not 'all' or one of"),
                             ({"languages": []}, "must be a list of language codes")]:
        with pytest.raises(EmbedbenchError, match=pattern):
            _load(None, tmp_path, **options)


# ---- end to end with the real default model (minilm-l6): the suite files over a reduced copy of the data --------


def load_suite_path(name: str) -> Path:
    from embedbench.data.suites import available_suites

    return available_suites()[name]


def _small_suite(tmp: Path, name: str, task: str, **options: object) -> Path:
    """The suite file reduced to one task, with options overridden (e.g. fewer languages)."""
    raw = yaml.safe_load(load_suite_path(name).read_text())
    raw["tasks"] = [dict(t, options={**t.get("options", {}), **options}) for t in raw["tasks"] if t["name"] == task]
    out = tmp / f"{name}-{task}.yaml"
    out.write_text(yaml.safe_dump(raw))
    return out


def _write_small_vaswani(src: Path, out: Path) -> None:
    out.mkdir(parents=True)
    qrels = [line.split() for line in (src / "qrels").read_text().splitlines() if line.strip()]
    topics = sorted({q for q, *_ in qrels}, key=int)[:5]
    keep = {d for q, _, d, _ in qrels if q in topics} | {str(i) for i in range(1, 200)}
    blocks = re.findall(r"<DOC>.*?</DOC>", (src / "doc-text.trec").read_text(), flags=re.S)
    (out / "doc-text.trec").write_text("\n".join(b for b in blocks if re.search(r"<DOCNO>\s*([^<\s]+)", b)[1] in keep))
    tops = re.findall(r"<top>.*?</top>", (src / "query-text.trec").read_text(), flags=re.S | re.I)
    (out / "query-text.trec").write_text("\n".join(t for t in tops if re.search(r"<num>\s*([^<\s]+)", t)[1] in topics))
    (out / "qrels").write_text("".join(" ".join(r) + "\n" for r in qrels if r[0] in topics))


@pytest.fixture(scope="module")
def small_data(tmp_path_factory) -> Path:
    """The shared data cut down, in its own formats: XQuAD-R's first 2 articles per language (10 paragraphs,
    97 questions), the codebase's first 8 files with the queries they answer, vaswani's first 5 topics."""
    from conftest import SHARED_DATA, SHARED_DATASETS, require_data

    for relative in SHARED_DATASETS:
        require_data(relative)
    root = tmp_path_factory.mktemp("small-data")
    (root / "xquad-r").mkdir()
    for lang in LANGUAGES:
        raw = _raw(SHARED_DATA, lang)
        (root / "xquad-r" / f"{lang}.json").write_text(json.dumps({"data": raw["data"][:2]}, ensure_ascii=False))
    src, code = SHARED_DATA / "contextual-codebase", root / "contextual-codebase"
    code.mkdir()
    files = json.loads((src / "codebase_chunks.json").read_text())[:8]
    (code / "codebase_chunks.json").write_text(json.dumps(files))
    uuids = {f["original_uuid"] for f in files}
    lines = [line for line in (src / "evaluation_set.jsonl").read_text().splitlines()
             if all(u in uuids for u, _ in json.loads(line)["golden_chunk_uuids"])]
    (code / "evaluation_set.jsonl").write_text("\n".join(lines) + "\n")
    _write_small_vaswani(SHARED_DATA / "vaswani", root / "vaswani")
    return root


@pytest.fixture(scope="module")
def e2e_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("e2e-cache")


def _eval(suite: Path, data_dir: Path, tmp: Path, cache: Path, **kw):
    from embedbench import evaluate

    return evaluate("minilm-l6", suite=str(suite), data_dir=data_dir, cache_dir=cache, results_dir=tmp / "r",
                    limit_queries=kw.pop("limit_queries", 10), **kw)


THREE = ["en", "de", "zh"]
E2E = [("xquad-r", "XQuADRRetrieval", {"languages": THREE}, "ndcg_at_10", 3),
       ("xquad-r", "XQuADRCrossLingual", {"languages": THREE}, "map_at_20", 1),
       ("xquad-r", "XQuADRLAReQA", {"languages": THREE}, "map_at_20", 1),
       ("xquad-r-rag", "XQuADRRAG", {"languages": THREE}, "answer_recall_at_5", 3),
       ("xquad-r-q2q", "XQuADRQuery2Query", {"languages": THREE}, "recall_at_10", 3)]


@pytest.mark.slow
@pytest.mark.parametrize("name, task, options, main, n_results", E2E, ids=[e[1] for e in E2E])
def test_e2e_xquad_suites(name, task, options, main, n_results, small_data, tmp_path, e2e_cache):
    results = _eval(_small_suite(tmp_path, name, task, **options), small_data, tmp_path, e2e_cache)
    assert len(results) == n_results and {r.task for r in results} == {task}
    en = next(r for r in results if r.language in ("en", "multilingual"))
    assert en.main_score_name == main and en.n_queries == 10 and "ndcg_at_10" in en.metrics
    assert en.main_score > 0.3  # minilm-l6 is English-only, but en queries over a small pool are easy


@pytest.mark.slow
def test_e2e_xquad_contextual_none_and_late_chunking(small_data, tmp_path, e2e_cache):
    suite = _small_suite(tmp_path, "xquad-r-contextual", "XQuADRContextual", languages=["en"])
    scores = {}
    for context in ("none", "late-chunking"):
        (result,) = _eval(suite, small_data, tmp_path, e2e_cache, context=context)
        assert result.variant["context"] == context and result.variant["document"] == "paragraph"
        assert result.n_docs == 48
        scores[context] = result.metrics["mrr_at_100"]
    assert all(s > 0.2 for s in scores.values()) and scores["none"] != scores["late-chunking"]


@pytest.mark.slow
def test_e2e_codebase_late_chunking(small_data, tmp_path, e2e_cache):
    (result,) = _eval(load_suite_path("codebase-contextual"), small_data, tmp_path, e2e_cache,
                      context="late-chunking")
    assert result.task == "CodebaseContextual" and result.variant["context"] == "late-chunking"
    assert result.n_queries == 10 and 20 < result.n_docs < 737 and result.main_score > 0.2


@pytest.mark.slow
def test_e2e_vaswani(small_data, tmp_path, e2e_cache):
    (result,) = _eval(load_suite_path("vaswani"), small_data, tmp_path, e2e_cache, limit_queries=None)
    assert result.task == "Vaswani" and result.n_queries == 5 and 199 <= result.n_docs < 400
    assert result.main_score > 0.2
