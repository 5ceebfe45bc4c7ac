"""`embedbench latency`: a model's single-query encode latency and batch throughput on this device."""

from __future__ import annotations

import argparse

DESCRIPTION = ("Encode a seeded sample of English synthetic queries one at a time after warm-up (p50 / p99 "
               "milliseconds), then queries and pages in batches (per second), on the chosen device; with "
               "the model's tokenizer, tokens per page. Writes RESULTS/latency/MODEL-DEVICE-bBATCH.jsonl, "
               "which `embedbench report` shows beside quality and uses to cost embedding a corpus.")


def add_latency_arguments(parser: argparse.ArgumentParser) -> None:
    from embedbench.engine.latency import DEFAULT_PAGES, DEFAULT_REPEATS
    from embedbench.engine.timing import LATENCY_WARMUP

    parser.add_argument("--model", default="minilm-l6", help="preset, local folder or reference (default minilm-l6)")
    parser.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N (default cpu)")
    parser.add_argument("--dtype", default="auto", help="auto | fp32 | bf16 | fp16 (default auto)")
    parser.add_argument("--batch-size", type=int, default=32, help="batch size of the throughput runs (default 32)")
    parser.add_argument("--max-length", type=int, default=None, help="truncate texts to N tokens")
    parser.add_argument("--repeats", type=int, default=DEFAULT_REPEATS,
                        help=f"queries encoded one at a time and timed (default {DEFAULT_REPEATS})")
    parser.add_argument("--warmup", type=int, default=LATENCY_WARMUP,
                        help=f"untimed single-query encodes first (default {LATENCY_WARMUP})")
    parser.add_argument("--pages", type=int, default=DEFAULT_PAGES,
                        help=f"pages encoded for the page throughput (default {DEFAULT_PAGES})")
    parser.add_argument("--results-dir", default="results", help="where the record is written (default results)")
    parser.add_argument("--trust-remote-code", action="store_true", help="allow a model's own code (hub models)")


def latency_command(args: argparse.Namespace, argv: list[str]) -> int:
    from embedbench.encoders.settings import EncodeSettings
    from embedbench.engine.latency import run_latency

    settings = EncodeSettings(device=args.device, batch_size=args.batch_size, max_length=args.max_length,
                              trust_remote_code=args.trust_remote_code, show_progress=False, dtype=args.dtype)
    record, path = run_latency(args.model, settings, args.results_dir, repeats=args.repeats, warmup=args.warmup,
                               pages=args.pages, command=["embedbench", *argv])
    tokens = "" if record.tokens_per_page is None else (f", {record.tokens_per_page:.1f} tokens/page "
                                                         f"({record.tokens_per_second:,.0f} tokens/s)")
    print(f"{record.model} on {record.device} (batch {record.batch_size}, {record.threads} threads): "
          f"single query p50 {record.latency_p50_ms:.2f} ms, p99 {record.latency_p99_ms:.2f} ms "
          f"({record.repeats} queries after {record.warmup} warm-up); {record.queries_per_second:,.1f} queries/s, "
          f"{record.pages_per_second:,.1f} pages/s{tokens}")
    print(f"wrote {path}")
    return 0
