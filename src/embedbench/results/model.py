"""The typed, versioned Result and its Provenance: what one evaluated identity records, and that identity.

A result's identity is (model, revision, suite, task, split, language, precision, dim, variant);
re-running an identity replaces its files (see `embedbench.results.store`). Besides the numbers, a
result records the facts of its suite that reports need (`suite_tasks`, `task_type`, `corpus_size`)
and the model's `hub_id`, so reports and exports read results only, never today's suite files or
model presets; and whether the task is in the model's training data (`zero_shot`, decided when the
result is built). Those fields are optional: results written before them still read (schema 1 and 2),
and such a result's `zero_shot` is None, unknown -- never taken for zero-shot.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

SCHEMA_VERSION = 2
READABLE_SCHEMA_VERSIONS = (1, 2)
PER_QUERY_SUFFIX = ".queries.json"
GZIP_SUFFIX = ".gz"

# Facts of the suite definition (the same on every result of a suite), left out of the flat record.
SUITE_FACTS = frozenset({"suite_tasks", "corpus_size"})


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
    dtype: str = "float32"  # the dtype the vectors were computed in (the encoder's compute dtype)
    dtype_setting: str = "auto"  # the --dtype asked for: auto (the model's own choice), fp32, bf16 or fp16
    batch_size: int
    max_length: int | None
    truncated_share: dict[str, float] = Field(description="share of texts longer than max length, per role")
    texts_encoded: int = Field(description="texts encoded by this run (0 when all came from the cache)")
    texts_cached: int = Field(description="texts read from the embedding cache")
    float_note: str = Field("", description="which float vector the fp32 result scores, and why")
    prompts: dict[str, str] = Field(default_factory=dict, description="query / document prompts the model was given")
    training_data_source: str = Field(
        "", description="where the model's training data list came from (mteb's model registry and its version, "
                        "or embedbench's preset list); empty: not known")
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
    main_score: float | None = Field(description="None: not measured (past a two-stage rescoring depth)")
    metrics: dict[str, float | None] = Field(description="None (JSON null): not computed, e.g. past a rescoring depth")
    n_queries: int
    n_docs: int
    bytes_per_vector: int = Field(description="index storage per vector (both stages for two-stage specs)")
    pages_per_gb: int | None = Field(None, description="vectors per GiB of index storage")
    encode_seconds: float
    search_seconds: float
    docs_per_second: float | None
    provenance: Provenance
    per_query_file: str | None = Field(None, description="the per-query file beside the summary (schema 2)")
    suite_tasks: list[str] | None = Field(
        None, description="names of every task of the suite this result was run from, in the suite's order "
                          "(None: run without a suite, or written before this field)")
    task_type: str | None = Field(None, description="the suite task's type (Retrieval, Query2Doc, ...)")
    corpus_size: int | None = Field(
        None, description="a sized (synthetic) task's corpus size as its suite defines it, i.e. without "
                          "--corpus-size; the size this result ran at is variant.corpus_size")
    hub_id: str | None = Field(None, description="the model's hub repository id, where it has one")
    zero_shot: bool | None = Field(
        None, description="False: the task's data is in the model's training data (mteb's notion, see "
                          "training_overlap); True: it is not; None: unknown (the model's training data is not "
                          "known, or the result was written before this field)")
    training_overlap: list[str] = Field(
        default_factory=list, description="the model's training datasets (mteb task names) the task's data is")
    costs: dict[str, float | int | str | None] | None = Field(
        None, description="what the search index cost on this machine (index, build seconds, index bytes, "
                          "queries per second, single-query latency p50 / p99 ...): measurements, never "
                          "compared by a gate (None: written before this field)")

    @field_validator("schema_version")
    @classmethod
    def _known_version(cls, v: int) -> int:
        if v not in READABLE_SCHEMA_VERSIONS:
            raise ValueError(f"schema version {v} is not one this embedbench reads {READABLE_SCHEMA_VERSIONS}")
        return v

    @field_validator("per_query_file")
    @classmethod
    def _plain_name(cls, v: str | None) -> str | None:
        # A name beside the summary, never a path that could point elsewhere.
        if v is not None and (not v.removesuffix(GZIP_SUFFIX).endswith(PER_QUERY_SUFFIX) or Path(v).name != v or v.startswith(".")):
            raise ValueError(f"per_query_file must be a plain *{PER_QUERY_SUFFIX} name, got {v!r}")
        return v

    @model_validator(mode="after")
    def _overlap_decides(self) -> Result:
        if bool(self.training_overlap) != (self.zero_shot is False):
            raise ValueError(f"zero_shot={self.zero_shot} disagrees with training_overlap={self.training_overlap}: "
                             "a task is not zero-shot exactly when it overlaps the training data")
        return self

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

    @classmethod
    def record_keys(cls) -> list[str]:
        """The keys of `record()`, in its order."""
        return [k for k in cls.model_fields if k != "provenance" and k not in SUITE_FACTS] + ["dataset_hash"]

    def record(self) -> dict[str, object]:
        """The flat record `embedbench results --format json` prints."""
        out = self.model_dump(exclude={"provenance", *SUITE_FACTS})
        out["variant"] = self.variant_label()
        out["training_overlap"] = ",".join(self.training_overlap)
        out["dataset_hash"] = self.provenance.dataset_hash
        return out
