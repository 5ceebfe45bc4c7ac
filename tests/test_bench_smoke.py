"""Smoke test of `make bench`: `python -m bench.run --quick` runs the parts on tiny sizes and writes
reports/bench-style JSON files and a summary with the expected keys (every part but `ray`, which starts a
Ray cluster twice). No timing is asserted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bench.run", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=600)


def test_bad_part_is_usage_error(tmp_path: Path) -> None:
    proc = _run("--only", "nosuch", "--out", str(tmp_path))
    assert proc.returncode == 2
    assert "unknown part 'nosuch'" in proc.stderr
    assert not list(tmp_path.iterdir())


@pytest.mark.slow
def test_quick_bench_writes_every_part(shared_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "bench"
    proc = _run("--quick", "--only", "sweep,overhead,search,exact", "--data-dir", str(shared_data), "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-2000:]

    parts = {name: json.loads((out / f"{name}.json").read_text()) for name in ("sweep", "overhead", "search", "exact")}
    for name, payload in parts.items():
        assert payload["bench"] == name and payload["quick"] is True
        assert {"machine", "config", "result", "wall_s"} <= set(payload)

    (ds,) = parts["sweep"]["result"]["datasets"].values()
    assert {"embedbench", "mteb_plain", "mteb_cached"} == set(ds["times"])
    assert all(len(t["runs_s"]) == 1 and t["median_s"] > 0 for t in ds["times"].values())
    keys = {f"{p}@{d}" for p in ("fp32", "int8", "binary") for d in (384, 128)}
    assert set(ds["ndcg_at_10"]) == keys
    for key in ("fp32@384", "fp32@128"):  # same vectors, same cosine: the tools must agree
        row = ds["ndcg_at_10"][key]
        assert row["mteb_plain"] == pytest.approx(row["embedbench"], abs=2e-5)  # mteb rounds to 5 places
        assert row["mteb_cached"] == pytest.approx(row["mteb_plain"], abs=1e-9)

    over = parts["overhead"]["result"]
    assert over["n_texts"] == 16 and over["max_abs_diff"] < 1e-3
    assert set(over["times"]) == {"embedbench", "sentence_transformers"}

    rows = parts["search"]["result"]["rows"]
    assert [r["precision"] for r in rows] == ["fp32", "binary+int8"]
    for r in rows:
        assert "error" not in r, r
        assert r["qps"] > 0 and r["peak_rss_mib"] > 0 and r["bytes_per_vector"] > 0
    assert rows[1]["bytes_per_vector"] == 4 + 32  # 32 bits packed + 32 int8 codes

    exact = parts["exact"]["result"]["rows"]
    assert [r["nq"] for r in exact] == [4, 20]
    for r in exact:
        assert set(r["median_s"]) == {"embedbench", "faiss_flatip", "blocked_gemm_topk", "gemm_floor"}
        assert r["topk_agreement"] == {"faiss_flatip": 1.0, "blocked_gemm_topk": 1.0}

    summary = (out / "summary.md").read_text()
    for heading in ("## Targets", "## 1. Encode-once sweep", "## 2. Harness encode overhead",
                    "## 3. Search throughput", "## 4. Exact fp32 top-10", "Quick run"):
        assert heading in summary
    assert "fp32 nDCG@10 = mteb's within 2e-05" in summary


def test_measured_child_peak_rss_is_its_own() -> None:
    """run_measured gives each child its own peak, not the running maximum over all children, nor the size
    of the process that started it (a fork carries the parent's pages into the child's ru_maxrss)."""
    from bench.proc import run_measured

    ballast = bytearray(400 << 20)
    ballast[::4096] = b"x" * len(ballast[::4096])  # this (parent) process now holds over 400 MB

    big = run_measured([sys.executable, "-c", "b = bytearray(300 << 20); b[::4096] = b'x' * len(b[::4096])"])
    small = run_measured([sys.executable, "-c", "pass"])
    assert big["rc"] == 0 and small["rc"] == 0 and not big["timed_out"]
    assert big["peak_rss_mib"] > 300 > small["peak_rss_mib"] > 0
    failed = run_measured([sys.executable, "-c", "import sys; print('out'); sys.exit('boom')"])
    assert failed["rc"] == 1 and failed["stdout"] == "out\n" and failed["stderr_tail"] == "boom"


def test_ray_bench_compares_every_metric() -> None:
    from bench.ray_engine import _differences

    ref = {"T fp32": {"ndcg_at_10": 0.5, "recall_at_1000": float("nan"), "map_at_1000": None}}
    assert _differences(ref, {"T fp32": dict(ref["T fp32"])}) == []
    got = {"T fp32": {"ndcg_at_10": 0.5000000001, "recall_at_1000": float("nan"), "map_at_1000": None},
           "T int8": {"ndcg_at_10": 0.4}}
    assert _differences(ref, got) == ["T fp32 ndcg_at_10: local 0.5, ray 0.5000000001", "T int8: extra"]


@pytest.mark.slow
def test_quick_bench_streaming_parts(shared_data: Path, tmp_path: Path) -> None:
    """The streaming-engine parts (issue 12) in quick mode: scale, shards, warm."""
    out = tmp_path / "bench"
    proc = _run("--quick", "--only", "scale,shards,warm", "--data-dir", str(shared_data), "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-2000:]
    parts = {name: json.loads((out / f"{name}.json").read_text()) for name in ("scale", "shards", "warm")}
    for name, payload in parts.items():
        assert payload["bench"] == name and payload["quick"] is True

    points = parts["scale"]["result"]["points"]
    assert [p["size"] for p in points] == [4000, 10000]
    for p in points:
        assert "error" not in p, p
        assert p["command"].startswith("embedbench eval --model hashing --suite synthetic-q2d --corpus-size ")
        assert p["wall_s"] > 0 and p["peak_rss_gb"] > 0
        assert [r["precision"] for r in p["rows"]] == ["fp32", "int8", "binary"]
        assert all(r["n_docs"] == p["size"] and 0 <= r["recall_at_100"] <= 1 for r in p["rows"])

    shard_rows = parts["shards"]["result"]["rows"]
    assert [r["precision"] for r in shard_rows] == ["fp32", "binary"]
    for r in shard_rows:  # the sharded search is the in-memory search; its memory stays within one shard
        assert r["same_indices"] and r["same_indices_same_grid"] and r["same_scores_same_grid"], r
        assert r["same_digest_all_runs"] and r["rss_bounded"], r
        assert set(r["median_s"]) == {"in_memory", "in_memory_grid", "sharded"} and r["ratio"] > 0

    warm = parts["warm"]["result"]
    assert warm["eval"]["warm_encoded_nothing"] and warm["eval"]["results"] > 0
    assert [r["kind"] for r in warm["eval"]["runs"]] == ["cold", "warm"]
    assert warm["eval"]["runs"][0]["texts_encoded"] > 0
    m = warm["metrics"]
    assert m["queries_scored"] == m["nq"] == 2000 and 0 < m["mean_recall_at_1000"] <= 1

    summary = (out / "summary.md").read_text()
    for heading in ("## 5. Sharded vs in-memory exact search", "## 6. Warm runs and metrics at scale",
                    "## 8. Scaling law", "at 10,000 docs (target is for 10,000,000)", "Quick run"):
        assert heading in summary
