"""Suites and plans are validated before anything is encoded or written (issue 10, item 6).

Each bad input below is placed after a good one, so a check that ran late (after the first task was
encoded and written, as main_score was checked before) leaves files behind and fails the test.
"""

from __future__ import annotations

import pytest

from embedbench.cli import main
from embedbench.data.spec import OPTIONS
from embedbench.data.tasks import LOADERS
from embedbench.errors import EmbedbenchError
from embedbench.plans import available_plans, load_plan
from embedbench.engine.runner import evaluate
from embedbench.data.suites import available_suites, load_suite

from conftest import write_beir


def _suite(tmp_path, second: str) -> str:
    good = write_beir(tmp_path / "good")
    path = tmp_path / "suite.yaml"
    path.write_text(f"name: s\ntasks:\n  - {{name: Good, loader: beir, path: {good}}}\n  - {second}\n")
    return str(path)


def _eval_fails(tmp_path, capsys, *args: str) -> str:
    """Run `embedbench eval` (hashing model, no download); assert exit 2, one line, nothing encoded or written."""
    code = main(["eval", "--model", "hashing", "--results-dir", str(tmp_path / "results"), *args])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert not (tmp_path / "results").exists()
    cache = tmp_path / "cache"  # EMBEDBENCH_CACHE_DIR (conftest)
    assert not cache.exists() or not any(p.is_file() for p in cache.rglob("*")), "something was encoded"
    return err


def test_the_good_suite_runs(tmp_path, capsys):
    # The control: the same suite with a good second task is encoded and written.
    suite = _suite(tmp_path, f"{{name: Also, loader: beir, path: {write_beir(tmp_path / 'b')}, main_score: ndcg_at_5}}")
    assert main(["eval", "--model", "hashing", "--suite", suite, "--results-dir", str(tmp_path / "results")]) == 0
    assert len(list((tmp_path / "results").rglob("*.queries.json*"))) == 2


@pytest.mark.parametrize("typo, hint", [("ndcg_at_15", ""), ("ndgc_at_10", "did you mean ndcg_at_10?")])
def test_a_misspelt_main_score_stops_before_the_first_task(tmp_path, capsys, typo, hint):
    b = write_beir(tmp_path / "b")
    err = _eval_fails(tmp_path, capsys, "--suite", _suite(tmp_path, f"{{name: Bad, loader: beir, path: {b}, "
                                                                       f"main_score: {typo}}}"))
    assert "suite.yaml" in err and f"main_score {typo!r} is not a metric this task produces" in err and hint in err
    assert "valid: ndcg_at_1, ndcg_at_3," in err and "recall_at_100" in err and "comprehensiveness" not in err


def test_main_score_of_an_extra_family_is_valid_only_when_the_task_lists_it(tmp_path, capsys):
    b = write_beir(tmp_path / "b")
    err = _eval_fails(tmp_path, capsys, "--suite", _suite(
        tmp_path, f"{{name: Bad, loader: beir, path: {b}, main_score: comprehensiveness_at_10}}"))
    assert "'comprehensiveness_at_10' is not a metric" in err
    spec = load_suite(_suite(tmp_path, f"{{name: Ok, loader: beir, path: {b}, metrics: [comprehensiveness], "
                                       "main_score: comprehensiveness_at_10}")).tasks[1]
    assert spec.main_score == "comprehensiveness_at_10"


@pytest.mark.parametrize("task, needle", [
    ("{name: T, loader: toolret, options: {categroy: web}}",
     "unknown option 'categroy' for loader toolret (valid: category, tasks, corpus,"),
    ("{name: T, loader: kilt, options: {dataset: nq, max_pasages: 10}}", "unknown option 'max_pasages'"),
    ("{name: T, loader: bfcl, options: {n_queries: 10}}", "unknown option 'n_queries' for loader bfcl (valid: none)"),
    ("{name: T, loader: synthetic-q2q, options: {seed: abc}}", "options.seed: Input should be a valid integer"),
])
def test_task_options_are_checked_against_the_loaders_schema(tmp_path, capsys, task, needle):
    err = _eval_fails(tmp_path, capsys, "--suite", _suite(tmp_path, task))
    assert "suite.yaml: tasks.1: task 'T'" in err and needle in err


