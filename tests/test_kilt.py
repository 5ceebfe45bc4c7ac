"""The BERGEN/KILT loader, read through datasets.load_dataset from a local mirror in the hub layouts."""

from __future__ import annotations

from pathlib import Path

import pytest

from embedbench.data.kilt import chunk_page, load_kilt_task
from embedbench.data.tasks import LoadContext
from embedbench.errors import DataError, EmbedbenchError
from embedbench.data.spec import TaskSpec
from kilt_mirror import write_kilt_mirror

SPLITS = {"nq": "validation", "hotpotqa": "validation", "triviaqa": "validation", "asqa": "dev", "popqa": "test"}


@pytest.fixture(scope="module")
def mirror(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_kilt_mirror(tmp_path_factory.mktemp("hub"))


def load(mirror: Path, tmp_path: Path, dataset: str, **options: object):
    spec = TaskSpec(name=dataset, loader="kilt", split=SPLITS[dataset],
                    options={"dataset": dataset, "hub_mirror": str(mirror), **options})
    [task] = load_kilt_task(spec, LoadContext(None, tmp_path / "cache"))
    return task


def test_chunk_page_follows_kilt_100w() -> None:
    paragraphs = ["T\n", " ".join(f"a{i}" for i in range(150)), "Section::::History.\n", "BULLET::::- gone\n",
                  " ".join(f"b{i}" for i in range(60))]
    pieces = chunk_page("T", paragraphs)
    assert [p[1:] for p in pieces] == [(0, 1), (1, 4), (4, 4)]  # (first, last paragraph) of each window
    first, second, third = (p[0] for p in pieces)
    assert first.startswith("T. T a0 a1") and len(first.split()) == 101  # "T." + 100 words
    assert "Section:History." in second and "Section::::" not in second and "gone" not in second
    assert third == "T. " + " ".join(f"b{i}" for i in range(48, 60))  # 1 + 150 + 1 + 60 = 212 words
    assert chunk_page("Empty", ["BULLET::::- x"]) == []


def test_nq_provenance_paragraphs_become_passage_qrels(mirror: Path, tmp_path: Path) -> None:
    task = load(mirror, tmp_path, "nq")
    data = task.data
    assert (task.language, task.split, task.variant) == ("en", "validation", None)
    assert len(data.corpus) == 17 and data.corpus["12-0"].text.startswith("Paris. Paris Paris is the capital")
    assert data.queries["nq1"].text == "what is the capital of france"
    assert data.answers == {"nq1": ["Paris"], "nq2": ["William Shakespeare", "Shakespeare"], "nq5": ["1969"]}
    # paragraph 1 of Paris spans words 1..126 -> windows 0 and 1; Hamlet's paragraph 2 starts at word 96.
    assert data.qrels["nq1"] == {"12-0": 1, "12-1": 1}
    assert data.qrels["nq2"] == {"20-0": 1, "20-1": 1}
    # nq5's provenance paragraph is a BULLET line (dropped from the passages): the whole page counts.
    assert data.qrels["nq5"] == {"40-0": 1, "40-1": 1}
    assert data.extra["dropped"] == {"no_question": 0, "no_answer": 1, "no_evidence_in_corpus": 1}
    assert data.source.startswith("kilt:nq facebook/kilt_tasks[nq]/validation")


def test_full_knowledge_source_json_gives_the_same_passages(mirror: Path, tmp_path: Path) -> None:
    parquet = load(mirror, tmp_path, "nq").data
    json_dump = load(mirror, tmp_path, "nq", corpus={"data_files": "kilt_knowledgesource.json", "split": "full"}).data
    assert json_dump.corpus == parquet.corpus and json_dump.qrels == parquet.qrels


def test_triviaqa_questions_come_from_trivia_qa(mirror: Path, tmp_path: Path) -> None:
    data = load(mirror, tmp_path, "triviaqa").data
    assert {q: data.queries[q].text for q in data.queries} == {"tc_1": "Which city is the capital of France?",
                                                               "tc_2": "Who wrote Hamlet?"}
    assert data.extra["dropped"]["no_question"] == 1


def test_hotpotqa_merges_provenance_of_all_outputs(mirror: Path, tmp_path: Path) -> None:
    data = load(mirror, tmp_path, "hotpotqa").data
    # The Hamlet provenance sits in an output without an answer (KILT keeps such evidence-only outputs).
    assert data.qrels == {"5a8b57f25542995d1e6f1371": {"12-0": 1, "12-1": 1, "20-0": 1, "20-1": 1}}


def test_asqa_and_popqa_use_linked_pages_with_answers(mirror: Path, tmp_path: Path) -> None:
    asqa = load(mirror, tmp_path, "asqa").data
    assert asqa.queries["-4417"].text == "Who wrote the play Hamlet?"
    assert asqa.answers["-4417"] == ["William Shakespeare", "Shakespeare"]
    assert asqa.qrels == {"-4417": {"20-1": 1}}  # only the Hamlet window that names Shakespeare
    popqa = load(mirror, tmp_path, "popqa").data
    assert popqa.answers == {"4222362": ["politician", "political leader"]}
    assert popqa.qrels == {"4222362": {"31-0": 1}}
    assert popqa.extra["dropped"]["no_evidence_in_corpus"] == 1  # its page is not in the corpus


def test_prefix_subset_reads_only_the_first_passages(mirror: Path, tmp_path: Path) -> None:
    task = load(mirror, tmp_path, "nq", max_passages=3, subset="prefix")
    assert sorted(task.data.corpus) == ["12-0", "12-1", "20-0"]
    # Hamlet's paragraph 2 starts at word 96, inside window 20-0: nq2 keeps one relevant passage.
    assert task.data.qrels == {"nq1": {"12-0": 1, "12-1": 1}, "nq2": {"20-0": 1}}
    assert task.data.extra["dropped"]["no_evidence_in_corpus"] == 2
    assert task.variant == {"max_passages": 3, "subset": "prefix"}


def test_gold_subset_keeps_evidence_pages_and_fills_with_distractors(mirror: Path, tmp_path: Path) -> None:
    task = load(mirror, tmp_path, "nq", max_passages=9, max_queries=2)
    corpus = task.data.corpus
    assert set(task.data.queries) == {"nq1", "nq2"}
    gold = {"12-0", "12-1", "20-0", "20-1"}
    assert gold <= set(corpus) and len(corpus) == 9
    # nq5 (page 40) is past max_queries, so not gold: distractors are the next passages in corpus order.
    assert set(corpus) - gold == {"31-0", "40-0", "40-1", "100-0", "100-1"}
    assert task.variant == {"max_passages": 9, "subset": "gold", "max_queries": 2}
    small = load(mirror, tmp_path, "nq", max_passages=2, max_queries=2).data.corpus
    assert set(small) == gold  # evidence is never cut, whatever max_passages says


def test_mirror_from_environment_or_relative_to_the_data_dir(mirror: Path, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMBEDBENCH_HUB_MIRROR", str(mirror))
    spec = TaskSpec(name="popqa", loader="kilt", split="test", options={"dataset": "popqa"})
    [task] = load_kilt_task(spec, LoadContext(None, tmp_path / "cache"))
    assert set(task.data.queries) == {"4222362"}
    monkeypatch.delenv("EMBEDBENCH_HUB_MIRROR")
    spec = TaskSpec(name="popqa", loader="kilt", split="test", options={"dataset": "popqa", "hub_mirror": mirror.name})
    [task] = load_kilt_task(spec, LoadContext(mirror.parent, tmp_path / "cache"))
    assert set(task.data.queries) == {"4222362"}
    with pytest.raises(EmbedbenchError, match="has no folder akariasai/PopQA"):
        load(tmp_path, tmp_path, "popqa")


def test_bad_options_and_columns(mirror: Path, tmp_path: Path) -> None:
    with pytest.raises(EmbedbenchError, match="options.dataset must be one of"):
        load_kilt_task(TaskSpec(name="x", loader="kilt", options={"dataset": "squad"}), LoadContext(None, tmp_path))
    with pytest.raises(EmbedbenchError, match="max_passages must be a positive integer"):
        load(mirror, tmp_path, "nq", max_passages=0)
    with pytest.raises(EmbedbenchError, match="subset must be gold or prefix"):
        load(mirror, tmp_path, "nq", subset="random")
    with pytest.raises(EmbedbenchError, match="source override"):
        load(mirror, tmp_path, "nq", corpus={"repository": "x"})
    with pytest.raises(EmbedbenchError, match="cannot load facebook/kilt_tasks"):
        load(mirror, tmp_path, "nq", queries={"config": "fever"})
    broken = tmp_path / "broken"
    (broken / "akariasai" / "PopQA").mkdir(parents=True)
    (broken / "akariasai" / "PopQA" / "test.tsv").write_text("id\tquestion\n1\tWho?\n", encoding="utf-8")
    with pytest.raises(DataError, match="lacks columns"):
        load(broken, tmp_path, "popqa")


def test_every_bergen_suite_task_loads_from_the_mirror(mirror: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from embedbench.data.suites import load_suite

    monkeypatch.setenv("EMBEDBENCH_HUB_MIRROR", str(mirror))
    counts = {}
    for spec in load_suite("bergen").tasks:
        [task] = load_kilt_task(spec, LoadContext(None, tmp_path / "cache"))
        assert task.variant == {"max_passages": 500000, "subset": "gold"}
        counts[spec.options["dataset"]] = len(task.data.queries)
    assert counts == {"nq": 3, "triviaqa": 2, "hotpotqa": 1, "asqa": 1, "popqa": 1}


def test_bergen_suite_end_to_end(mirror: Path, tmp_path: Path, fake_encoder) -> None:
    import embedbench

    suite = tmp_path / "bergen-mirror.yaml"
    suite.write_text(f"""name: bergen-mirror
tasks:
  - name: KILT_NQ
    loader: kilt
    split: validation
    main_score: answer_recall_at_5
    metrics: [answer_recall]
    options: {{dataset: nq, hub_mirror: "{mirror}"}}
  - name: PopQA
    loader: kilt
    split: test
    main_score: answer_recall_at_5
    metrics: [answer_recall]
    options: {{dataset: popqa, hub_mirror: "{mirror}"}}
""", encoding="utf-8")
    results = embedbench.evaluate(fake_encoder, suite=str(suite), results_dir=tmp_path / "results",
                                  cache_dir=tmp_path / "cache")
    by_task = {r.task: r for r in results}
    nq = by_task["KILT_NQ"]
    assert (nq.main_score_name, nq.n_queries, nq.n_docs) == ("answer_recall_at_5", 3, 17)
    # All 17 passages are within the top 20: nq1 and nq2 find their answers, "1969" is only in a dropped
    # BULLET line, so no passage of the corpus holds it.
    assert nq.metrics["answer_recall_at_20"] == pytest.approx(2 / 3)
    assert 0 <= nq.metrics["answer_recall_at_1"] <= nq.main_score <= nq.metrics["answer_recall_at_20"]
    assert by_task["PopQA"].metrics["answer_recall_at_20"] == 1.0
    assert (tmp_path / "results").is_dir()
