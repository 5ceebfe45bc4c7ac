"""Measure a scale curve on the synthetic suites: recall, seconds and peak memory vs corpus size, per precision.

Not a test. Every (size) point runs in its own child process, so its peak RSS is its own.
  evaluate mode (default): the point is one `embedbench.evaluate` call (any model; "hashing" is the
      hashing encoder) over the synthetic suite at that corpus size, with a fresh embedding cache.
  --stream: generate a block -> encode with the hashing encoder -> append packed bits / int8 codes /
      float32 rows to preallocated stores (float32 goes to a scratch file when over --fp32-ram-gb) ->
      blocked exact search (embedbench.scoring.search). No list of 10^7 strings or vectors is ever built.
      int8 is calibrated on the first --calibrate vectors (the runner uses the whole corpus).
Examples:
  python scripts/scale_curve.py --suite q2d --model hashing --sizes 1e3,1e4,1e5,1e6 --n-queries 150
  python scripts/scale_curve.py --suite q2d --stream --sizes 1e6,1e7 --n-queries 150 --workers 2
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

MAIN = {"q2q": "recall_at_10", "q2d": "recall_at_100"}
KS = (10, 100, 1000)


def peak_rss_mb(who: int = resource.RUSAGE_SELF) -> float:
    return round(resource.getrusage(who).ru_maxrss / 1024, 1)


def evaluate_point(a: argparse.Namespace) -> list[dict]:
    import embedbench
    from embedbench.encoders.hashing import HashingEncoder

    langs = ", ".join(a.languages.split(","))
    with tempfile.TemporaryDirectory() as tmp:
        suite = Path(tmp) / "scale.yaml"
        suite.write_text(f"name: scale-{a.suite}\ntasks:\n  - name: Synthetic-{a.suite}\n"
                         f"    loader: synthetic-{a.suite}\n"
                         f"    main_score: {MAIN[a.suite]}\n    options: {{seed: {a.seed}, n_queries: {a.n_queries}, "
                         f"languages: [{langs}]}}\n")
        model = HashingEncoder(dim=a.dim) if a.model == "hashing" else a.model
        t0 = time.perf_counter()
        results = embedbench.evaluate(model, suite=str(suite), precisions=a.precisions, corpus_sizes=[a.size],
                                      write=False, cache_dir=Path(tmp) / "cache", batch_size=a.batch_size)
        wall = time.perf_counter() - t0
    return [{"size": a.size, "precision": r.precision, "n_queries": r.n_queries, "main": r.metrics[MAIN[a.suite]],
             **{f"recall_at_{k}": r.metrics[f"recall_at_{k}"] for k in KS}, "ndcg_at_10": r.metrics["ndcg_at_10"],
             "encode_s": r.encode_seconds, "search_s": r.search_seconds, "wall_s": round(wall, 1),
             "bytes_per_vector": r.bytes_per_vector, "peak_rss_mb": peak_rss_mb()} for r in results]


_CFG = None


def _init(cfg, suite: str, dim: int) -> None:
    global _CFG
    _CFG = (cfg, suite, dim)


def _encode_block(b: int) -> np.ndarray:
    from embedbench.encoders.hashing import HashingEncoder
    from embedbench.data.synthetic import q2d, q2q

    cfg, suite, dim = _CFG
    items = (q2q if suite == "q2q" else q2d).distractor_block(cfg, b)
    return HashingEncoder(dim=dim).encode_documents([d.full_text for _, d in items])


def _merge(run: tuple[np.ndarray, np.ndarray] | None, s: np.ndarray, i: np.ndarray, k: int):
    if run is not None:
        s, i = np.concatenate([run[0], s], axis=1), np.concatenate([run[1], i], axis=1)
    order = np.lexsort((i, -s), axis=1)[:, :k]
    return np.take_along_axis(s, order, axis=1), np.take_along_axis(i, order, axis=1)


def _blocked_dense(q: np.ndarray, rows, n: int, k: int, step: int = 1_000_000):
    """Exact top-k of normalized q against rows(a, b) -> float32 normalized docs, block by block."""
    from embedbench.scoring.search import search_dense

    run = None
    for a in range(0, n, step):
        s, i = search_dense(q, rows(a, min(n, a + step)), k)
        run = _merge(run, s, i + a, k)
    return run


def _unit(x: np.ndarray) -> np.ndarray:
    """A normalized float32 copy (one allocation: the division is in place)."""
    x = np.array(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    x /= norms
    return x


def _file_rows(path: str, dim: int, step: int = 1_000_000):
    """rows(i, j) read from a raw float32 file into one reused buffer (no mmap: its pages would count as RSS)."""
    fh, buf = open(path, "rb"), np.empty((step, dim), np.float32)

    def rows(i: int, j: int) -> np.ndarray:
        fh.seek(i * dim * 4)
        view = buf[: j - i]
        fh.readinto(memoryview(view).cast("B"))
        return view

    return rows


def stream_point(a: argparse.Namespace) -> list[dict]:
    from multiprocessing import get_context

    from embedbench.encoders.hashing import HashingEncoder
    from embedbench.data.synthetic import BLOCK_SIZE, Config, q2d, q2q

    cfg = Config(seed=a.seed, languages=tuple(a.languages.split(",")), n_queries=a.n_queries)
    judged = (q2q if a.suite == "q2q" else q2d).judged(cfg)
    n, dim, enc = a.size, a.dim, HashingEncoder(dim=a.dim)
    judged_ids = list(judged.corpus)
    if n < len(judged_ids):
        raise SystemExit(f"size {n} is smaller than the judged part ({len(judged_ids)})")
    qids = sorted(judged.queries)
    qv = enc.encode_queries([judged.queries[q].text for q in qids])
    precisions = a.precisions.split(",")
    bits = np.empty((n, (dim + 7) // 8), np.uint8) if "binary" in precisions else None
    codes = np.empty((n, dim), np.int8) if "int8" in precisions else None
    fp32_in_ram = n * dim * 4 <= a.fp32_ram_gb * 2**30
    scratch = tempfile.NamedTemporaryFile(dir=a.scratch, suffix=".f32") if not fp32_in_ram else None
    floats = np.empty((n, dim), np.float32) if "fp32" in precisions and fp32_in_ram else None
    pending, filled, calib = [], 0, None

    def put(x: np.ndarray) -> None:
        nonlocal filled
        rows = slice(filled, filled + len(x))
        if bits is not None:
            bits[rows] = np.packbits(x > 0, axis=1)
        if codes is not None:
            codes[rows] = to_int8_posthoc(x, *calib)
        if floats is not None:
            floats[rows] = x
        elif scratch is not None and "fp32" in precisions:
            scratch.write(np.ascontiguousarray(x, np.float32).tobytes())
        filled += len(x)

    t0 = time.perf_counter()
    n_blocks = -(-(n - len(judged_ids)) // BLOCK_SIZE)
    first = [enc.encode_documents([d.full_text for d in judged.corpus.values()])]
    with get_context("fork").Pool(a.workers, _init, (cfg, a.suite, dim)) as pool:
        stream = pool.imap(_encode_block, range(n_blocks), chunksize=4)
        # torch (under embedbench.scoring.precision / search) is imported only after the workers are forked.
        from embedbench.scoring.precision import calibrate_int8, to_int8_posthoc
        for x in (v for part in (first, stream) for v in part):
            x = x[: n - filled - sum(len(p) for p in pending)]
            if calib is None:
                pending.append(x)
                if sum(len(p) for p in pending) >= min(a.calibrate, n):
                    calib = calibrate_int8(np.concatenate(pending))
                    for p in pending:
                        put(p)
                    pending = []
            else:
                put(x)
        if calib is None:
            calib = calibrate_int8(np.concatenate(pending))
            for p in pending:
                put(p)
    encode_s = time.perf_counter() - t0
    if scratch is not None:
        scratch.flush()
    from embedbench.scoring.metrics import mean_metrics, per_query_metrics
    from embedbench.scoring.search import search_hamming

    k, out = max(KS), []
    qrels = {q: judged.qrels[q] for q in qids}
    for prec in precisions:
        t1 = time.perf_counter()
        if prec == "binary":
            dist, idx = search_hamming(np.packbits(qv > 0, axis=1), bits, k)
            scores = 1.0 - 2.0 * dist / dim
        elif prec == "int8":
            scores, idx = _blocked_dense(_unit(to_int8_posthoc(qv, *calib)), lambda i, j: _unit(codes[i:j]), n, k)
        elif floats is not None:
            scores, idx = _blocked_dense(_unit(qv), lambda i, j: floats[i:j], n, k)
        else:
            scores, idx = _blocked_dense(_unit(qv), _file_rows(scratch.name, dim), n, k)
        search_s = time.perf_counter() - t1
        run = {q: {(judged_ids[i] if i < len(judged_ids) else f"x#{i}"): float(s) for s, i in zip(scores[r], idx[r])}
               for r, q in enumerate(qids)}
        m = mean_metrics(per_query_metrics(qrels, run))
        out.append({"size": n, "precision": prec, "n_queries": len(qids), "main": m[MAIN[a.suite]],
                    **{f"recall_at_{kk}": m[f"recall_at_{kk}"] for kk in KS}, "ndcg_at_10": m["ndcg_at_10"],
                    "encode_s": round(encode_s, 1), "search_s": round(search_s, 1),
                    "bytes_per_vector": {"binary": (dim + 7) // 8, "int8": dim, "fp32": 4 * dim}[prec],
                    "fp32_store": "ram" if fp32_in_ram else "scratch file"})
    for row in out:
        row["peak_rss_mb"] = peak_rss_mb()
        row["workers_peak_rss_mb"] = peak_rss_mb(resource.RUSAGE_CHILDREN)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--suite", choices=("q2q", "q2d"), default="q2d")
    p.add_argument("--model", default="hashing", help="evaluate mode: 'hashing' or any embedbench model name")
    p.add_argument("--sizes", default="1e3,1e4,1e5,1e6")
    p.add_argument("--precisions", default="fp32,int8,binary")
    p.add_argument("--n-queries", type=int, default=150)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--languages", default="en,de,fr,es,ru,ja")
    p.add_argument("--dim", type=int, default=384, help="hashing encoder dimension")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--stream", action="store_true", help="streaming path (hashing encoder only)")
    p.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 1)))
    p.add_argument("--calibrate", type=int, default=50_000, help="stream: int8 calibration vectors")
    p.add_argument("--fp32-ram-gb", type=float, default=4.0, help="stream: larger fp32 stores go to a scratch file")
    p.add_argument("--scratch", default=tempfile.gettempdir())
    p.add_argument("--out", type=Path, help="append JSON lines here")
    p.add_argument("--size", type=int, help=argparse.SUPPRESS)  # a child: measure one point
    a = p.parse_args()
    if a.size is not None:
        print(json.dumps(stream_point(a) if a.stream else evaluate_point(a)))
        return
    print("| suite | model | mode | size | precision | queries | main | R@10 | R@100 | R@1000 | encode s | search s "
          "| bytes/vec | peak RSS MB |")
    print("|---" * 14 + "|")
    for size in (int(float(s)) for s in a.sizes.split(",")):
        child = [sys.executable, __file__, *sys.argv[1:], "--size", str(size)]
        done = subprocess.run(child, capture_output=True, text=True)
        if done.returncode != 0:
            print(f"size {size}: failed: {done.stderr.strip().splitlines()[-1:]}", flush=True)
            continue
        for row in json.loads(done.stdout.strip().splitlines()[-1]):
            mode = "stream" if a.stream else "evaluate"
            row.update(suite=a.suite, model="hashing" if a.stream else a.model, mode=mode)
            if a.out:
                with a.out.open("a") as fh:
                    fh.write(json.dumps(row) + "\n")
            rss = max(row["peak_rss_mb"], row.get("workers_peak_rss_mb", 0))
            print(f"| {a.suite} | {row['model']} | {mode} | {size:.0e} | {row['precision']} | {row['n_queries']} "
                  f"| {row['main']:.4f} | {row['recall_at_10']:.4f} | {row['recall_at_100']:.4f} "
                  f"| {row['recall_at_1000']:.4f} | {row['encode_s']} | {row['search_s']} | {row['bytes_per_vector']} "
                  f"| {rss} |", flush=True)


if __name__ == "__main__":
    main()
