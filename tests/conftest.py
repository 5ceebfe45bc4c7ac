"""Shared fixtures: a fake deterministic encoder, a tiny BEIR folder, isolated cache and data dirs."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from embedbench.encoders.protocol import EncoderMeta

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("EMBEDBENCH_DATA_DIR") or REPO.parent / "shared" / "data")


class FakeEncoder:
    """Deterministic bag-of-words vectors: texts sharing words are close. Counts every text it encodes."""

    def __init__(self, dim: int = 32, name: str = "fake") -> None:
        self.meta = EncoderMeta(name=name, revision="r1", fingerprint=f"fake-{dim}", dim=dim, pooling="mean")
        self.calls: list[str] = []

    def _vec(self, text: str) -> np.ndarray:
        v = np.zeros(self.meta.dim, dtype=np.float32)
        for word in text.lower().split():
            seed = int.from_bytes(hashlib.sha256(word.encode()).digest()[:4], "little")
            v += np.random.default_rng(seed).standard_normal(self.meta.dim).astype(np.float32)
        return v

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        self.calls.extend(texts)
        return np.stack([self._vec(t) for t in texts])

    def encode_documents(self, texts: Sequence[str]) -> np.ndarray:
        self.calls.extend(texts)
        return np.stack([self._vec(t) for t in texts])


def write_beir(root: Path, n_docs: int = 40, n_queries: int = 12) -> Path:
    """A small BEIR folder where query i is about doc i (shared rare words)."""
    root.mkdir(parents=True, exist_ok=True)
    words = [f"w{i}" for i in range(1000)]
    with (root / "corpus.jsonl").open("w") as fh:
        for i in range(n_docs):
            text = " ".join(words[(12 * i + j) % 1000] for j in range(12))
            fh.write(json.dumps({"_id": f"doc{i}", "title": f"title {i}", "text": text}) + "\n")
    with (root / "queries.jsonl").open("w") as fh:
        for i in range(n_queries):
            fh.write(json.dumps({"_id": f"q{i}", "text": " ".join(words[(12 * i + j) % 1000] for j in range(3))}) + "\n")
    (root / "qrels").mkdir(exist_ok=True)
    with (root / "qrels" / "test.tsv").open("w") as fh:
        fh.write("query-id\tcorpus-id\tscore\n")
        for i in range(n_queries):
            fh.write(f"q{i}\tdoc{i}\t1\n")
    return root


@pytest.fixture
def fake_encoder() -> FakeEncoder:
    return FakeEncoder()


@pytest.fixture
def beir_dir(tmp_path: Path) -> Path:
    return write_beir(tmp_path / "tiny-beir")


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("EMBEDBENCH_CACHE_DIR", str(cache))
    return cache


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data folder {SHARED_DATA} is absent (set EMBEDBENCH_DATA_DIR)")
    return SHARED_DATA
