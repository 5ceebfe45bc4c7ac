"""Measure a scale curve on the synthetic suites through the engine: wall time, peak RSS and metrics vs corpus size.

Not a test. A thin driver over `embedbench eval`: every size is one `embedbench eval --suite
synthetic-{q2d,q2q} --corpus-size N` run in its own child process, with a fresh embedding cache
and a temporary results folder (unless --cache-dir / --results-dir are given), so its wall time and
peak RSS (the child's ru_maxrss, what `/usr/bin/time -v` reports) are its own. The metrics are read
back from the results that run wrote: they are the runner's numbers, the same as `embedbench eval`
or `embedbench.evaluate` gives for the same settings (the engine streams the corpus in shards; there
is no separate pipeline here).

Options the stock suite file sets (--n-queries, --seed, --languages) are overlaid on a copy of it;
without them the run is exactly `embedbench eval --suite synthetic-q2d ...`.
Rows (one per size x precision) are appended to --out as JSON lines; the curve (size, wall s,
s per 10^6 documents, peak RSS, main score per precision) is printed as a markdown table and
written to --table.
Examples:
  python scripts/scale_curve.py --suite q2d --model hashing --sizes 1e5,1e6,1e7 --out curve.jsonl --table curve.md
  python scripts/scale_curve.py --suite q2q --model minilm-l6 --sizes 1e4,1e5 --n-queries 150
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.proc import embedbench_cmd, run_measured  # noqa: E402

KS = (10, 100, 1000)
GB = 10**9


def suite_file(suite: str, n_queries: int | None, seed: int | None, languages: str | None, where: Path) -> str:
    """`synthetic-<suite>` itself, or a copy of its YAML with the given options overlaid (written under `where`)."""
    name = f"synthetic-{suite}"
    overlay: dict[str, Any] = {k: v for k, v in (("n_queries", n_queries), ("seed", seed),
                                                  ("languages", languages.split(",") if languages else None))
                               if v is not None}
    if not overlay:
        return name
    import yaml

    from embedbench.data.suites import available_suites

    raw = yaml.safe_load(available_suites()[name].read_text(encoding="utf-8"))
    for task in raw["tasks"]:
        task.setdefault("options", {}).update(overlay)
    path = where / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return str(path)


def eval_command(suite_ref: str, size: int, a: argparse.Namespace, results_dir: Path) -> list[str]:
    args = ["eval", "--model", a.model, "--suite", suite_ref, "--corpus-size", str(size),
            "--precision", a.precisions, "--results-dir", str(results_dir)]
    for flag, value in (("--batch-size", a.batch_size), ("--engine", a.engine), ("--shard-size", a.shard_size),
                        ("--workers", a.workers)):
        if value is not None:
            args += [flag, str(value)]
    return embedbench_cmd(*args)


def measure_point(size: int, a: argparse.Namespace) -> dict[str, Any]:
    """One `embedbench eval` run at corpus size `size`: {"size", "command", "wall_s", "peak_rss_gb", ..., "rows"}."""
    from embedbench.results.store import read_results

    with tempfile.TemporaryDirectory(prefix="scale-curve-", dir=a.scratch) as tmp:
        work = Path(tmp)
        results_dir = Path(a.results_dir) if a.results_dir else work / "results"
        cache_dir = Path(a.cache_dir) if a.cache_dir else work / "cache"
        suite_ref = suite_file(a.suite, a.n_queries, a.seed, a.languages, work)
        cmd = eval_command(suite_ref, size, a, results_dir)
        env = dict(os.environ, EMBEDBENCH_CACHE_DIR=str(cache_dir))
        done = run_measured(cmd, env=env, timeout=a.timeout)
        point: dict[str, Any] = {
            "size": size, "suite": f"synthetic-{a.suite}", "model": a.model, "precisions": a.precisions,
            "command": " ".join(["embedbench", *cmd[cmd.index("eval"):]]), "engine": a.engine or "local",
            "rc": done["rc"], "timed_out": done["timed_out"], "wall_s": round(done["wall_s"], 2),
            "peak_rss_gb": round(done["peak_rss_bytes"] / GB, 3), "s_per_1e6_docs": round(done["wall_s"] / (size / 1e6), 2),
            "user_s": round(done["user_s"], 1), "sys_s": round(done["sys_s"], 1), "rows": [],
        }
        if done["rc"] != 0:
            point["error"] = ("timed out" if done["timed_out"] else f"exit {done['rc']}") + f": {done['stderr_tail']}"
            return point
        # results/ may hold other runs (--results-dir): keep this size's
        results = [r for r in read_results(results_dir) if int(r.variant.get("corpus_size", r.n_docs)) == size]
        for r in results:
            m = r.metrics
            point["rows"].append({
                "size": size, "precision": r.precision, "dim": r.dim, "n_queries": r.n_queries, "n_docs": r.n_docs,
                "main_score_name": r.main_score_name, "main": r.main_score,
                **{f"recall_at_{k}": m.get(f"recall_at_{k}") for k in KS}, "ndcg_at_10": m.get("ndcg_at_10"),
                "encode_s": r.encode_seconds, "search_s": r.search_seconds, "bytes_per_vector": r.bytes_per_vector,
                "texts_encoded": r.provenance.texts_encoded, "metrics": dict(m),
            })
        order = [p.strip() for p in a.precisions.split(",")]
        point["rows"].sort(key=lambda row: order.index(row["precision"]) if row["precision"] in order else len(order))
    return point


def curve_table(points: list[dict[str, Any]]) -> str:
    """The scaling-law table: one line per size, the main score per precision."""
    precisions = list(dict.fromkeys(r["precision"] for p in points for r in p["rows"]))
    main = next((r["main_score_name"] for p in points for r in p["rows"]), "main score")
    head = ["corpus size", "wall s", "s per 10^6 docs", "peak RSS GB", "encode s",
            *[f"{prec} {main}" for prec in precisions]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for p in points:
        by = {r["precision"]: r for r in p["rows"]}
        if "error" in p:
            cells = [f"{p['size']:,}", f"{p['wall_s']:.1f}", "—", f"{p['peak_rss_gb']:.2f}", "—",
                     *(["failed: " + p["error"].splitlines()[0][:80]] + ["—"] * (len(precisions) - 1))[:len(precisions)]]
        else:
            encode = next((r["encode_s"] for r in p["rows"]), None)
            cells = [f"{p['size']:,}", f"{p['wall_s']:.1f}", f"{p['s_per_1e6_docs']:.1f}", f"{p['peak_rss_gb']:.2f}",
                     "—" if encode is None else f"{encode:.1f}",
                     *[f"{by[prec]['main']:.4f}" if prec in by else "—" for prec in precisions]]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--suite", choices=("q2q", "q2d"), default="q2d")
    p.add_argument("--model", default="hashing", help="any embedbench model name ('hashing': the hashing encoder)")
    p.add_argument("--sizes", default="1e4,1e5,1e6",
                   help="comma-separated corpus sizes, e.g. 1e5,1e6,1e7 (at least the judged part: 3,639 for q2d at 600 queries)")
    p.add_argument("--precisions", default="fp32,int8,binary")
    p.add_argument("--n-queries", type=int, help="overlay on the suite's n_queries (default: the suite's)")
    p.add_argument("--seed", type=int, help="overlay on the suite's seed")
    p.add_argument("--languages", help="overlay on the suite's languages, comma-separated (e.g. en,de)")
    p.add_argument("--batch-size", type=int, help="embedbench eval --batch-size")
    p.add_argument("--engine", choices=("local", "ray"), help="embedbench eval --engine")
    p.add_argument("--workers", type=int, help="embedbench eval --workers (--engine ray)")
    p.add_argument("--shard-size", type=int, help="embedbench eval --shard-size")
    p.add_argument("--cache-dir", help="embedding cache for every point (default: a fresh one per point)")
    p.add_argument("--results-dir", help="keep the results here (default: a temporary folder per point)")
    p.add_argument("--scratch", default=None, help="where the temporary folders go (default: the system's)")
    p.add_argument("--timeout", type=float, help="seconds per point before it is killed")
    p.add_argument("--out", type=Path, help="append one JSON line per (size, precision) here")
    p.add_argument("--table", type=Path, help="write the curve's markdown table here")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    try:
        sizes = [int(float(s)) for s in a.sizes.split(",")]
    except ValueError:
        print(f"scale_curve: bad --sizes {a.sizes!r}", file=sys.stderr)
        return 2
    points, failed = [], 0
    for size in sizes:
        point = measure_point(size, a)
        points.append(point)
        if "error" in point:
            failed += 1
            print(f"size {size}: failed: {point['error']}", file=sys.stderr, flush=True)
        else:
            print(f"size {size:,}: {point['wall_s']:.1f} s, peak RSS {point['peak_rss_gb']:.2f} GB, "
                  + ", ".join(f"{r['precision']} {r['main_score_name']} {r['main']:.4f}" for r in point["rows"]),
                  file=sys.stderr, flush=True)
        if a.out:
            with a.out.open("a", encoding="utf-8") as fh:
                for row in point["rows"]:
                    fh.write(json.dumps({**row, **{k: v for k, v in point.items() if k != "rows"}}) + "\n")
    table = curve_table(points)
    print(table, end="")
    if a.table:
        a.table.write_text(table, encoding="utf-8")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
