"""The cost of owning a billion pages: index storage, and what embedding them costs, per model x precision x index.

One row per (model, revision, precision, dim, index), from results and latency records only:

* index storage for 10^9 pages: the measured bytes per vector (a faiss index's serialized size per
  vector, from its largest measured corpus; the exact search's stored vectors) x 10^9;
* quality and speed beside it: the mean main score over the row's tasks, its mean delta against exact
  search at the same precision and dim, and the index's queries per second and latency p50 / p99;
* what encoding costs, from the model's latency record (`embedbench latency`): tokens per page and
  pages per second as measured there, and -- only when the user gives a price -- the cost to embed
  10^9 pages: ``tokens/page x 10^9 / 10^6 x price per million tokens`` (``--price-per-mtok``) or
  ``10^9 / (pages/s) / 3600 x price per GPU hour`` (``--gpu-hour-cost``). Every input is shown in
  the table; a cell whose input was not measured or given stays blank. No price is ever assumed.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from embedbench.atomic import atomic_write_text
from embedbench.errors import EmbedbenchError
from embedbench.report import fmt
from embedbench.report.rows import index_of
from embedbench.results import Result
from embedbench.results.latency import LatencyRecord

PAGES = 10**9


@dataclass(frozen=True)
class Prices:
    """What the user says encoding costs; None: not given (the cost columns stay blank)."""

    per_mtok: float | None = None  # currency per million tokens (an embedding API)
    gpu_hour: float | None = None  # currency per hour of the device the latency record was measured on

    def __post_init__(self) -> None:
        for flag, value in (("--price-per-mtok", self.per_mtok), ("--gpu-hour-cost", self.gpu_hour)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                      or not math.isfinite(value) or value < 0):
                raise EmbedbenchError(f"{flag} must be a number >= 0, got {value!r}")


def cost_rows(results: Sequence[Result], latencies: Sequence[LatencyRecord], prices: Prices = Prices()) -> list[dict]:
    """One record per (model, revision, precision, dim, index), in a stable order."""
    groups: dict[tuple, list[Result]] = defaultdict(list)
    for r in results:
        if r.bytes_per_vector > 0:  # a lexical baseline stores no vectors
            groups[(r.model, r.revision, r.precision, r.dim, index_of(r))].append(r)
    out = []
    for (model, revision, precision, dim, index), group in sorted(groups.items()):
        largest = max(group, key=lambda r: (r.n_docs, r.provenance.created_at))
        per_vector = float((largest.costs or {}).get("bytes_per_vector") or largest.bytes_per_vector)
        latency = _latency_for(model, revision, latencies)
        rec = {
            "model": model, "precision": precision, "dim": dim, "index": index, "n_results": len(group),
            "mean_main_score": _mean([r.main_score for r in group]),
            "delta_vs_exact": _mean([(r.costs or {}).get("main_score_delta") for r in group]),
            "qps": _mean([(r.costs or {}).get("qps") for r in group]),
            "qps_single": _mean([(r.costs or {}).get("qps_single") for r in group]),
            "latency_p50_ms": _mean([(r.costs or {}).get("latency_p50_ms") for r in group]),
            "latency_p99_ms": _mean([(r.costs or {}).get("latency_p99_ms") for r in group]),
            "bytes_per_vector": per_vector, "bytes_measured_at_docs": largest.n_docs,
            "storage_tb_per_1e9_pages": per_vector * PAGES / 1e12,
            **encoding_costs(latency, prices),
        }
        out.append(rec)
    return out


def encoding_costs(latency: LatencyRecord | None, prices: Prices) -> dict[str, object]:
    """The encoding columns: the measured inputs, the prices given, and the costs they imply."""
    tokens = latency.tokens_per_page if latency else None
    rate = latency.pages_per_second if latency else None
    by_tokens = None if tokens is None or prices.per_mtok is None else tokens * PAGES / 1e6 * prices.per_mtok
    hours = None if not rate else PAGES / rate / 3600
    by_gpu = None if hours is None or prices.gpu_hour is None else hours * prices.gpu_hour
    return {
        "tokens_per_page": tokens, "pages_per_second": rate,
        "encode_device": f"{latency.device}, batch {latency.batch_size}" if latency else None,
        "device_hours_per_1e9_pages": hours,
        "price_per_mtok": prices.per_mtok, "cost_per_1e9_pages_by_tokens": by_tokens,
        "gpu_hour_cost": prices.gpu_hour, "cost_per_1e9_pages_by_device_hours": by_gpu,
    }


def _latency_for(model: str, revision: str, latencies: Sequence[LatencyRecord]) -> LatencyRecord | None:
    """The model's newest latency record at this revision (a GPU one before a CPU one when both exist)."""
    mine = [rec for rec in latencies if rec.model == model and rec.revision == revision]
    if not mine:
        return None
    return max(mine, key=lambda rec: (rec.device != "cpu", rec.created_at))


