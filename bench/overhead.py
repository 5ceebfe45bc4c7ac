"""Bench 2: harness overhead of encoding through embedbench (cold cache) vs raw SentenceTransformer.encode.

Both arms use the same loaded model object (the `minilm-l6` preset's SentenceTransformer), the same
texts and batch size 32, interleaved A, B, A, B. The embedbench arm is
``CachedEncoding(encoder, EmbeddingCache(fresh dir)).documents(texts)``: hashing, chunking (2048 texts
per encode call), validation and writing the chunks to disk are its overhead.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import interleave, log, summarize

BATCH_SIZE = 32


def texts_from(fmt: str, path: str, data_dir: Path, limit: int | None) -> list[str]:
    """Document texts of a dataset in the order embedbench encodes them (sorted ids, reversed)."""
    from embedbench.data.tasks import LoadContext, load_task_data
    from embedbench.data.spec import TaskSpec

    with tempfile.TemporaryDirectory() as tmp:
        (subset,) = load_task_data(TaskSpec(name="bench", loader=fmt, path=path), LoadContext(data_dir, Path(tmp), None))
    corpus = subset.data.corpus
    texts = [corpus[d].full_text for d in sorted(corpus, reverse=True)]
    return texts[:limit] if limit else texts


def run(data_dir: Path, repeats: int, dataset: tuple[str, str] = ("trec", "vaswani"),
        limit: int | None = 4096) -> dict[str, Any]:
    from embedbench.engine.cache import EmbeddingCache
    from embedbench.encoders.loading import load_model
    from embedbench.encoders.settings import EncodeSettings
    from embedbench.engine.encoding import CachedEncoding

    texts = texts_from(*dataset, data_dir, limit)
    encoder = load_model("minilm-l6", EncodeSettings(device="cpu", batch_size=BATCH_SIZE))
    model = encoder.model
    log(f"harness overhead: {len(texts)} texts from {dataset[0]}:{dataset[1]}")
    model.encode(texts[:64], batch_size=BATCH_SIZE, show_progress_bar=False)  # warm-up, untimed

    with tempfile.TemporaryDirectory(prefix="bench-overhead-") as tmp:
        def embedbench_arm() -> np.ndarray:
            cache = EmbeddingCache(Path(tempfile.mkdtemp(dir=tmp)))
            return CachedEncoding(encoder, cache).documents(texts, "bench")

        def raw_arm() -> np.ndarray:
            return np.asarray(model.encode(texts, batch_size=BATCH_SIZE, convert_to_numpy=True,
                                           normalize_embeddings=False, show_progress_bar=False))

        runs = interleave({"embedbench": embedbench_arm, "sentence_transformers": raw_arm}, repeats)
    ours, raw = runs["embedbench"][-1]["value"], runs["sentence_transformers"][-1]["value"]
    for arm in runs.values():
        for r in arm:
            r["value"] = None  # vectors are not reported
    times = summarize(runs)
    ratio = times["embedbench"]["median_s"] / times["sentence_transformers"]["median_s"]
    # The cache encodes 2048-text chunks, so padding (length-sorted per call) may differ by float noise.
    return {
        "dataset": f"{dataset[0]}:{dataset[1]}", "n_texts": len(texts), "batch_size": BATCH_SIZE,
        "times": times, "ratio": ratio, "overhead_pct": 100 * (ratio - 1),
        "max_abs_diff": float(np.max(np.abs(ours - raw))) if ours.shape == raw.shape else None,
    }
