"""Typed, versioned results: one JSON per result identity plus a per-query file beside it.

A result's identity is (model, revision, suite, task, split, language, precision, dim, variant);
re-running an identity replaces its files. Writes are atomic (temp file + rename), so a reader
never sees half a result.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from embedbench.errors import EmbedbenchError

SCHEMA_VERSION = 1
PER_QUERY_SUFFIX = ".queries.json"


class Provenance(BaseModel):
    """Where a number came from: code, environment and the settings that produced it."""

    model_config = ConfigDict(extra="forbid")

    embedbench_version: str
    git_commit: str | None = Field(description="commit of the embedbench checkout, if it is one")
    packages: dict[str, str] = Field(description="versions of the libraries that shape the numbers")
    command: list[str] = Field(description="the command line (or API call) that produced the result")
    model_fingerprint: str
    model_source: str = ""
    dataset_hash: str = Field(description="content hash of corpus, queries and qrels")
    dataset_source: str = ""
    device: str
    dtype: str = "float32"
    batch_size: int
    max_length: int | None
    truncated_share: dict[str, float] = Field(description="share of texts longer than max length, per role")
    texts_encoded: int = Field(description="texts encoded by this run (0 when all came from the cache)")
    texts_cached: int = Field(description="texts read from the embedding cache")
    float_note: str = Field("", description="which float vector the fp32 result scores, and why")
    created_at: str


class Result(BaseModel):
    """One evaluated (model, task, precision, dim, variant)."""

    model_config = ConfigDict(extra="forbid")

    schema_version: int = SCHEMA_VERSION
    model: str = Field(description="preset name, plugin name, or the local path as given")
    revision: str = Field(description="pinned hub revision, or a content hash of local weights")
    suite: str
    task: str
    split: str
    language: str
    precision: str = Field(description="precision spec as requested, e.g. fp32, int8, binary:posthoc")
    quantization: Literal["none", "native", "posthoc"]
    dim: int
    variant: dict[str, str | int | float] = Field(default_factory=dict)
    main_score_name: str
    main_score: float
    metrics: dict[str, float]
    n_queries: int
    n_docs: int
    bytes_per_vector: int = Field(description="index storage per vector (both stages for two-stage specs)")
    pages_per_gb: int | None = Field(None, description="vectors per GiB of index storage")
    encode_seconds: float
    search_seconds: float
    docs_per_second: float | None
    provenance: Provenance

    def identity(self) -> dict[str, object]:
        return {
            "model": self.model,
            "revision": self.revision,
            "suite": self.suite,
            "task": self.task,
            "split": self.split,
            "language": self.language,
            "precision": self.precision,
            "dim": self.dim,
            "variant": dict(sorted(self.variant.items())),
        }

    def identity_hash(self) -> str:
        return hashlib.sha256(json.dumps(self.identity(), sort_keys=True).encode()).hexdigest()[:16]

    def variant_label(self, exclude: tuple[str, ...] = ()) -> str:
        return ",".join(f"{k}={v}" for k, v in sorted(self.variant.items()) if k not in exclude)

    def record(self) -> dict[str, object]:
        """The flat record `embedbench results --format json` prints."""
        out = self.model_dump(exclude={"provenance"})
        out["variant"] = self.variant_label()
        out["dataset_hash"] = self.provenance.dataset_hash
        return out


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")[:80] or "_"


def result_path(results_dir: Path, result: Result) -> Path:
    return results_dir / _slug(result.model) / _slug(result.task) / f"{result.identity_hash()}.json"


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_result(results_dir: Path, result: Result, per_query: dict[str, dict[str, float]]) -> Path:
    """Write the per-query file, then the summary (the summary's presence marks a complete result)."""
    path = result_path(results_dir, result)
    _atomic_write(path.with_name(path.stem + PER_QUERY_SUFFIX), json.dumps(per_query, sort_keys=True))
    _atomic_write(path, result.model_dump_json(indent=2))
    return path


def read_results(results_dir: Path) -> list[Result]:
    """Every result under `results_dir`, sorted by identity; a malformed file is an error naming it."""
    if not results_dir.is_dir():
        raise EmbedbenchError(f"results folder {results_dir} does not exist")
    results = []
    for path in sorted(results_dir.rglob("*.json")):
        if path.name.endswith(PER_QUERY_SUFFIX) or path.name.startswith(".tmp-"):
            continue
        try:
            results.append(Result.model_validate_json(path.read_text(encoding="utf-8")))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise EmbedbenchError(f"{path}: not an embedbench result ({where}: {first['msg']})") from None
    return sorted(results, key=lambda r: json.dumps(r.identity(), sort_keys=True))


def read_per_query(results_dir: Path, result: Result) -> dict[str, dict[str, float]]:
    path = result_path(results_dir, result)
    per_query = path.with_name(path.stem + PER_QUERY_SUFFIX)
    if not per_query.exists():
        raise EmbedbenchError(f"{per_query}: per-query scores are missing")
    return json.loads(per_query.read_text(encoding="utf-8"))
