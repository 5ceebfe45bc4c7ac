"""The CLI contract: exit codes, one-line errors, results formats, list."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from embedbench.cli import main


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
