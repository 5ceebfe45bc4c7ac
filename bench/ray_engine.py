"""Bench 8: `--engine ray --workers 2` against `--engine local` on Vaswani with minilm-l6, cold caches.

Each run is `embedbench eval --model minilm-l6 --suite vaswani --precision fp32,int8,binary` in its own
child process with a fresh embedding cache (so both engines encode the whole corpus) and a fresh results
folder, the engines interleaved (local, ray, local, ray, ...), `repeats` rounds; wall clock of the
whole command, median per engine. The ray runs start a local Ray for the run unless RAY_ADDRESS names a
cluster (its start is part of the ray wall time, as a user sees it). Every metric of every result of
every run must equal the first local run's, exactly.
Target (issue 12): ray at most 1.2x local.
"""

from __future__ import annotations

import math
import os
import statistics
from pathlib import Path
from typing import Any

from bench.common import log
from bench.proc import embedbench_cmd, run_measured

ENGINES = {"local": [], "ray": ["--engine", "ray", "--workers", "2"]}
RATIO_TARGET = 1.2


def _metrics(results_dir: Path) -> dict[str, dict[str, float | None]]:
    """(task, precision, dim, variant) -> metrics, of every result in `results_dir`."""
    from embedbench.results.store import read_results

    return {f"{r.task} {r.precision} {r.dim} {sorted(r.variant.items())}": dict(r.metrics) | {"main_score": r.main_score}
            for r in read_results(results_dir)}


def _differences(ref: dict[str, dict[str, Any]], got: dict[str, dict[str, Any]]) -> list[str]:
    out = [f"{key}: missing" for key in ref if key not in got] + [f"{key}: extra" for key in got if key not in ref]
    for key in ref.keys() & got.keys():
        for name in ref[key].keys() | got[key].keys():
            a, b = ref[key].get(name), got[key].get(name)
            same = a == b or (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b))
            if not same:
                out.append(f"{key} {name}: local {a!r}, ray {b!r}")
    return sorted(out)


def run(data_dir: Path, scratch: Path, repeats: int, source: list[str], timeout: float = 3600) -> dict[str, Any]:
    work = scratch / "ray"
    args = ["eval", "--model", "minilm-l6", *source, "--precision", "fp32,int8,binary"]
    log(f"ray: embedbench eval --model minilm-l6 {' '.join(source)}: --engine local vs "
        f"--engine ray --workers 2, cold caches, {repeats} rounds")
    runs: dict[str, list[dict[str, Any]]] = {e: [] for e in ENGINES}
    reference: dict[str, dict[str, Any]] | None = None
    differences: list[str] = []
    for rep in range(repeats):
        for engine, flags in ENGINES.items():
            tag = f"{engine}-{rep}"
            env = dict(os.environ, EMBEDBENCH_CACHE_DIR=str(work / tag / "cache"), EMBEDBENCH_DATA_DIR=str(data_dir))
            done = run_measured(embedbench_cmd(*args, *flags, "--results-dir", str(work / tag / "results")),
                                env=env, timeout=timeout)
            entry: dict[str, Any] = {"wall_s": done["wall_s"], "peak_rss_mib": done["peak_rss_mib"], "rc": done["rc"]}
            if done["rc"] != 0:
                entry["error"] = ("timed out" if done["timed_out"] else f"exit {done['rc']}") + f": {done['stderr_tail']}"
                log(f"  [{rep + 1}/{repeats}] {engine}: failed: {entry['error']}")
            else:
                got = _metrics(work / tag / "results")
                entry["results"] = len(got)
                if reference is None and engine == "local":
                    reference = got
                elif reference is not None:
                    diff = _differences(reference, got)
                    entry["differences"] = len(diff)
                    differences += [f"{tag}: {d}" for d in diff]
                log(f"  [{rep + 1}/{repeats}] {engine}: {done['wall_s']:.1f} s, peak RSS {done['peak_rss_mib']:.0f} MiB, "
                    f"{len(got)} results" + (f", {entry['differences']} metric differences" if "differences" in entry else ""))
            runs[engine].append(entry)
    ok = {e: [r["wall_s"] for r in rs if "error" not in r] for e, rs in runs.items()}
    med = {e: statistics.median(v) if v else None for e, v in ok.items()}
    ray_compared = any("differences" in r for r in runs["ray"])
    errors = [f"{e}: {r['error']}" for e, rs in runs.items() for r in rs if "error" in r]
    return {"command": " ".join(["embedbench", *args]), "engines": {e: " ".join(f) for e, f in ENGINES.items()},
            "repeats": repeats, "runs": runs, "median_s": med,
            "ratio": med["ray"] / med["local"] if med["ray"] and med["local"] else None,
            "identical": ray_compared and not differences,
            "differences": differences[:50], "errors": errors}
