"""Bench 4: exact fp32 top-k, embedbench's ``search_dense`` vs faiss ``IndexFlatIP`` vs blocked GEMM+top-k,
against the floor of the bare matrix product ``Q @ D.T`` of the same shape.

One child process per (corpus size, dim) holds random unit vectors; inside it, per query count, the
four methods run interleaved (A, B, C, D, A, ...) after one untimed warm-up round. faiss's ``add``
(a copy of the corpus) is timed once, apart. "blocked GEMM+top-k" is the straightforward torch
baseline: per document block a matmul and ``torch.topk``, then one top-k over the blocks' candidates.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from bench.common import GIB, log, mem_available_bytes
from bench.proc import child_main, peak_rss_mib, random_unit, reset_peak, run_child

METHODS = ("embedbench", "faiss_flatip", "blocked_gemm_topk", "gemm_floor")
SCORE_BLOCK_BYTES = 128 << 20


def blocked_topk(q: Any, x: Any, k: int) -> tuple[Any, Any]:
    """Top-k by inner product: matmul + topk per document block, then top-k of the candidates."""
    import torch

    nq, n = q.shape[0], x.shape[0]
    block = max(4096, SCORE_BLOCK_BYTES // (4 * nq))
    vals, ids = [], []
    with torch.inference_mode():
        for j0 in range(0, n, block):
            s = q @ x[j0:j0 + block].T
            v, i = torch.topk(s, min(k, s.shape[1]), dim=1)
            vals.append(v)
            ids.append(i + j0)
        v, p = torch.topk(torch.cat(vals, 1), min(k, n), dim=1)
        return v, torch.gather(torch.cat(ids, 1), 1, p)


def measure(cfg: dict[str, Any]) -> dict[str, Any]:
    """Inside the child: every method for every query count, `repeats` interleaved rounds."""
    import faiss
    import numpy as np
    import torch

    from embedbench.scoring.search import choose_dense_kernel, search_dense

    n, d, k, repeats = cfg["n"], cfg["d"], cfg["k"], cfg["repeats"]
    rng = np.random.default_rng(0)
    docs = random_unit(rng, n, d)
    reset_peak()
    t0 = time.perf_counter()
    index = faiss.IndexFlatIP(d)
    index.add(docs)
    add_s = time.perf_counter() - t0
    xt = torch.from_numpy(docs)
    out: dict[str, Any] = {"faiss_add_s": add_s, "shapes": []}
    for nq in cfg["nqs"]:
        queries = random_unit(rng, nq, d)
        qt = torch.from_numpy(queries)
        floor_buf = torch.empty((nq, n), dtype=torch.float32)
        floor_buf.fill_(0)  # touch the pages so the floor times the product, not page faults
        fns = {
            "embedbench": lambda: search_dense(queries, docs, k)[1],
            "faiss_flatip": lambda: index.search(queries, k)[1],
            "blocked_gemm_topk": lambda: blocked_topk(qt, xt, k)[1].numpy(),
            "gemm_floor": lambda: torch.mm(qt, xt.T, out=floor_buf),
        }
        for fn in fns.values():  # warm-up round, untimed
            fn()
        times: dict[str, list[float]] = {m: [] for m in METHODS}
        results: dict[str, Any] = {}
        for _ in range(repeats):
            for name, fn in fns.items():
                t = time.perf_counter()
                results[name] = fn()
                times[name].append(time.perf_counter() - t)
        ours = results["embedbench"]
        agree = {m: float(np.mean([len(set(a) & set(b)) / k for a, b in zip(ours, results[m])]))
                 for m in ("faiss_flatip", "blocked_gemm_topk")}
        del floor_buf, results
        out["shapes"].append({"nq": nq, "times_s": times, "topk_agreement": agree,
                              "embedbench_kernel": choose_dense_kernel(nq, n, d, k)})
    out["peak_rss_mib"] = peak_rss_mib()
    return out


def run(shapes: dict[tuple[int, int], list[int]], repeats: int, k: int = 100) -> dict[str, Any]:
    """shapes: {(n, d): [query counts]}."""
    rows = []
    for (n, d), nqs in shapes.items():
        log(f"exact fp32 top-{k}: n={n:.0e} d={d} nq={nqs}")
        need = n * d * 4 * 2.3 + max(nqs) * n * 4 + 1.0 * GIB
        avail = mem_available_bytes()
        if avail is not None and avail < need:
            res: dict[str, Any] = {"error": f"skipped: needs ~{need / GIB:.1f} GiB, {avail / GIB:.1f} GiB available"}
        else:
            res = run_child("bench.exact_search", {"n": n, "d": d, "k": k, "nqs": nqs, "repeats": repeats})
        if "error" in res:
            log(f"  {res['error']}")
            rows.extend({"n": n, "d": d, "nq": nq, "k": k, "error": res["error"]} for nq in nqs)
            continue
        for shape in res["shapes"]:
            med = {m: statistics.median(t) for m, t in shape["times_s"].items()}
            best_other = min(med["faiss_flatip"], med["blocked_gemm_topk"])
            row = {"n": n, "d": d, "nq": shape["nq"], "k": k, "median_s": med, "runs_s": shape["times_s"],
                   "embedbench_kernel": shape["embedbench_kernel"], "topk_agreement": shape["topk_agreement"],
                   "vs_best_baseline": med["embedbench"] / best_other,
                   "vs_gemm_floor": med["embedbench"] / med["gemm_floor"],
                   "faiss_add_s": res["faiss_add_s"], "peak_rss_mib": res["peak_rss_mib"]}
            log("  nq={nq}: ".format(nq=shape["nq"]) + ", ".join(f"{m} {s:.3f} s" for m, s in med.items()))
            rows.append(row)
    return {"k": k, "repeats": repeats, "rows": rows}


if __name__ == "__main__":
    child_main(measure)
