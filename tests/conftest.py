"""Shared fixtures: a fake deterministic encoder, a tiny BEIR folder, isolated cache and data dirs."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

import numpy as np
import pytest

from embedbench.encoders.protocol import EncoderMeta

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("EMBEDBENCH_DATA_DIR") or REPO.parent / "shared" / "data")
# One file per dataset of the shared data folder: the folder counts as present only when all are there.
SHARED_DATASETS = ("xquad-r/en.json", "vaswani/qrels", "contextual-codebase/evaluation_set.jsonl")
REQUIRE_DATA = "EMBEDBENCH_REQUIRE_DATA"


def data_absent(reason: str) -> NoReturn:
    """Skip a test whose real data is missing -- or fail it when EMBEDBENCH_REQUIRE_DATA=1 (set by .ci/run),
    so CI cannot go green with the real-data tests skipped. Every real-data skip goes through here."""
    if os.environ.get(REQUIRE_DATA, "") not in ("", "0"):
        pytest.fail(f"{reason} [{REQUIRE_DATA}=1: missing data is a failure]", pytrace=False)
    pytest.skip(reason)


def require_data(relative: str = "") -> Path:
    """The shared data path `relative` (e.g. "xquad-r/en.json"); skip (or fail, see data_absent) when absent."""
    path = SHARED_DATA / relative
    if not path.exists():
        data_absent(f"real data absent: {path} (set EMBEDBENCH_DATA_DIR to the shared data folder)")
    return path


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


def pytrec_oracle(encoder, data, measures: Sequence[str], queries: dict[str, str] | None = None) -> dict[str, float]:
    """Mean pytrec_eval scores (measures with a cutoff: "ndcg_cut_10", "recall_3") of exact cosine search with
    `encoder` on `data`, computed here without the runner's search or metrics: what a runner's number must equal.
    `queries` overrides the query texts (e.g. with an instruction prepended)."""
    import pytrec_eval

    qids, dids = list(data.qrels), list(data.corpus)
    texts = queries or {q: data.queries[q].text for q in qids}
    q = encoder.encode_queries([texts[i] for i in qids]).astype(np.float64)
    d = encoder.encode_documents([data.corpus[i].full_text for i in dids]).astype(np.float64)
    sims = (q / np.linalg.norm(q, axis=1, keepdims=True)) @ (d / np.linalg.norm(d, axis=1, keepdims=True)).T
    run = {qid: dict(zip(dids, map(float, row))) for qid, row in zip(qids, sims)}
    wanted = {"{}.{}".format(*m.rsplit("_", 1)) for m in measures}  # "ndcg_cut_10" is asked as "ndcg_cut.10"
    per_query = pytrec_eval.RelevanceEvaluator(data.qrels, wanted).evaluate(run)
    return {m: float(np.mean([per_query[qid][m] for qid in qids])) for m in measures}


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
    for relative in SHARED_DATASETS:
        require_data(relative)
    return SHARED_DATA
