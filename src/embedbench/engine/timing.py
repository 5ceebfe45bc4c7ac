"""How a query's cost is measured: a fixed, seeded sample of queries run one at a time after warm-up.

The same rule serves the exact search (summed over the corpus's shards), every faiss index and the
model's query encoder (:mod:`embedbench.engine.latency`), so their latencies can stand side by side.
These are measurements of this machine, not identities: they go in a result's ``costs``, never in
its metrics, so a gate never compares them.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

LATENCY_QUERIES = 200  # queries timed one at a time (all of them when a task has fewer)
LATENCY_WARMUP = 3  # untimed single-query calls before timing (caches, thread pools, lazy allocations)
LATENCY_SEED = 0


def latency_rows(n_queries: int, size: int = LATENCY_QUERIES, seed: int = LATENCY_SEED) -> np.ndarray:
    """Sorted positions of the queries timed one at a time: a seeded sample of ``size`` (all when fewer)."""
    if n_queries <= size:
        return np.arange(n_queries, dtype=np.int64)
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n_queries, size=size, replace=False)).astype(np.int64)


def time_each(call: Callable[[int], object], rows: np.ndarray, warmup: int = LATENCY_WARMUP) -> np.ndarray:
    """Seconds of ``call(row)`` for each row, after ``warmup`` untimed calls on the first rows."""
    for r in rows[:warmup].tolist():
        call(r)
    out = np.empty(len(rows), dtype=np.float64)
    for i, r in enumerate(rows.tolist()):
        t0 = time.perf_counter()
        call(r)
        out[i] = time.perf_counter() - t0
    return out


def latency_summary(seconds: np.ndarray) -> dict[str, float | int | None]:
    """p50 / p99 in milliseconds (numpy's linear interpolation), how many calls were timed, and the
    one-at-a-time throughput ``qps_single`` = calls / their summed seconds (ann-benchmarks' queries per
    second: no batching, so no thread pool to contend for on a shared machine)."""
    if len(seconds) == 0:
        return {"latency_p50_ms": None, "latency_p99_ms": None, "latency_queries": 0, "qps_single": None}
    p50, p99 = np.percentile(np.asarray(seconds) * 1e3, [50, 99])
    total = float(np.sum(seconds))
    return {"latency_p50_ms": round(float(p50), 4), "latency_p99_ms": round(float(p99), 4),
            "latency_queries": int(len(seconds)), "qps_single": round(len(seconds) / total, 2) if total > 0 else None}


def threads() -> int:
    """OpenMP threads faiss searches and builds with (recorded: HNSW builds and timings depend on it)."""
    import faiss

    return int(faiss.omp_get_max_threads())
