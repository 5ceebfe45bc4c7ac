"""Eval plans: the shipped evals/*.yaml load; bad files give one line naming file and key (or line)."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from embedbench.errors import EmbedbenchError
from embedbench.plans import EvalPlan, available_plans, evals_dir, load_plan, plan_runs
from embedbench.engine.runner import evaluate

REPO = Path(__file__).resolve().parents[1]
SHIPPED = sorted((REPO / "evals").glob("*.yaml"))


def test_the_three_plans_are_shipped():
    assert {p.stem for p in SHIPPED} >= {"checkpoint-gate", "quantization-tradeoff", "pplx-release"}
    assert evals_dir() == REPO / "evals"


def test_a_plan_in_the_working_folder_comes_first(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "evals").mkdir()
    (tmp_path / "evals" / "checkpoint-gate.yaml").write_text("name: checkpoint-gate\nmodels: [hashing]\n")
    (tmp_path / "evals" / "mine.yaml").write_text("name: mine\nmodels: [bm25]\n")
    assert set(available_plans()) == {p.stem for p in SHIPPED} | {"mine"}
    assert [m.name for m in load_plan("checkpoint-gate").models] == ["hashing"]
    assert [m.name for m in load_plan("mine").models] == ["bm25"]
    assert load_plan("pplx-release").name == "pplx-release"  # the shipped ones, found from any folder


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_plan_loads(path):
    plan = load_plan(path)
    assert plan.name == path.stem
    runs = plan_runs(plan)
    assert len(runs) == len(plan.all_models()) * len(plan.suites)
    for run in runs:
        assert set(run) == {"model", "suite", "precisions", "dims", "limit_queries", "engine", "index", "corpus_sizes"}
        assert run["precisions"] and all(isinstance(p, str) for p in run["precisions"])


def test_plan_runs_are_evaluate_arguments():
    for path in SHIPPED:
        for run in plan_runs(load_plan(path)):
            kwargs = dict(run)
            inspect.signature(evaluate).bind(kwargs.pop("model"), **kwargs)  # TypeError on an unknown argument


def test_checkpoint_gate():
    plan = load_plan("checkpoint-gate")  # by name, from evals/
    assert [m.name for m in plan.models] == ["checkpoints/latest"]
    assert plan.precisions == ["fp32", "int8", "binary"] and plan.suites == ["default"]
    assert plan.gate.max_task_drop == 0.01 and plan.gate.alpha == 0.05 and plan.gate.min_queries == 30
    assert plan.gate.max_suite_drop is not None


def test_quantization_tradeoff_has_per_model_dims():
    plan = load_plan(REPO / "evals" / "quantization-tradeoff.yaml")
    runs = {r["model"]: r for r in plan_runs(plan)}
    assert runs["minilm-l6"]["dims"] == [384, 256, 128]
    assert runs["pplx-embed-v1-0.6b"]["dims"] == [1024, 512, 256, 128]
    assert runs["minilm-l6"]["precisions"] == ["fp32", "int8", "int8:posthoc", "binary", "binary:posthoc"]


def test_pplx_release_models_then_baselines():
    plan = load_plan(REPO / "evals" / "pplx-release.yaml")
    runs = plan_runs(plan)
    names = list(dict.fromkeys(r["model"] for r in runs))
    assert names[:4] == ["pplx-embed-v1-0.6b", "pplx-embed-v1-4b", "pplx-embed-context-v1-0.6b",
                         "pplx-embed-context-v1-4b"]
    assert set(names[4:]) == {"qwen3-embedding-0.6b", "qwen3-embedding-4b", "bge-m3", "multilingual-e5-small",
                              "minilm-l6", "bm25"}
    assert plan.precisions == ["fp32", "int8", "binary"]
    assert {"synthetic-q2q", "synthetic-q2d", "mteb-multilingual-v2"} <= {r["suite"] for r in runs}


def test_global_dims_and_defaults():
    plan = EvalPlan.model_validate({"name": "p", "models": ["a", {"name": "b", "dims": [64]}], "dims": [128, 32],
                                    "precisions": "fp32, binary", "limit_queries": 100})
    runs = plan_runs(plan)
    assert [r["dims"] for r in runs] == [[128, 32], [64]]
    assert runs[0] == {"model": "a", "suite": "default", "precisions": ["fp32", "binary"], "dims": [128, 32],
                       "limit_queries": 100, "engine": "local", "index": ["exact"], "corpus_sizes": None}


def test_a_plan_names_its_engine_and_the_command_line_overrides_it(monkeypatch, tmp_path):
    import embedbench.engine.plans as engine_plans

    plan = EvalPlan.model_validate({"name": "p", "models": ["a"], "engine": "ray"})
    assert [r["engine"] for r in plan_runs(plan)] == ["ray"]
    with pytest.raises(EmbedbenchError, match="engine"):
        load_plan(write(tmp_path, "name: p\nmodels: [a]\nengine: spark\n"))
    seen = []
    monkeypatch.setattr(engine_plans, "check_plan", lambda plan: None)
    monkeypatch.setattr(engine_plans, "evaluate", lambda **kw: seen.append(kw["engine"]) or [])
    engine_plans.evaluate_plan(plan)
    engine_plans.evaluate_plan(plan, engine="local")
    assert seen == ["ray", "local"]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "plan.yaml"
    path.write_text(text)
    return path


BASE = "name: p\nmodels: [minilm-l6]\n"


@pytest.mark.parametrize(
    "text, needle",
    [
        (BASE + "precision: [fp32]\n", ": precision: unknown key"),
        (BASE + "gate:\n  max_drop: 0.1\n", ": gate.max_drop: unknown key"),
        ("name: p\nmodels:\n  - name: m\n    dim: [3]\n", ": models.0.dim: unknown key"),
        (BASE + "precisions: [fp64]\n", ": precisions: unknown precision 'fp64'"),
        (BASE + "dims: [128, 128]\n", ": dims: dims must not repeat"),
        (BASE + "gate: {alpha: 1.5}\n", ": gate.alpha:"),
        (BASE + "gate: {min_queries: 0}\n", ": gate.min_queries:"),
        (BASE + "limit_queries: 0\n", ": limit_queries:"),
        ("models: [a]\n", ": name: required key is missing"),
        ("name: p\nmodels: []\n", ": models:"),
        ("name: p\nmodels: [a, a]\n", "models listed twice: a"),
        ("- just\n- a list\n", "must be a mapping"),
    ],
)
def test_bad_plan_is_one_line_naming_file_and_key(tmp_path, text, needle):
    path = write(tmp_path, text)
    with pytest.raises(EmbedbenchError) as info:
        load_plan(path)
    message = str(info.value)
    assert message.startswith(str(path)) and needle in message, message
    assert "\n" not in message


def test_malformed_yaml_names_file_and_line(tmp_path):
    path = write(tmp_path, "name: p\nmodels: [a\nsuites: [default]\n")
    with pytest.raises(EmbedbenchError) as info:
        load_plan(path)
    message = str(info.value)
    assert message.startswith(f"{path}:") and "malformed YAML" in message and "\n" not in message
    line = int(message[len(str(path)) + 1:].split(":")[0])
    assert 2 <= line <= 4
    path = write(tmp_path, "name: p\n\tmodels: [a]\n")  # a tab: scanner error on line 2
    with pytest.raises(EmbedbenchError, match=rf"^{path}:2: malformed YAML"):
        load_plan(path)


def test_unknown_plan_name_suggests(tmp_path):
    with pytest.raises(EmbedbenchError, match="did you mean checkpoint-gate"):
        load_plan("checkpoint-gat")
    with pytest.raises(EmbedbenchError, match="not a plan file"):
        load_plan(tmp_path)
