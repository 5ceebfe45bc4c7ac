"""A model's measured query latency and encoding throughput (`embedbench latency`), stored beside results.

One record per (model, device, batch size), in ``RESULTS/latency/`` as a one-line ``.jsonl`` file, so
result scans (``*.json``) never mistake it for a result; re-measuring replaces it. The report reads
these records to show latency beside quality and to cost encoding a corpus (report/cost.py).
"""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from embedbench.atomic import atomic_write_text

LATENCY_DIR = "latency"
LATENCY_SUFFIX = ".jsonl"


class LatencyRecord(BaseModel):
    """Single-query encode latency and batch throughput of one model on one device."""

    model_config = ConfigDict(extra="forbid")

    schema_version: int = 1
    model: str
    revision: str
    device: str
    dtype: str
    batch_size: int
    threads: int = Field(description="OpenMP threads of this process")
    warmup: int = Field(description="untimed single-query encodes before timing")
    repeats: int = Field(description="queries encoded one at a time and timed")
    latency_p50_ms: float | None
    latency_p99_ms: float | None
    latency_queries: int
    qps_single: float | None = Field(None, description="queries encoded one at a time per second (timed ones)")
    queries_per_second: float = Field(description="queries encoded per second in batches of batch_size")
    pages_per_second: float = Field(description="pages encoded per second in batches of batch_size")
    n_pages: int
    tokens_per_page: float | None = Field(description="mean tokens of the timed pages as the model reads them "
                                                      "(None: the model has no tokenizer)")
    tokens_per_second: float | None
    texts: str = Field(description="which texts were timed")
    machine: str
    embedbench_version: str
    command: list[str]
    created_at: str


def latency_path(results_dir: Path, record: LatencyRecord) -> Path:
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{record.model}-{record.device}-b{record.batch_size}").strip("_.")
    return Path(results_dir) / LATENCY_DIR / f"{slug}{LATENCY_SUFFIX}"


def write_latency(results_dir: Path, record: LatencyRecord) -> Path:
    path = latency_path(results_dir, record)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, record.model_dump_json() + "\n")
    return path


def read_latencies(results_dir: Path) -> list[LatencyRecord]:
    """Every readable latency record under ``results_dir`` (unreadable files are left out)."""
    out = []
    for path in sorted(Path(results_dir).rglob(f"{LATENCY_DIR}/*{LATENCY_SUFFIX}")):
        try:
            out.append(LatencyRecord.model_validate_json(path.read_text().strip()))
        except (OSError, ValidationError, ValueError):
            continue
    return out