def _mean(values: Sequence[object]) -> float | None:
    finite = [float(v) for v in values if isinstance(v, (int, float)) and math.isfinite(float(v))]
    return sum(finite) / len(finite) if finite else None


def write_cost(results: Sequence[Result], latencies: Sequence[LatencyRecord], out_dir: Path,
               prices: Prices = Prices()) -> list[Path]:
    rows = cost_rows(results, latencies, prices)
    csv_path = atomic_write_text(out_dir / "cost.csv", pd.DataFrame(rows).to_csv(index=False))
    header = ["model", "precision", "dim", "index", "results", "mean main score", "Δ vs exact", "queries/s batched",
              "queries/s one at a time", "p50 / p99 ms",
              "bytes/vector", "storage, 10⁹ pages", "tokens/page", "pages/s (device)", "device hours, 10⁹ pages",
              "cost, 10⁹ pages"]
    body = [[fmt.md_cell(r["model"]), fmt.md_cell(r["precision"]), str(r["dim"]), fmt.md_cell(r["index"]), str(r["n_results"]),
             fmt.score(r["mean_main_score"]), fmt.delta(r["delta_vs_exact"]), _num(r["qps"], 0), _num(r["qps_single"], 0),
             _latency(r), _num(r["bytes_per_vector"], 1), _storage(r["storage_tb_per_1e9_pages"]),
             _num(r["tokens_per_page"], 1), _rate(r), _num(r["device_hours_per_1e9_pages"], 0), _cost(r)]
            for r in rows]
    text = ["# Cost of ownership: a billion pages", "",
            "Per model x precision x index, from the results and `embedbench latency` records in the results folder. "
            "Storage = measured bytes per vector x 10⁹ (a faiss index: its serialized size per vector at the largest "
            "corpus it was measured on; exact search: the stored vectors, no ids). Queries/s and latency are this "
            "machine's measurements. Encoding: tokens per page and pages per second as `embedbench latency` measured "
            "them (on its synthetic English sample); the cost is shown only for a price given to `embedbench report` "
            f"({_prices_text(rows)}).", "",
            fmt.md_table(header, body, ["---"] * 4 + ["---:"] * (len(header) - 4)), "",
            "The mean main score and Δ are over each row's own results (tasks x corpus sizes); compare rows "
            "with the same number of results, or read the trade-off table, which compares on common tasks.", ""]
    md_path = atomic_write_text(out_dir / "cost.md", "\n".join(text))
    return [md_path, csv_path]


def _prices_text(rows: list[dict]) -> str:
    given = []
    if rows and rows[0]["price_per_mtok"] is not None:
        given.append(f"--price-per-mtok {rows[0]['price_per_mtok']:g}")
    if rows and rows[0]["gpu_hour_cost"] is not None:
        given.append(f"--gpu-hour-cost {rows[0]['gpu_hour_cost']:g}")
    return "given: " + ", ".join(given) if given else "none given: cost left blank"


def _num(value: float | None, digits: int) -> str:
    return "" if value is None else f"{value:,.{digits}f}"


def _latency(r: dict) -> str:
    if r["latency_p50_ms"] is None:
        return ""
    return f"{r['latency_p50_ms']:.2f} / {r['latency_p99_ms']:.2f}"


def _storage(tb: float) -> str:
    return f"{tb * 1000:,.0f} GB" if tb < 1 else f"{tb:,.2f} TB"


def _rate(r: dict) -> str:
    return "" if r["pages_per_second"] is None else f"{r['pages_per_second']:,.1f} ({r['encode_device']})"


def _cost(r: dict) -> str:
    parts = []
    if r["cost_per_1e9_pages_by_tokens"] is not None:
        parts.append(f"{r['cost_per_1e9_pages_by_tokens']:,.0f} (tokens x {r['price_per_mtok']:g}/Mtok)")
    if r["cost_per_1e9_pages_by_device_hours"] is not None:
        parts.append(f"{r['cost_per_1e9_pages_by_device_hours']:,.0f} (hours x {r['gpu_hour_cost']:g}/h)")
    return "; ".join(parts)
