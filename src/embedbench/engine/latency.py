"""What the model costs per query and per page: single-query encode latency and batch throughput.

`embedbench latency --model M` loads the model as `evaluate` does and encodes, on the current device:
a seeded sample of queries one at a time after warm-up (p50 / p99 of the seconds each took, the same
rule as the search latencies, engine/timing.py), then every sampled query and page in batches of
the run's batch size (queries and pages per second). The texts are English synthetic Query2Doc
queries and pages (offline, seeded, the same every run); where the model has a tokenizer, the
pages' token count (with the document prompt, special tokens included, untruncated) gives tokens
per page and tokens per second, which the report's cost-of-ownership table reads. Nothing goes
through the embedding cache: a cached vector would cost nothing.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from embedbench.data.synthetic import Config, build_q2d
from embedbench.encoders.settings import EncodeSettings
from embedbench.engine.context import load_encoder
from embedbench.engine.provenance import now_iso, package_versions
from embedbench.engine.timing import LATENCY_WARMUP, latency_rows, latency_summary, threads, time_each
from embedbench.errors import EmbedbenchError
from embedbench.results.latency import LatencyRecord, write_latency

DEFAULT_REPEATS = 200  # queries encoded one at a time
DEFAULT_PAGES = 512  # pages encoded in batches for the throughput
SAMPLE_SEED = 0


def sample_texts(n_queries: int, n_pages: int, seed: int = SAMPLE_SEED) -> tuple[list[str], list[str]]:
    """English synthetic Query2Doc queries and pages: ``n_queries`` queries, ``n_pages`` pages."""
    n_queries = max(1, n_queries)  # the generated corpus holds its judged part, about 6 pages a query
    data = build_q2d(Config(seed=seed, languages=("en",), n_queries=n_queries), max(n_pages, 10 * n_queries))
    queries = [data.queries[qid].text for qid in sorted(data.queries)][:n_queries]
    pages = [data.corpus[did].full_text for did in sorted(data.corpus)][:n_pages]
    return queries, pages


def measure_latency(model: str | object, settings: EncodeSettings, *, repeats: int = DEFAULT_REPEATS,
                    warmup: int = LATENCY_WARMUP, pages: int = DEFAULT_PAGES,
                    command: Sequence[str] = ()) -> LatencyRecord:
    """Load ``model`` and measure it (see the module docstring)."""
    for name, value, low in (("--repeats", repeats, 1), ("--warmup", warmup, 0), ("--pages", pages, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise EmbedbenchError(f"{name} must be an integer >= {low}, got {value!r}")
    encoder = load_encoder(model, settings)
    if not hasattr(encoder, "encode_queries"):
        raise EmbedbenchError(f"model {encoder.meta.name!r} has no query encoder to time (a lexical model)")
    queries, docs = sample_texts(repeats, pages)
    rows = latency_rows(len(queries), size=repeats)
    single = time_each(lambda r: encoder.encode_queries([queries[r]]), rows, warmup)
    query_rate = _rate(encoder.encode_queries, queries, settings.batch_size)
    page_rate = _rate(encoder.encode_documents, docs, settings.batch_size)
    tokens = page_tokens(encoder, docs)
    meta = encoder.meta
    return LatencyRecord(
        model=model if isinstance(model, str) else meta.name, revision=meta.revision, device=settings.device,
        dtype=meta.compute_dtype, batch_size=settings.batch_size, threads=threads(),
        warmup=warmup, repeats=len(rows), **latency_summary(single),
        queries_per_second=query_rate, pages_per_second=page_rate, n_pages=len(docs),
        tokens_per_page=None if tokens is None else round(tokens / len(docs), 2),
        tokens_per_second=None if tokens is None else round(tokens / len(docs) * page_rate, 1),
        texts=f"synthetic-q2d en, seed {SAMPLE_SEED}: {len(queries)} queries, {len(docs)} pages",
        machine=f"{platform.machine()} {platform.processor() or platform.system()}",
        embedbench_version=package_versions()["embedbench"], command=list(command), created_at=now_iso())


def run_latency(model: str | object, settings: EncodeSettings, results_dir: str | Path, **kwargs: object) -> tuple[LatencyRecord, Path]:
    """Measure and write the record under ``results_dir`` (see :func:`embedbench.results.latency.write_latency`)."""
    record = measure_latency(model, settings, **kwargs)
    return record, write_latency(Path(results_dir), record)


def page_tokens(encoder: object, pages: Sequence[str]) -> int | None:
    """Tokens of ``pages`` as the model reads them (document prompt and special tokens, untruncated), or
    None for a model without a tokenizer (the hashing encoder, an HTTP endpoint)."""
    tokenizer = _tokenizer(encoder)
    if tokenizer is None:
        return None
    prompt = dict(encoder.meta.prompts or {}).get("document", "")
    ids = tokenizer([prompt + p for p in pages], add_special_tokens=True, truncation=False, verbose=False,
                    return_attention_mask=False, return_token_type_ids=False)["input_ids"]
    return int(sum(len(row) for row in ids))


def _tokenizer(encoder: object) -> object | None:
    for holder in (encoder, getattr(encoder, "model", None)):
        tok = getattr(holder, "tokenizer", None)
        if callable(tok):
            return tok
    return None


def _rate(encode: Callable[[list[str]], object], texts: Sequence[str], batch_size: int) -> float:
    """Texts per second of encoding ``texts`` in batches, after one untimed batch (warm-up)."""
    encode(list(texts[:batch_size]))
    t0 = time.perf_counter()
    for a in range(0, len(texts), batch_size):
        encode(list(texts[a:a + batch_size]))
    seconds = time.perf_counter() - t0
    return round(len(texts) / seconds, 2) if seconds > 0 else float("inf")
