"""The CLI contract: exit codes, one-line errors, results formats, list."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys

import pytest

from embedbench.cli import main
from embedbench.cli.logs import CHATTY


@pytest.fixture(autouse=True)
def _restore_logging():
    """main() configures logging for its process; put it back so -q / -v do not leak into later tests."""
    yield
    root = logging.getLogger()
    for handler in [h for h in root.handlers if type(h).__name__ == "_StderrHandler"]:
        root.removeHandler(handler)
    for name in ("embedbench", *CHATTY):
        logging.getLogger(name).setLevel(logging.NOTSET)


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "embedbench.cli", *args], capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize(
    "args, needle",
    [
        (["eval", "--model", "minilm-l7"], "did you mean minilm-l6"),
        (["eval", "--precision", "fp64"], "precision"),
        (["eval", "--suite", "nope"], "unknown suite"),
        (["eval", "--dataset", "parquet:x"], "unknown format"),
        (["eval", "--dataset", "beir:/no/such/folder"], "/no/such/folder"),
        (["eval", "--dims", "abc"], "integers"),
        (["eval", "--device", "tpu"], "device must be cpu, cuda, cuda:N or mps"),
        (["eval", "--dtype", "fp8"], "invalid choice: 'fp8'"),
        (["eval", "--index", "hnsw:m=x"], "index parameter 'm'"),
        (["eval", "--rerank-with", "colbert"], "unknown model 'colbert'; did you mean colbertv2?"),
        (["eval", "--rerank-depth", "0"], "--rerank-depth must be at least 1"),
        (["frobnicate"], "invalid choice"),
        (["results", "--results-dir", "/no/such/results"], "does not exist"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, needle, capsys, tmp_path):
    code = main([*args, *(["--results-dir", str(tmp_path / "r")] if args[0] == "eval" else [])])
    err = capsys.readouterr().err
    assert code == 2
    assert needle in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()


def test_malformed_suite_yaml_names_the_file(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ntasks: [\n")
    assert main(["eval", "--suite", str(bad), "--results-dir", str(tmp_path / "r")]) == 2
    assert "bad.yaml" in capsys.readouterr().err


def test_unknown_suite_key_names_the_file_and_key(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ntasks:\n  - name: t\n    loader: beir\n    path: x\n    colour: red\n")
    assert main(["eval", "--suite", str(bad), "--results-dir", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "bad.yaml" in err and "colour" in err and "unknown key" in err


def test_results_json_has_the_contract_fields(fake_encoder, beir_dir, tmp_path, capsys):
    import embedbench

    embedbench.evaluate(fake_encoder, dataset=f"beir:{beir_dir}", precisions="fp32,binary", results_dir=tmp_path / "r")
    assert main(["results", "--results-dir", str(tmp_path / "r"), "--format", "json"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert len(records) == 2
    for key in ("model", "revision", "suite", "task", "split", "language", "precision", "quantization", "dim",
                "variant", "main_score", "metrics", "n_queries", "n_docs", "bytes_per_vector", "encode_seconds",
                "search_seconds"):
        assert key in records[0]
    assert main(["results", "--results-dir", str(tmp_path / "r"), "--format", "csv"]) == 0
    assert capsys.readouterr().out.startswith("model,")


def test_list_json(capsys):
    assert main(["list", "models", "--format", "json"]) == 0
    models = {m["model"]: m for m in json.loads(capsys.readouterr().out)}
    assert models["minilm-l6"]["available"] is True and models["minilm-l6"]["dim"] == 384
    assert main(["list", "suites", "--format", "json"]) == 0
    assert "default" in {s["suite"] for s in json.loads(capsys.readouterr().out)}
    assert main(["list", "tasks", "--suite", "default", "--format", "json"]) == 0
    assert [t["task"] for t in json.loads(capsys.readouterr().out)] == ["BFCLToolRetrieval", "SyntheticQuery2Query", "SyntheticQuery2Doc"]


def test_console_script_entry_runs():
    proc = run_cli("list", "suites")
    assert proc.returncode == 0 and "default" in proc.stdout


TASK_LINE = re.compile(r"^\d\d:\d\d:\d\d task 1/1: tiny-beir \(en, test, 40 docs, 12 queries\)$", re.M)


def _eval_hashing(beir_dir, tmp_path, *flags: str) -> list[str]:
    return ["eval", "--model", "hashing", "--dataset", f"beir:{beir_dir}", "--results-dir", str(tmp_path / "r"),
            *flags]


def test_progress_goes_to_stderr_and_only_the_table_to_stdout(beir_dir, tmp_path, capsys):
    assert main(_eval_hashing(beir_dir, tmp_path)) == 0
    out, err = capsys.readouterr()
    assert TASK_LINE.search(err), err
    assert "text/s" in err  # the encoding bar
    assert out.splitlines()[0].split()[:2] == ["model", "task"] and len(out.splitlines()) == 2
    assert "task 1/1" not in out and "text/s" not in out


@pytest.mark.parametrize("where", ["before", "after"])
def test_quiet_prints_no_progress_lines_or_bars(where, beir_dir, tmp_path, capsys):
    argv = ["-q", *_eval_hashing(beir_dir, tmp_path)] if where == "before" else _eval_hashing(beir_dir, tmp_path, "-q")
    assert main(argv) == 0  # a fresh cache: the texts are encoded, which shows a bar unless quiet
    out, err = capsys.readouterr()
    assert err == ""
    assert "hashing" in out


def test_verbose_adds_debug_lines_and_opens_the_http_client_logs(beir_dir, tmp_path, capsys):
    assert main(["-v", *_eval_hashing(beir_dir, tmp_path)]) == 0
    err = capsys.readouterr().err
    assert re.search(r"DEBUG embedbench\.run: loaded tiny-beir \(dataset\)", err), err
    assert re.search(r"INFO embedbench\.run: task 1/1: tiny-beir", err), err
    assert all(logging.getLogger(name).getEffectiveLevel() == logging.INFO for name in CHATTY)


def test_a_plan_gets_dtype_index_and_device_only_when_given(tmp_path, monkeypatch):
    import embedbench.engine.plans as engine_plans

    runs = []
    monkeypatch.setattr(engine_plans, "evaluate", lambda **kwargs: runs.append(kwargs) or [])
    plan = tmp_path / "p.yaml"
    plan.write_text("name: p\nmodels: [hashing]\nsuites: [default]\n")
    assert main(["eval", "--plan", str(plan), "--results-dir", str(tmp_path / "r"), "--dtype", "bf16",
                 "--index", "exact,sq8", "--device", "cuda:1"]) == 0
    assert runs[-1]["model"] == "hashing" and runs[-1]["dtype"] == "bf16" and runs[-1]["index"] == "exact,sq8"
    assert runs[-1]["device"] == "cuda:1"
    assert main(["eval", "--plan", str(plan), "--results-dir", str(tmp_path / "r")]) == 0
    assert "dtype" not in runs[-1] and runs[-1]["index"] == ["exact"]  # the plan's own setting stands
