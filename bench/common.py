"""Shared bench helpers: interleaved repeats, medians, quiet third-party logging, JSON output, machine info."""

from __future__ import annotations

import json
import logging
import os
import platform
import statistics
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "reports" / "bench"
GIB = 1 << 30


def interleave(arms: dict[str, Callable[[], Any]], repeats: int,
               log: Callable[[str], None] = print) -> dict[str, list[dict[str, Any]]]:
    """Run the arms A, B, C, A, B, C, ... `repeats` times; per arm a list of {"seconds", "value"}."""
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in arms}
    for rep in range(repeats):
        for name, fn in arms.items():
            t0 = time.perf_counter()
            value = fn()
            seconds = time.perf_counter() - t0
            runs[name].append({"seconds": seconds, "value": value})
            log(f"  [{rep + 1}/{repeats}] {name}: {seconds:.2f} s")
    return runs


def median_seconds(runs: list[dict[str, Any]]) -> float:
    return float(statistics.median(r["seconds"] for r in runs))


def summarize(runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Per arm: median seconds and every repeat's seconds (the values stay with the caller)."""
    return {name: {"median_s": median_seconds(r), "runs_s": [round(x["seconds"], 4) for x in r]}
            for name, r in runs.items()}


def quiet() -> None:
    """Offline, no progress bars, no chatty loggers: the bench prints its own progress lines."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    warnings.filterwarnings("ignore")
    for name in ("mteb", "datasets", "sentence_transformers", "transformers", "faiss", "codecarbon"):
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        import datasets

        datasets.disable_progress_bars()
    except ImportError:  # pragma: no cover - mteb brings it
        pass
    try:
        import transformers

        transformers.logging.set_verbosity_error()
        transformers.logging.disable_progress_bar()
    except ImportError:  # pragma: no cover
        pass


def mem_available_bytes() -> int | None:
    """MemAvailable from /proc/meminfo (None off Linux)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def machine() -> dict[str, Any]:
    import numpy
    import torch

    info: dict[str, Any] = {
        "cpus": os.cpu_count(),
        "cpu": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "loadavg": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "mem_available_gib": round((mem_available_bytes() or 0) / GIB, 1),
    }
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    for pkg in ("faiss", "mteb", "sentence_transformers"):
        try:
            info[pkg] = __import__(pkg).__version__
        except (ImportError, AttributeError):
            info[pkg] = None
    return info


def write_json(out_dir: Path, name: str, payload: dict[str, Any]) -> Path:
    """reports/bench/<name>.json, written via a temporary file so a killed run leaves no half file."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def log(msg: str) -> None:
    print(msg, flush=True)
