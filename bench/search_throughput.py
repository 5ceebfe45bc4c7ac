"""Bench 3: search throughput and peak memory per precision on random vectors.

For each (corpus size, dim), every precision runs in its own child process (peak RSS per
configuration), the children interleaved precision by precision, `repeats` rounds. A child generates
random unit vectors, warms the kernels up on a small slice, resets its peak RSS, then times
``apply_precision`` (normalize / calibrate / quantize / pack: "prep") and ``search`` (top-k) separately.
Queries per second = queries / search seconds.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from bench.common import GIB, log, mem_available_bytes
from bench.proc import MIB, child_main, peak_rss_mib, random_unit, reset_peak, rss_mib, run_child

PRECISIONS = ("fp32", "fp16", "int8", "binary", "binary+int8")
# Working memory on top of the float32 input, as multiples of it (measured at 1e6 x 384: fp16 1.6,
# int8 1.4, binary+int8 0.5; rounded up),
# used only to skip a configuration this machine cannot hold right now.
MEMORY_FACTOR = {"fp32": 1.5, "fp16": 2.0, "int8": 2.0, "binary": 0.6, "binary+int8": 1.0}


def measure(cfg: dict[str, Any]) -> dict[str, Any]:
    """One configuration, inside the child process."""
    import numpy as np

    import faiss  # noqa: F401  (imported before timing: search_hamming imports it lazily)
    from embedbench.scoring.precision import apply_precision, parse_precisions
    from embedbench.scoring.retrieval import search_encoded

    n, d, nq, k = cfg["n"], cfg["d"], cfg["nq"], cfg["k"]
    (spec,) = parse_precisions(cfg["precision"])
    rng = np.random.default_rng(cfg.get("seed", 0))
    docs = random_unit(rng, n, d)
    queries = random_unit(rng, nq, d)
    warm = apply_precision(spec, queries[:2], docs[: min(n, 2048)], None, {}, rescore_depth=k)
    search_encoded(warm, k)
    del warm
    base = rss_mib()
    exact_peak = reset_peak()
    t0 = time.perf_counter()
    enc = apply_precision(spec, queries, docs, None, {}, rescore_depth=k)
    t1 = time.perf_counter()
    scores, idx = search_encoded(enc, k)
    t2 = time.perf_counter()
    assert idx.shape == (nq, min(k, n))
    return {"prep_s": t1 - t0, "search_s": t2 - t1, "peak_rss_mib": peak_rss_mib(), "rss_before_mib": base,
            "input_mib": (docs.nbytes + queries.nbytes) / MIB, "index_mib": (enc.docs.nbytes + (enc.rescore.docs.nbytes if enc.rescore is not None else 0)) / MIB,
            "bytes_per_vector": enc.bytes_per_vector, "peak_reset": exact_peak}


def run(sizes: list[int], dims: list[int], repeats: int, nq: int = 200, k: int = 100,
        precisions: tuple[str, ...] = PRECISIONS) -> dict[str, Any]:
    rows = []
    for n in sizes:
        for d in dims:
            log(f"search throughput: n={n:.0e} d={d} nq={nq} k={k}")
            by_prec: dict[str, list[dict[str, Any]]] = {p: [] for p in precisions}
            for rep in range(repeats):
                for p in precisions:
                    need = n * d * 4 * (1 + MEMORY_FACTOR[p]) + 0.5 * GIB
                    avail = mem_available_bytes()
                    if avail is not None and avail < need:
                        res = {"error": f"skipped: needs ~{need / GIB:.1f} GiB, {avail / GIB:.1f} GiB available"}
                    else:
                        res = run_child("bench.search_throughput", {"n": n, "d": d, "nq": nq, "k": k,
                                                                     "precision": p, "seed": rep})
                    by_prec[p].append(res)
                    shown = res.get("error") or f"search {res['search_s']:.3f} s, peak {res['peak_rss_mib']:.0f} MiB"
                    log(f"  [{rep + 1}/{repeats}] {p}: {shown}")
            rows.extend(_row(n, d, nq, k, p, r) for p, r in by_prec.items())
    return {"nq": nq, "k": k, "repeats": repeats, "rows": rows}


def _row(n: int, d: int, nq: int, k: int, precision: str, runs: list[dict[str, Any]]) -> dict[str, Any]:
    ok = [r for r in runs if "error" not in r]
    row: dict[str, Any] = {"n": n, "d": d, "nq": nq, "k": k, "precision": precision, "runs": runs}
    if not ok:
        row["error"] = runs[0]["error"] if runs else "not run"
        return row
    search_s = statistics.median(r["search_s"] for r in ok)
    row.update({
        "search_s": search_s, "prep_s": statistics.median(r["prep_s"] for r in ok), "qps": nq / search_s,
        "peak_rss_mib": max(r["peak_rss_mib"] for r in ok), "input_mib": ok[0]["input_mib"],
        "index_mib": ok[0]["index_mib"], "bytes_per_vector": ok[0]["bytes_per_vector"],
    })
    return row


if __name__ == "__main__":
    child_main(measure)
