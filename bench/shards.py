"""Bench 6: sharded exact search (scoring/shards.py) vs today's in-memory search, time and peak memory.

Random unit vectors (n x d), nq queries, top-k, per precision (fp32, binary):
  time   one child generates the vectors, stores each precision's document side as an .npy, and runs
         side by side, interleaved, `repeats` times after an untimed warm-up:
           in_memory       ``search_encoded(enc, k)`` on the whole Encoded (today's call, default blocks);
           in_memory_grid  the same on the engine's block grid (``block_size=SEARCH_BLOCK``);
           sharded         ``search_sharded(enc, shards_of(enc, shard), k, SEARCH_BLOCK)`` (the engine's call).
         Medians and the ratio sharded / in_memory; and whether the rankings are identical (indices
         always; scores bit for bit on the same block grid).
  memory one child per (precision, mode), run after the timing child: it loads the queries, warms the
         kernels up, resets its peak RSS, then either loads the whole document .npy and searches it
         (in_memory), or walks it shard by shard through ``np.load(mmap_mode="r")`` (a fresh map per
         shard, dropped after it) into a ``ShardedSearch`` (sharded). Peak RSS over the child's
         baseline is the search's working memory: for the sharded child, one shard plus the kernel's
         score block and the top-k lists, whatever n. Its ranking's digest must equal the timing child's.
Targets (issue 12): sharded time <= 1.2x in-memory; sharded peak RSS bounded by the shard.
"""

from __future__ import annotations

import dataclasses
import hashlib
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from bench.common import GIB, interleave, log, mem_available_bytes
from bench.proc import MIB, child_main, peak_rss_mib, random_unit, reset_peak, rss_mib, run_child

PRECISIONS = ("fp32", "binary")
ARMS = ("in_memory", "in_memory_grid", "sharded")
TIME_RATIO_TARGET = 1.2
RSS_SLACK_MIB = 64  # beyond one shard and the score block: top-k lists, merge buffers, allocator slack


def _digest(idx: Any) -> str:
    import numpy as np

    return hashlib.sha1(np.ascontiguousarray(idx, dtype=np.int64).tobytes()).hexdigest()[:16]


def _spec(name: str) -> Any:
    from embedbench.scoring.precision import parse_precisions

    (spec,) = parse_precisions(name)
    return spec


def _time(cfg: dict[str, Any]) -> dict[str, Any]:
    import numpy as np

    import faiss  # noqa: F401  (imported before timing: search_hamming imports it lazily)
    from embedbench.engine.executors import SEARCH_BLOCK
    from embedbench.scoring.precision import apply_precision
    from embedbench.scoring.retrieval import search_encoded
    from embedbench.scoring.shards import search_sharded, shards_of

    n, d, nq, k, shard, work = cfg["n"], cfg["d"], cfg["nq"], cfg["k"], cfg["shard"], Path(cfg["work"])
    rng = np.random.default_rng(cfg.get("seed", 0))
    docs = random_unit(rng, n, d)
    queries = random_unit(rng, nq, d)
    np.save(work / "queries.npy", queries)
    out: dict[str, Any] = {"block": SEARCH_BLOCK}
    for prec in cfg["precisions"]:
        enc = apply_precision(_spec(prec), queries, docs, None, {}, rescore_depth=k)
        np.save(work / f"docs-{prec}.npy", enc.docs)
        arms = {
            "in_memory": lambda: search_encoded(enc, k),
            "in_memory_grid": lambda: search_encoded(enc, k, SEARCH_BLOCK),
            "sharded": lambda: search_sharded(enc, shards_of(enc, shard), k, SEARCH_BLOCK),
        }
        small = dataclasses.replace(enc, docs=enc.docs[: min(n, 4096)])  # warm-up: kernels, thread pools
        search_encoded(small, k)
        search_sharded(small, shards_of(small, 2048), k, SEARCH_BLOCK)
        runs = interleave(arms, cfg["repeats"], log=lambda m: print(m, file=sys.stderr, flush=True))
        (s0, i0), (s1, i1), (s2, i2) = (runs[a][0]["value"] for a in ARMS)
        med = {a: statistics.median(r["seconds"] for r in runs[a]) for a in ARMS}
        out[prec] = {
            "median_s": med, "runs_s": {a: [round(r["seconds"], 4) for r in runs[a]] for a in ARMS},
            "ratio": med["sharded"] / med["in_memory"], "ratio_same_grid": med["sharded"] / med["in_memory_grid"],
            "same_indices": bool(np.array_equal(i0, i2)), "same_indices_same_grid": bool(np.array_equal(i1, i2)),
            "same_scores_same_grid": bool(np.array_equal(s1, s2)),
            "max_abs_score_diff": float(np.max(np.abs(s0.astype(np.float64) - s2))) if s0.shape == s2.shape else None,
            "digest": _digest(i2), "bytes_per_vector": enc.bytes_per_vector,
        }
    return out


