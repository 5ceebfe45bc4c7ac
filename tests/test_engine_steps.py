"""The engine's steps: results record what reports need (issue 11, item 3); plans stay pure schema (item 2)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from pydantic import ValidationError

from conftest import FakeEncoder
from embedbench.engine.context import hub_id
from embedbench.engine.plan import task_refs
from embedbench.engine.plans import check_plan
from embedbench.engine.runner import evaluate
from embedbench.errors import EmbedbenchError
from embedbench.plans import EvalPlan

SYNTHETIC_SUITE = """name: syn
tasks:
  - {name: Other, loader: beir, path: BEIR}
  - {name: Syn, loader: synthetic-q2q, type: Query2Query, main_score: recall_at_10,
     options: {n_queries: 10, corpus_size: 200, languages: [en]}}
"""


@pytest.fixture
def suite_file(tmp_path, beir_dir):
    path = tmp_path / "syn.yaml"
    path.write_text(SYNTHETIC_SUITE.replace("BEIR", str(beir_dir)))
    return path


def test_a_suite_result_records_its_suite_tasks_type_and_default_corpus_size(suite_file, tmp_path):
    results = evaluate(FakeEncoder(), suite=str(suite_file), corpus_sizes=[300], results_dir=tmp_path / "r")
    by_task = {r.task: r for r in results}
    assert set(by_task) == {"Other", "Syn"}
    for r in results:
        assert r.suite == "syn" and r.suite_tasks == ["Other", "Syn"]
    syn = by_task["Syn"]
    # The size the suite gives the task, beside the size this run used.
    assert syn.corpus_size == 200 and syn.variant["corpus_size"] == 300 and syn.task_type == "Query2Query"
    assert by_task["Other"].corpus_size is None and by_task["Other"].task_type == "Retrieval"


def test_a_dataset_result_has_no_suite_facts(beir_dir, tmp_path):
    r = evaluate(FakeEncoder(), dataset=f"beir:{beir_dir}", results_dir=tmp_path / "r")[0]
    assert r.suite == "dataset"
    assert (r.suite_tasks, r.task_type, r.corpus_size, r.hub_id) == (None, None, None, None)


def test_hub_id_is_a_presets_hub_repo_and_recorded(beir_dir, tmp_path):
    assert hub_id("minilm-l6") == "sentence-transformers/all-MiniLM-L6-v2"
    assert hub_id("hf:sentence-transformers/all-MiniLM-L6-v2") is None  # recorded as the model, as given
    assert hub_id("checkpoints/latest") is None and hub_id("bm25") is None
    r = evaluate(FakeEncoder(name="minilm-l6"), dataset=f"beir:{beir_dir}", results_dir=tmp_path / "r")[0]
    assert r.hub_id == "sentence-transformers/all-MiniLM-L6-v2"


def test_task_refs_name_datasets_after_their_file_or_folder(tmp_path):
    refs = task_refs(None, ["beir:some/dir", "squad:data/xquad/en.json"])
    assert [(r.suite, r.spec.name, r.spec.loader, r.suite_tasks) for r in refs] == [
        ("dataset", "dir", "beir", None), ("dataset", "xquad-en", "squad", None)]
    with pytest.raises(EmbedbenchError, match="unknown format"):
        task_refs(None, "parquet:x")


@pytest.mark.parametrize("bad", [0, -3])
def test_plans_and_evaluate_refuse_a_bad_dim_alike(bad, beir_dir, tmp_path):
    with pytest.raises(ValidationError, match=f"dims must be positive integers, got {bad}"):
        EvalPlan.model_validate({"name": "p", "models": ["m"], "dims": [64, bad]})
    with pytest.raises(EmbedbenchError, match=f"dims must be positive integers, got {bad}"):
        evaluate(FakeEncoder(), dataset=f"beir:{beir_dir}", dims=[64, bad], results_dir=tmp_path / "r")
    assert not (tmp_path / "r").exists()


def test_check_plan_stops_on_a_bad_model_or_suite():
    with pytest.raises(EmbedbenchError, match="unknown suite"):
        check_plan(EvalPlan.model_validate({"name": "p", "models": ["hashing"], "suites": ["no-such-suite"]}))
    with pytest.raises(EmbedbenchError, match="did you mean"):
        check_plan(EvalPlan.model_validate({"name": "p", "models": ["minilm-l7"]}))


def test_reading_a_plan_never_imports_the_engine_encoders_or_data():
    """The gate reads plans: loading every shipped plan must not pull in the layers the gate may not use."""
    code = ("import sys; from embedbench.plans import available_plans, load_plan, plan_runs\n"
            "[plan_runs(load_plan(p)) for p in available_plans()]\n"
            "bad = sorted(m for m in sys.modules if m.startswith(('embedbench.engine', 'embedbench.encoders', "
            "'embedbench.data')))\n"
            "print(bad); sys.exit(1 if bad else 0)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_plans_module_names_no_engine_encoders_or_data_import_even_a_lazy_one():
    import ast
    import inspect

    import embedbench.plans

    tree = ast.parse(inspect.getsource(embedbench.plans))
    imported = [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module]
    imported += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    assert imported and not [m for m in imported if m.startswith(("embedbench.engine", "embedbench.encoders",
                                                                   "embedbench.data"))]
