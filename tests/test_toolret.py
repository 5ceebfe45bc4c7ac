"""ToolRet loader on a local mirror of mangopy/ToolRet-Queries + mangopy/ToolRet-Tools (hub layout)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from conftest import FakeEncoder, pytrec_oracle

import embedbench
from embedbench.data.tasks import LoadContext, load_task_data
from embedbench.data.toolret import GENERIC_INSTRUCTION, tool_text
from embedbench.errors import DataError, EmbedbenchError
from embedbench.data.spec import TaskSpec
from embedbench.data.suites import load_suite
from hub_mirrors import QUERIES, TASK_CATEGORY, TOOLS, write_repo, write_toolret_mirror


@pytest.fixture
def mirror(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = write_toolret_mirror(tmp_path / "mirror")
    monkeypatch.setenv("EMBEDBENCH_HUB_MIRROR", str(root))
    return root


def load(tmp_path: Path, **options):
    spec = TaskSpec(name="ToolRet-Test", loader="toolret", type="ToolRetrieval", metrics=["comprehensiveness"],
                    options={"category": "web", **options})
    return load_task_data(spec, LoadContext(None, tmp_path / "cache"))


def test_web_category_on_the_full_toolset(mirror, tmp_path):
    (sub,) = load(tmp_path, tasks=["apigen", "toolbench"])
    data = sub.data
    assert (sub.language, sub.split, sub.variant) == ("en", "test", None)
    assert sorted(data.corpus) == sorted(t["id"] for rows in TOOLS.values() for t in rows)  # all 3 categories
    assert sorted(data.queries) == ["apigen_query_0", "apigen_query_1", "toolbench_query_0"]
    assert data.qrels["toolbench_query_0"] == {"toolbench_tool_0": 2, "toolbench_tool_1": 1}
    assert data.qrels["apigen_query_1"] == {"apigen_tool_1": 1, "apigen_tool_0": 1}
    assert data.queries["apigen_query_0"].text == QUERIES["apigen"][0]["query"]
    assert all(d in data.corpus for rels in data.qrels.values() for d in rels)
    # per-query instructions go to extra; the dataset-level one is mteb's generic ToolRet prompt
    assert data.extra["instructions"]["toolbench_query_0"] == QUERIES["toolbench"][0]["instruction"]
    assert data.extra["task"] == {"apigen_query_0": "apigen", "apigen_query_1": "apigen",
                                  "toolbench_query_0": "toolbench"}
    assert data.instruction == GENERIC_INSTRUCTION
    assert "ToolRet-Queries@latest" in data.source


def test_default_tasks_are_all_the_category_tasks(mirror, tmp_path):
    (sub,) = load(tmp_path, category="code", tasks=["gorilla-huggingface"])
    assert sorted(sub.data.queries) == ["gorilla_query_0"]
    assert sub.data.qrels == {"gorilla_query_0": {"gorilla_tool_0": 1}}
    # without `tasks`, all 7 code tasks are read; the mirror lacks the first one -> one-line error
    with pytest.raises(EmbedbenchError, match="config 'craft-math-algebra' split 'queries'"):
        load(tmp_path, category="code")


def test_tool_rendering(mirror, tmp_path):
    (sub,) = load(tmp_path, tasks=["apigen"])
    corpus = sub.data.corpus
    assert corpus["apigen_tool_0"].text == (
        "bacterial_growth\nCalculates the bacterial population after a given time.\n"
        "initial_population (int, required): The initial population.\n"
        "doubling_time (float, optional): Doubling time in minutes.")
    assert corpus["apigen_tool_1"].text == "weather_forecast\nForecast weather for a city.\ncity (string, required): City"
    assert corpus["toolbench_tool_1"].text == (
        "currency_convert\nConvert an amount between currencies.\namount (number, required): Amount")
    verbatim = TOOLS["web"][2]["documentation"]  # no `name`: kept as the documentation JSON
    assert json.loads(corpus["toolbench_tool_0"].text) == verbatim
    assert corpus["gpt4tools_tool_0"].text == "Image captioner: describe what is in an image."  # not JSON
    assert corpus["gorilla_tool_0"].text == "torch.hub.load\nLoad a pretrained model from a hub repo."
    assert (sub.data.extra["tools_rendered"], sub.data.extra["tools_verbatim"]) == (4, 2)


def test_raw_text_and_category_corpus_are_variants(mirror, tmp_path):
    (sub,) = load(tmp_path, tasks=["apigen"], tool_text="raw", corpus="category")
    assert sorted(sub.data.corpus) == sorted(t["id"] for t in TOOLS["web"])
    assert json.loads(sub.data.corpus["apigen_tool_0"].text) == TOOLS["web"][0]["documentation"]
    assert sub.variant == {"corpus": "category", "tool_text": "raw"}
    assert tool_text('{"name": "x"}', "raw") == ('{"name": "x"}', False)


def test_labels_outside_the_corpus(mirror, tmp_path):
    bad = [{"id": "apigen_query_9", "query": "q", "instruction": "i", "category": "web",
            "labels": json.dumps([{"id": "gorilla_tool_0", "relevance": 1}, {"id": "apigen_tool_0", "relevance": 1}])},
           {"id": "apigen_query_8", "query": "q2", "instruction": "", "category": "web",
            "labels": json.dumps([{"id": "gpt4tools_tool_0", "relevance": 1}])}]
    write_repo(mirror / "mangopy" / "ToolRet-Queries", {"apigen": {"queries": bad}})
    (sub,) = load(tmp_path, tasks=["apigen"], corpus="category")
    assert sub.data.qrels == {"apigen_query_9": {"apigen_tool_0": 1}}
    assert (sub.data.extra["unresolved_labels"], sub.data.extra["queries_without_relevant"]) == (2, 1)
    write_repo(mirror / "mangopy" / "ToolRet-Queries", {"apigen": {"queries": [
        {**bad[0], "labels": json.dumps([{"id": "nowhere", "relevance": 1}])}]}})
    with pytest.raises(DataError, match="unknown tool 'nowhere'"):
        load(tmp_path, tasks=["apigen"])


@pytest.mark.parametrize("options, message", [
    ({"category": "web", "colour": 1}, "unknown ToolRet options"),
    ({"category": "mobile"}, "options.category must be one of"),
    ({"category": "web", "tasks": ["gorilla-huggingface"]}, "not ToolRet web tasks"),
    ({"category": "web", "tool_text": "pretty"}, "options.tool_text"),
])
def test_bad_options(mirror, tmp_path, options, message):
    with pytest.raises(EmbedbenchError, match=message):
        load(tmp_path, **options)


def test_offline_without_mirror_names_repo_and_revision(tmp_path, monkeypatch):
    import datasets.config
    import huggingface_hub.constants

    monkeypatch.delenv("EMBEDBENCH_HUB_MIRROR", raising=False)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(EmbedbenchError) as err:
        load(tmp_path, tasks=["apigen"], tools_revision="e06c38c75612b6536bd959e08cdd345894aba6a7")
    msg = str(err.value)
    assert "mangopy/ToolRet-Tools@e06c38c75612b6536bd959e08cdd345894aba6a7" in msg and "\n" not in msg
    assert "EMBEDBENCH_HUB_MIRROR/mangopy/ToolRet-Tools" in msg


def test_shipped_suite_pins_revisions_and_covers_every_task():
    suite = load_suite("toolret")
    assert [t.options["category"] for t in suite.tasks] == ["web", "code", "customized"]
    for t in suite.tasks:
        assert t.metrics == ["comprehensiveness"] and t.main_score == "ndcg_at_10"
        assert len(t.options["queries_revision"]) == 40 and len(t.options["tools_revision"]) == 40
    from embedbench.data.toolret import TASK_CATEGORY as ALL

    assert all(ALL[t] == c for t, c in TASK_CATEGORY.items())  # the mirror's tasks are real ones

    assert len(ALL) == 35 and {c: list(ALL.values()).count(c) for c in set(ALL.values())} == {
        "web": 19, "code": 7, "customized": 9}


def test_evaluate_end_to_end_with_comprehensiveness(mirror, tmp_path):
    suite = tmp_path / "toolret-mirror.yaml"
    suite.write_text(yaml.safe_dump({"name": "toolret-mirror", "tasks": [{
        "name": "ToolRet-Web", "loader": "toolret", "type": "ToolRetrieval", "metrics": ["comprehensiveness"],
        "options": {"category": "web", "tasks": ["apigen", "toolbench"], "hub_path": str(mirror),
                    "instruction": "both"}}]}))
    results = embedbench.evaluate(FakeEncoder(), suite=str(suite), results_dir=tmp_path / "results")
    assert sorted(r.variant.get("instruction") for r in results) == ["with", "without"]
    (sub,) = load(tmp_path, tasks=["apigen", "toolbench"])
    data = sub.data
    own = {q: f"{data.extra['instructions'].get(q) or data.instruction}\n{data.queries[q].text}" for q in data.queries}
    for r in results:
        assert (r.n_queries, r.n_docs, r.main_score_name) == (3, 6, "ndcg_at_10")
        assert r.metrics["comprehensiveness_at_10"] == 1.0  # 6 tools: all are in the top 10
        assert r.metrics["comprehensiveness_at_1"] <= 1 / 3  # two of three queries need two tools
        assert 0.0 <= r.metrics["comprehensiveness_at_3"] <= r.metrics["recall_at_3"] <= 1.0
        # the ranking itself: exact cosine search + pytrec_eval on the same texts ("with": own instruction first)
        queries = own if r.variant["instruction"] == "with" else None
        oracle = pytrec_oracle(FakeEncoder(), data, ["ndcg_cut_10", "recall_3"], queries=queries)
        assert r.main_score == pytest.approx(oracle["ndcg_cut_10"], abs=1e-6), r.variant
        assert r.metrics["recall_at_3"] == pytest.approx(oracle["recall_3"], abs=1e-6), r.variant
