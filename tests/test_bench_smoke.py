"""Smoke test of `make bench`: `python -m bench.run --quick` runs every part on tiny sizes and writes
reports/bench-style JSON files and a summary with the expected keys. No timing is asserted."""

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
    proc = _run("--quick", "--data-dir", str(shared_data), "--out", str(out))
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