def test_every_loader_has_an_options_schema_and_every_shipped_suite_passes_it():
    assert set(OPTIONS) == set(LOADERS)
    for name in available_suites():
        load_suite(name)
    for name in available_plans():  # (their models may be placeholders, e.g. checkpoints/latest)
        for suite in load_plan(name).suites:
            load_suite(suite)


def test_a_generation_main_score_without_a_generator_fails_before_encoding(fake_encoder, tmp_path):
    folder = tmp_path / "mini"
    folder.mkdir()
    (folder / "en.json").write_text('{"data": [{"title": "t", "paragraphs": [{"context": "Paris is big.", "qas": '
                                    '[{"id": "q0", "question": "Which city?", "answers": [{"text": "Paris", '
                                    '"answer_start": 0}]}]}]}]}')
    suite = tmp_path / "rag.yaml"
    suite.write_text(f"name: rag\ntasks:\n  - {{name: Rag, loader: xquad-r, path: {folder}, main_score: f1, "
                     "options: {mode: rag, languages: [en]}}\n")
    with pytest.raises(EmbedbenchError, match="main_score 'f1' is a generation metric; it needs --generator"):
        evaluate(fake_encoder, suite=str(suite), results_dir=tmp_path / "r")
    suite.write_text(suite.read_text().replace("mode: rag", "mode: paragraph").replace("f1", "answer_recall_at_5")
                     .replace("path:", "metrics: [answer_recall], path:"))
    with pytest.raises(EmbedbenchError, match="needs reference answers, and this task's data has none"):
        evaluate(fake_encoder, suite=str(suite), results_dir=tmp_path / "r")
    assert fake_encoder.calls == [] and not (tmp_path / "r").exists()


@pytest.mark.parametrize("flag", [["--precision", "int8"], ["--dims", "128"], ["--precision", "fp32"]])
def test_plan_with_precision_or_dims_is_an_error(tmp_path, capsys, flag):
    plan = tmp_path / "plan.yaml"
    plan.write_text(f"name: p\nmodels: [hashing]\nsuites: [{_suite(tmp_path, '{name: B, loader: beir, path: x}')}]\n")
    code = main(["eval", "--plan", str(plan), *flag, "--results-dir", str(tmp_path / "results")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "--plan names its own precisions and dims" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "results").exists()


def test_a_plan_is_checked_whole_before_its_first_run(tmp_path, capsys):
    good = tmp_path / "good.yaml"
    good.write_text(f"name: good\ntasks:\n  - {{name: G, loader: beir, path: {write_beir(tmp_path / 'g')}}}\n")
    bad = _suite(tmp_path, "{name: T, loader: toolret, options: {categroy: web}}")
    plan = tmp_path / "plan.yaml"
    plan.write_text(f"name: p\nmodels: [hashing]\nsuites: [{good}, {bad}]\n")
    code = main(["eval", "--plan", str(plan), "--results-dir", str(tmp_path / "results")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "unknown option 'categroy'" in err
    assert not (tmp_path / "results").exists()
    plan.write_text(f"name: p\nmodels: [hashing, no-such-model]\nsuites: [{good}]\n")
    assert main(["eval", "--plan", str(plan), "--results-dir", str(tmp_path / "results")]) == 2
    assert "no-such-model" in capsys.readouterr().err and not (tmp_path / "results").exists()


def test_a_results_dir_that_is_a_file_is_one_line_and_exit_2(tmp_path, capsys):
    target = tmp_path / "results"
    target.write_text("not a folder")
    code = main(["eval", "--model", "hashing", "--dataset", f"beir:{write_beir(tmp_path / 'b')}",
                 "--results-dir", str(target)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and str(target) in err
    assert target.read_text() == "not a folder"
    assert not (tmp_path / "cache").exists() or not any(p.is_file() for p in (tmp_path / "cache").rglob("*"))
