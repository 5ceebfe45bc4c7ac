"""`make bench` entry: run the benches, write reports/bench/<name>.json and reports/bench/summary.md.

    python -m bench.run [--quick] [--only sweep,overhead,search,exact,shards,warm,ray,scale,late] [--repeats N] [--out DIR]

Parts: sweep (encode-once precision x dim sweep vs mteb), overhead (cached encode vs raw
SentenceTransformer.encode), search (throughput and peak RSS per precision), exact (fp32 top-k vs faiss,
blocked GEMM+top-k and the GEMM floor), shards (sharded vs in-memory exact search, time and peak RSS),
warm (a warm `embedbench eval` of the default suite; metrics of 115k queries x top-1000), ray
(`--engine ray --workers 2` vs local on Vaswani, cold caches), scale (`embedbench eval` of synthetic
Query2Doc with the hashing encoder at 1e5, 1e6, 1e7 documents: wall time, peak RSS, recall), late (MaxSim
per token precision on Vaswani beside dense minilm-l6, and against PyLate's exact scorer), index (exact search
beside faiss HNSW / IVF / SQ8 / IVF-PQ / binary HNSW on Vaswani and synthetic Query2Doc at 1e6; bench/index.py).
`--quick` shrinks every size for a smoke run; figures from it mean nothing. Targets are reported in the
summary, never asserted. Not part of the tests or CI.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # `python bench/run.py`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import summary  # noqa: E402
from bench.common import DEFAULT_OUT, REPO, log, machine, quiet, write_json  # noqa: E402

# The sweep runs last: it is by far the longest (plain mteb re-encodes Vaswani six times per repeat);
# scale (up to 10^7 documents, ~15 minutes) just before it.
PARTS = ("overhead", "exact", "search", "shards", "warm", "ray", "late", "scale", "index", "sweep")


def find_data_dir(arg: str | None) -> Path:
    from embedbench.data.locations import default_data_dir

    found = Path(arg) if arg else default_data_dir() or REPO.parent / "shared" / "data"
    if not (found / "xquad-r" / "en.json").is_file() or not (found / "vaswani").is_dir():
        raise SystemExit(f"bench: data dir {found} lacks xquad-r/en.json or vaswani/ (set --data-dir or EMBEDBENCH_DATA_DIR)")
    return found


def _plans(quick: bool, repeats: int, sweep_repeats: int, data_dir: Path,
           scratch: Path) -> dict[str, tuple[dict[str, Any], Callable[[], dict[str, Any]]]]:
    from bench import exact_search, late, overhead, ray_engine, scale, search_throughput, shards, sweep_vs_mteb, warm
    from bench import index as index_bench

    if quick:
        from bench import quick_data

        squad, trec = quick_data.write(data_dir, scratch)
        exact_shapes = {(3000, 32): [4, 20]}
        slices = ["--dataset", f"squad:{squad[2]}", "--dataset", f"trec:{trec[2]}"]
        cfg: dict[str, Any] = {
            # 4e3, not 3e3: synthetic-q2d's judged part alone is 3,639 pages at its 600 queries
            "scale": {"sizes": [4000, 10**4], "timeout": 600},
            "shards": {"n": 30000, "d": 64, "nq": 20, "k": 10, "shard": 10000, "repeats": 1},
            "warm": {"source": slices, "repeats": 1, "metrics": {"nq": 2000, "k": 100, "n_docs": 10**5}},
            "ray": {"source": ["--dataset", f"trec:{trec[2]}"], "repeats": 1},
            "late": {"trec": trec[2], "repeats": 1},
            "sweep": {"datasets": (squad,), "repeats": 1},
            "overhead": {"dataset": trec[1:], "limit": 16, "repeats": 1},
            "search": {"sizes": [3000], "dims": [32], "nq": 20, "k": 10, "repeats": 1,
                       "precisions": ("fp32", "binary+int8")},
            "exact": {"shapes": exact_shapes, "k": 10, "repeats": 1},
            "index": {"cases": ["quick"]},
        }
    else:
        cfg = {
            "scale": {"sizes": [10**5, 10**6, 10**7], "timeout": 3600},  # a point past 1 h is killed
            "shards": {"n": 10**6, "d": 384, "nq": 200, "k": 100, "shard": 262144, "repeats": repeats},
            "warm": {"source": ["--suite", "default"], "repeats": 3,
                     "metrics": {"nq": 115_000, "k": 1000, "n_docs": 10**7}},
            "ray": {"source": ["--suite", "vaswani"], "repeats": repeats},
            "late": {"trec": None, "repeats": repeats},
            "sweep": {"datasets": sweep_vs_mteb.DATASETS, "repeats": sweep_repeats},
            "overhead": {"dataset": ("trec", "vaswani"), "limit": 4096, "repeats": repeats},
            "search": {"sizes": [10**5, 10**6], "dims": [384, 1024], "nq": 200, "k": 100, "repeats": repeats,
                       "precisions": search_throughput.PRECISIONS},
            "exact": {"shapes": {(10**5, 384): [200], (10**5, 1024): [200], (10**6, 384): [10, 200],
                                 (10**6, 1024): [10, 200]}, "k": 100, "repeats": repeats},
            "index": {"cases": ["vaswani", "q2d-1e6"]},
        }
    c = cfg
    return {
        "sweep": (c["sweep"], lambda: sweep_vs_mteb.run(data_dir, c["sweep"]["repeats"], tuple(c["sweep"]["datasets"]))),
        "overhead": (c["overhead"], lambda: overhead.run(data_dir, c["overhead"]["repeats"], c["overhead"]["dataset"],
                                                         c["overhead"]["limit"])),
        "search": (c["search"], lambda: search_throughput.run(c["search"]["sizes"], c["search"]["dims"],
                                                              c["search"]["repeats"], c["search"]["nq"],
                                                              c["search"]["k"], tuple(c["search"]["precisions"]))),
        "exact": (c["exact"], lambda: exact_search.run(c["exact"]["shapes"], c["exact"]["repeats"], c["exact"]["k"])),
        "shards": (c["shards"], lambda: shards.run(scratch=scratch, **c["shards"])),
        "warm": (c["warm"], lambda: warm.run(data_dir, scratch, c["warm"]["repeats"], c["warm"]["source"],
                                             c["warm"]["metrics"])),
        "ray": (c["ray"], lambda: ray_engine.run(data_dir, scratch, c["ray"]["repeats"], c["ray"]["source"])),
        "scale": (c["scale"], lambda: scale.run(c["scale"]["sizes"], scratch, c["scale"]["timeout"])),
        "index": (c["index"], lambda: index_bench.run(c["index"]["cases"], scratch, data_dir, quick)),
        "late": (c["late"], lambda: late.run(data_dir, scratch, c["late"]["repeats"],
                                             Path(c["late"]["trec"]) if c["late"]["trec"] else None)),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="tiny sizes, one repeat (smoke run)")
    ap.add_argument("--only", default=None, help=f"comma-separated parts to run: {', '.join(PARTS)}")
    ap.add_argument("--repeats", type=int, default=3, help="interleaved repeats per figure (default 3)")
    ap.add_argument("--sweep-repeats", type=int, default=2,
                    help="repeats of the mteb sweep (default 2: one plain-mteb round re-encodes Vaswani 6 times)")
    ap.add_argument("--data-dir", default=None, help="shared data folder (default EMBEDBENCH_DATA_DIR or ../shared/data)")
    ap.add_argument("--out", default=str(DEFAULT_OUT), help="output folder (default reports/bench)")
    args = ap.parse_args(argv)
    parts = [p.strip() for p in args.only.split(",")] if args.only else list(PARTS)
    unknown = [p for p in parts if p not in PARTS]
    if unknown or args.repeats < 1 or args.sweep_repeats < 1:
        print(f"bench: unknown part {unknown[0]!r} (known: {', '.join(PARTS)})" if unknown
              else "bench: --repeats and --sweep-repeats must be at least 1", file=sys.stderr)
        return 2
    quiet()
    data_dir = find_data_dir(args.data_dir)
    out = Path(args.out)
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        plans = _plans(args.quick, args.repeats, args.sweep_repeats, data_dir, Path(tmp))
        for name in parts:
            config, fn = plans[name]
            info = machine()
            t0 = time.perf_counter()
            result = fn()
            payload = {"bench": name, "quick": args.quick, "machine": info, "config": _jsonable(config),
                       "started": time.strftime("%Y-%m-%dT%H:%M:%S"), "wall_s": time.perf_counter() - t0,
                       "loadavg_end": list(os.getloadavg()), "result": result}
            log(f"wrote {write_json(out, name, payload)}")
    log(f"wrote {summary.write(out)}")
    return 0


def _jsonable(config: dict[str, Any]) -> dict[str, Any]:
    """The config as JSON: shape keys (n, d) of the exact bench become "NxD"."""
    return {k: ({"x".join(map(str, key)) if isinstance(key, tuple) else key: v for key, v in val.items()}
                if isinstance(val, dict) else val) for k, val in config.items()}


if __name__ == "__main__":
    raise SystemExit(main())