def _memory(cfg: dict[str, Any]) -> dict[str, Any]:
    import numpy as np

    import faiss  # noqa: F401
    from embedbench.engine.executors import SEARCH_BLOCK
    from embedbench.scoring.precision import apply_precision
    from embedbench.scoring.retrieval import search_encoded
    from embedbench.scoring.shards import ShardedSearch

    work, k, shard, prec = Path(cfg["work"]), cfg["k"], cfg["shard"], cfg["precision"]
    path = work / f"docs-{prec}.npy"
    queries = np.load(work / "queries.npy")
    side = apply_precision(_spec(prec), queries, queries[:1], None, {}, rescore_depth=k)  # query side only
    head = np.array(np.load(path, mmap_mode="r")[:4096])
    warm = ShardedSearch(side, k, SEARCH_BLOCK)  # warm-up: kernels, thread pools
    warm.add(0, dataclasses.replace(side, docs=head))
    search_encoded(dataclasses.replace(side, docs=head), k)
    del warm, head
    base = rss_mib()
    exact_peak = reset_peak()
    t0 = time.perf_counter()
    if cfg["mode"] == "in_memory":
        docs = np.load(path)
        n = docs.shape[0]
        _, idx = search_encoded(dataclasses.replace(side, docs=docs), k)
    else:
        n = np.load(path, mmap_mode="r").shape[0]
        run = ShardedSearch(side, k, SEARCH_BLOCK)
        for a in range(0, n, shard):
            mapped = np.load(path, mmap_mode="r")  # a fresh map per shard: its pages leave RSS with it
            run.add(a, dataclasses.replace(side, docs=mapped[a:a + shard]))
            del mapped
        _, idx = run.result()
    seconds = time.perf_counter() - t0
    peak = peak_rss_mib()
    row_bytes = side.queries.shape[1] * side.queries.dtype.itemsize
    return {"peak_rss_mib": peak, "base_rss_mib": base, "delta_mib": None if peak is None or base is None else peak - base,
            "seconds": seconds, "digest": _digest(idx), "peak_reset": exact_peak,
            "shard_mib": min(shard, n) * row_bytes / MIB, "index_mib": n * row_bytes / MIB,
            "score_block_mib": (4 * queries.shape[0] * SEARCH_BLOCK / MIB) if prec != "binary" else 0.0}


def measure(cfg: dict[str, Any]) -> dict[str, Any]:
    """Inside a child: the timing run or one memory run."""
    return _time(cfg) if cfg["what"] == "time" else _memory(cfg)


def run(n: int, d: int, nq: int, k: int, shard: int, repeats: int, scratch: Path,
        precisions: tuple[str, ...] = PRECISIONS) -> dict[str, Any]:
    work = scratch / "shards"
    work.mkdir(parents=True, exist_ok=True)
    base = {"n": n, "d": d, "nq": nq, "k": k, "shard": shard, "work": str(work)}
    need = 2 * n * d * 4 + GIB // 2  # the float vectors, their fp32 Encoded, slack
    avail = mem_available_bytes()
    if avail is not None and avail < need:
        return {**base, "error": f"skipped: needs ~{need / GIB:.1f} GiB, {avail / GIB:.1f} GiB available", "rows": []}
    log(f"shards: n={n:,} d={d} nq={nq} k={k} shard={shard:,}: in-memory vs sharded, {repeats} repeats")
    timed = run_child("bench.shards", {**base, "what": "time", "repeats": repeats, "precisions": list(precisions)},
                      timeout=3600)
    if "error" in timed:
        return {**base, "error": timed["error"], "rows": []}
    rows = []
    for prec in precisions:
        t = timed[prec]
        log(f"  {prec}: in-memory {t['median_s']['in_memory']:.3f} s, sharded {t['median_s']['sharded']:.3f} s "
            f"(x{t['ratio']:.2f}); same indices: {t['same_indices']}")
        mem = {}
        for mode in ("in_memory", "sharded"):
            mem[mode] = run_child("bench.shards", {**base, "what": "memory", "precision": prec, "mode": mode},
                                  timeout=3600)
            m = mem[mode]
            log(f"  {prec} {mode}: " + (m["error"] if "error" in m else
                                        f"peak {m['peak_rss_mib']:.0f} MiB, +{m['delta_mib']:.0f} MiB over baseline"))
        row = {"precision": prec, **{k_: v for k_, v in t.items() if k_ != "digest"}, "memory": mem}
        sh = mem["sharded"]
        if "error" not in sh:
            row["shard_mib"], row["index_mib"] = sh["shard_mib"], sh["index_mib"]
            row["rss_bound_mib"] = sh["shard_mib"] + sh["score_block_mib"] + RSS_SLACK_MIB
            row["rss_bounded"] = sh["delta_mib"] <= row["rss_bound_mib"]
        row["same_digest_all_runs"] = all(m.get("digest") == t["digest"] for m in mem.values())
        rows.append(row)
    for f in work.iterdir():
        f.unlink()
    return {**base, "repeats": repeats, "block": timed["block"], "rows": rows}


if __name__ == "__main__":
    child_main(measure)
