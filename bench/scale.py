"""Bench 5: the scaling law of the streaming engine: `embedbench eval` of synthetic Query2Doc with the hashing
encoder at growing corpus sizes, fp32 + int8 + binary.

Each size is one `embedbench eval --model hashing --suite synthetic-q2d --corpus-size N --precision
fp32,int8,binary` in its own child process, with a fresh embedding cache and a temporary results folder
(scripts/scale_curve.py does the runs): wall time and peak RSS are that child's (`/usr/bin/time -v`'s
figure, from wait4), the metrics are the results it wrote. Targets (issue 12): 10^7 documents in at
most 15 minutes and at most 4 GB peak RSS.
"""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path
from typing import Any

from bench.common import REPO, log

WALL_TARGET_S = 15 * 60
RSS_TARGET_GB = 4.0
TARGET_SIZE = 10**7


def _curve_module() -> Any:
    spec = importlib.util.spec_from_file_location("scale_curve", REPO / "scripts" / "scale_curve.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def run(sizes: list[int], scratch: Path, timeout: float | None = None, n_queries: int | None = None) -> dict[str, Any]:
    curve = _curve_module()
    argv = ["--suite", "q2d", "--model", "hashing", "--precisions", "fp32,int8,binary", "--scratch", str(scratch)]
    if n_queries is not None:
        argv += ["--n-queries", str(n_queries)]
    if timeout is not None:
        argv += ["--timeout", str(timeout)]
    args: argparse.Namespace = curve.parse_args(argv)
    points = []
    for n in sizes:
        log(f"scale: embedbench eval --model hashing --suite synthetic-q2d --corpus-size {n:,} (fresh cache)")
        point = curve.measure_point(n, args)
        for row in point["rows"]:
            row.pop("metrics", None)  # the curve keeps the headline metrics; the full set is in results/
        shown = point.get("error") or (f"{point['wall_s']:.1f} s, peak RSS {point['peak_rss_gb']:.2f} GB, "
                                       + ", ".join(f"{r['precision']} R@100 {r['recall_at_100']:.4f}"
                                                   for r in point["rows"]))
        log(f"  {n:,}: {shown}")
        points.append(point)
    return {"suite": "synthetic-q2d", "model": "hashing", "precisions": ["fp32", "int8", "binary"],
            "points": points, "table": curve.curve_table(points)}
