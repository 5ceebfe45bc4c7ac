"""Bench 7: warm runs and metrics at scale.

eval   `embedbench eval --model minilm-l6 --suite default --precision fp32,int8,binary` (what `make eval`
       runs) in child processes sharing one fresh embedding cache: one cold run fills it, then `repeats`
       warm runs (each to a fresh results folder) are timed, wall clock of the whole command, median;
       every warm result must say it encoded nothing (provenance texts_encoded == 0).
       Target (issue 12): a warm run in at most 5 s.
metrics  the IR metrics of nq synthetic queries x top-k (default 115,000 x 1,000, the seed's
       PPLXQuery2Doc query count) over a corpus of n_docs, from ranked (nq, k) id / score arrays as the
       search returns them, with 1-3 relevant documents per query (about 70% of them planted in the
       ranking): `embedbench.scoring.metrics.ranked_metrics` and the engine's
       `engine.score.array_ranking_metrics` (ranked_metrics plus the per-query dicts the results
       store), in a child process. Target: at most 10 s.
"""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path
from typing import Any

from bench.common import log
from bench.proc import MIB, child_main, embedbench_cmd, peak_rss_mib, run_child, run_measured

EVAL_TARGET_S = 5.0
METRICS_TARGET_S = 10.0


def _fresh_cache(path: Path) -> Path:
    """An empty embedding cache, sharing the BFCL data wheel (the default suite's data) of the default cache."""
    from embedbench.engine.cache import default_cache_dir

    path.mkdir(parents=True, exist_ok=True)
    wheels = Path(default_cache_dir()) / "wheels"
    if wheels.is_dir() and not (path / "wheels").exists():
        (path / "wheels").symlink_to(wheels, target_is_directory=True)
    return path


def _texts_encoded(results_dir: Path) -> tuple[int, int]:
    from embedbench.results.store import read_results

    results = read_results(results_dir)
    return sum(r.provenance.texts_encoded for r in results), len(results)


def eval_warm(data_dir: Path, scratch: Path, repeats: int, source: list[str]) -> dict[str, Any]:
    """A cold run filling a fresh cache, then `repeats` timed warm runs; `source` is --suite/--dataset args."""
    work = scratch / "warm"
    cache = _fresh_cache(work / "cache")
    env = dict(os.environ, EMBEDBENCH_CACHE_DIR=str(cache), EMBEDBENCH_DATA_DIR=str(data_dir))
    args = ["eval", "--model", "minilm-l6", *source, "--precision", "fp32,int8,binary"]
    command = " ".join(["embedbench", *args])
    runs: list[dict[str, Any]] = []
    for i in range(repeats + 1):
        results = work / f"results-{i}"
        done = run_measured(embedbench_cmd(*args, "--results-dir", str(results)), env=env, timeout=7200)
        kind = "cold" if i == 0 else "warm"
        if done["rc"] != 0:
            log(f"  {kind} run failed: exit {done['rc']}: {done['stderr_tail']}")
            return {"command": command, "error": f"{kind} run: exit {done['rc']}: {done['stderr_tail']}", "runs": runs}
        encoded, n_results = _texts_encoded(results)
        runs.append({"kind": kind, "wall_s": done["wall_s"], "peak_rss_mib": done["peak_rss_mib"],
                     "texts_encoded": encoded, "results": n_results})
        log(f"  {kind} run {i}: {done['wall_s']:.2f} s, peak RSS {done['peak_rss_mib']:.0f} MiB, "
            f"{encoded} texts encoded, {n_results} results")
    warm = [r for r in runs if r["kind"] == "warm"]
    return {"command": command, "runs": runs, "cold_s": runs[0]["wall_s"],
            "median_s": statistics.median(r["wall_s"] for r in warm), "warm_runs_s": [round(r["wall_s"], 3) for r in warm],
            "warm_encoded_nothing": all(r["texts_encoded"] == 0 for r in warm), "results": runs[0]["results"]}


def measure(cfg: dict[str, Any]) -> dict[str, Any]:
    """Inside a child: synthetic ranked arrays and qrels, then the metrics timed."""
    from types import SimpleNamespace

    import numpy as np

    from embedbench.engine.score import TaskJudgements, array_ranking_metrics
    from embedbench.scoring.metrics import Grades, ranked_metrics

    nq, k, n_docs = cfg["nq"], cfg["k"], cfg["n_docs"]
    rng = np.random.default_rng(cfg.get("seed", 0))
    idx = rng.integers(0, n_docs, size=(nq, k), dtype=np.int64)
    scores = rng.random((nq, k), dtype=np.float32)
    scores = -np.sort(-scores, axis=1)  # best first, as a search returns them
    n_rel = rng.integers(1, 4, size=nq)
    indptr = np.concatenate([[0], np.cumsum(n_rel)]).astype(np.int64)
    rel_docs = rng.integers(0, n_docs, size=int(indptr[-1]), dtype=np.int64)
    rows = np.repeat(np.arange(nq), n_rel)
    planted = rng.random(rel_docs.size) < 0.7
    idx[rows[planted], rng.integers(0, k, size=int(planted.sum()))] = rel_docs[planted]
    grades = Grades(indptr, rel_docs, rng.integers(1, 3, size=rel_docs.size).astype(np.float64), n_docs)
    doc_rank = rng.permutation(n_docs).astype(np.int64)  # each document's place in string (id) order
    q = SimpleNamespace(qids=[f"q{i}" for i in range(nq)], data=SimpleNamespace(extra={}))
    judged = TaskJudgements(grades, doc_rank, None)
    ranked_metrics(idx[:64], scores[:64], Grades(indptr[:65], rel_docs[: indptr[64]], grades.data[: indptr[64]], n_docs),
                   doc_rank)  # warm-up
    t0 = time.perf_counter()
    values = ranked_metrics(idx, scores, grades, doc_rank)
    t1 = time.perf_counter()
    per_query = array_ranking_metrics(q, judged, scores, idx)
    t2 = time.perf_counter()
    return {"ranked_metrics_s": t1 - t0, "array_ranking_metrics_s": t2 - t1, "metrics": len(values),
            "mean_recall_at_1000": float(np.nanmean(values["recall_at_1000"])),
            "mean_ndcg_at_10": float(np.nanmean(values["ndcg_at_10"])), "queries_scored": len(per_query["ndcg_at_10"]),
            "input_mib": (idx.nbytes + scores.nbytes + doc_rank.nbytes) / MIB, "peak_rss_mib": peak_rss_mib()}


def run(data_dir: Path, scratch: Path, repeats: int, source: list[str], metrics_shape: dict[str, int]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    log(f"warm: embedbench eval --model minilm-l6 {' '.join(source)} (1 cold + {repeats} warm runs)")
    out["eval"] = eval_warm(data_dir, scratch, repeats, source)
    log(f"warm: metrics of {metrics_shape['nq']:,} queries x top-{metrics_shape['k']:,}")
    m = run_child("bench.warm", metrics_shape, timeout=1800)
    out["metrics"] = {**metrics_shape, **m}
    if "error" not in m:
        log(f"  ranked_metrics {m['ranked_metrics_s']:.2f} s, array_ranking_metrics {m['array_ranking_metrics_s']:.2f} s")
    else:
        log(f"  failed: {m['error']}")
    return out


if __name__ == "__main__":
    child_main(measure)
