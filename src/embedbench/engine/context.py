"""The run-wide context: the loaded model and everything derived from it once per `evaluate` call.

`open_run` loads the model (or takes the caller's encoder object), settles the precisions it can
be measured at, the dims, the context mode and the encoding choices that go into every result's
variant, and wraps the generator of RAG tasks. Everything per task happens in the other steps.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from embedbench.encoders.loading import load_model
from embedbench.encoders.presets import PRESETS
from embedbench.encoders.protocol import Encoder, SearchModel
from embedbench.encoders.settings import EncodeSettings
from embedbench.engine.cache import EmbeddingCache
from embedbench.engine.encoding import resolve_context
from embedbench.engine.executors import EngineOptions, LocalExecutor, open_executor
from embedbench.errors import EmbedbenchError
from embedbench.scoring.precision import PrecisionSpec, check_dims, check_served, parse_precisions

Variant = dict[str, str | int | float]


class MemoGenerator:
    """A generator that answers each (question, passages) once, however many precisions rank them alike."""

    def __init__(self, generator: object) -> None:
        self._generator = generator
        self._answers: dict[tuple[str, tuple[str, ...]], str] = {}
        self.ref = getattr(generator, "ref", type(generator).__name__)
        self.fingerprint = getattr(generator, "fingerprint", self.ref)

    def generate(self, question: str, passages: list[str]) -> str:
        key = (question, tuple(passages))
        if key not in self._answers:
            self._answers[key] = self._generator.generate(question, passages)
        return self._answers[key]


@dataclass(frozen=True)
class RunContext:
    """What every task of one `evaluate` call shares."""

    model_name: str  # the reference as given, or an encoder object's meta.name
    hub_id: str | None  # the preset's hub repo id, for the mteb export
    encoder: Encoder | SearchModel
    settings: EncodeSettings
    cache: EmbeddingCache
    specs: list[PrecisionSpec]
    dims: list[int | None]
    limit_queries: int | None
    context: str  # the resolved context mode of chunked tasks: none | late-chunking
    rescore_depth: int
    generator: MemoGenerator | None
    rag_k: int
    command: list[str]
    encoding_variant: Variant
    executor: LocalExecutor  # or the Ray executor (engine/ray_cluster.py): same steps, same numbers
    shard_size: int
    indexes: tuple[str, ...] = ("exact",)  # the --index specs as given (scoring/index.py parses them)
    rerank_with: str | None = None  # a multi-vector model re-ranking the top rerank_depth by MaxSim
    rerank_depth: int = 100
    reranker: object | None = None  # the loaded --rerank-with model (multi-vector), loaded before any data

    @property
    def dense(self) -> bool:
        """False for a lexical model that ranks the corpus itself (BM25)."""
        return isinstance(self.encoder, Encoder)

    @property
    def multi_vector(self) -> bool:
        """A late-interaction model (token vectors, MaxSim), scored by `engine/late.py`."""
        return getattr(getattr(self.encoder, "meta", None), "kind", "dense") == "multi-vector"


def load_encoder(model: str | Encoder | SearchModel, settings: EncodeSettings) -> Encoder | SearchModel:
    encoder = load_model(model, settings) if isinstance(model, str) else model
    if not isinstance(encoder, (Encoder, SearchModel)):
        raise EmbedbenchError("model must implement encode_queries/encode_documents (or index/search) and meta")
    return encoder


def precision_specs(precisions: str | Sequence[str] | None) -> list[PrecisionSpec] | None:
    """`--precision fp32,int8` or a list of specs; None: what the model serves (settled in `open_run`)."""
    if precisions is None:
        return None
    return parse_precisions(precisions if isinstance(precisions, str) else ",".join(precisions))


def served_specs(encoder: object, specs: list[PrecisionSpec] | None) -> list[PrecisionSpec]:
    """The requested precisions, by default what the model serves; none finer than what it serves."""
    served = encoder.meta.served_precision if isinstance(encoder, Encoder) else "fp32"
    specs = specs or parse_precisions(served)
    check_served(specs, served, encoder.meta.name)
    return specs


def encoding_variant(encoder: object, settings: EncodeSettings, loaded: bool) -> Variant:
    """Per-run encoding choices that change the vectors, for the result's variant.

    A --max-length cut changes what is encoded, and a compute dtype other than float32 (CUDA
    autocast) changes every vector, so neither may replace the full-length float32 result. The
    device itself is not recorded: it changes vectors only through the dtype (cpu and cuda in
    float32 differ by rounding, like batch sizes do). `tests/test_result_identity.py` walks every
    setting and checks it is either here (or elsewhere in the identity) or cannot change a number.
    """
    out: Variant = {}
    if settings.max_length is not None and isinstance(encoder, Encoder):
        if not loaded:  # an encoder object was built by the caller, with its own limit
            raise EmbedbenchError("max_length applies to models embedbench loads by name; "
                                  "an encoder object brings its own limit")
        out["max_length"] = settings.max_length
    if encoder.meta.compute_dtype != "float32":
        out["dtype"] = encoder.meta.compute_dtype
    return out


def hub_id(model_name: str) -> str | None:
    """The hub repo id of a preset (`minilm-l6` -> `sentence-transformers/all-MiniLM-L6-v2`); None for a
    local folder, an hf:/http:/onnx: reference or a plugin, whose recorded name is what identifies them."""
    return next((p.hub_id for p in PRESETS if p.name == model_name and p.hub_id), None)


def open_generator(generator: str | object | None, device: str) -> MemoGenerator | None:
    if generator is None:
        return None
    if isinstance(generator, str):
        from embedbench.rag.generators import load_generator  # torch / HTTP only when a run generates

        generator = load_generator(generator, device=device)
    return MemoGenerator(generator)


@dataclass(frozen=True)
class RunRequest:
    """The run-wide arguments of `evaluate`, checked but not yet bound to a loaded model."""

    model: str | Encoder | SearchModel
    settings: EncodeSettings
    cache: EmbeddingCache
    specs: list[PrecisionSpec] | None
    dims: list[int | None]
    limit_queries: int | None
    context: str
    rescore_depth: int
    generator: str | object | None
    rag_k: int
    command: list[str]
    engine: EngineOptions = EngineOptions()
    indexes: tuple[str, ...] = ("exact",)
    rerank_with: str | None = None
    rerank_depth: int = 100


def check_indexes(encoder: Encoder | SearchModel, indexes: Sequence[str], specs: list[PrecisionSpec],
                  dims: Sequence[int | None]) -> None:
    """A faiss index needs a dense model, and must apply to some precision and fit every dim; one line otherwise,
    before any task is encoded."""
    from embedbench.scoring.index import check_index_plans, parse_index_specs

    parsed = parse_index_specs(indexes)
    if all(spec.exact for spec in parsed):
        return
    if not isinstance(encoder, Encoder) or getattr(encoder.meta, "kind", "dense") != "dense":
        raise EmbedbenchError("--index applies to dense models; this model ranks with its own search")
    if encoder.meta.dim is not None:
        check_index_plans(parsed, specs, [d or encoder.meta.dim for d in dims])


def load_reranker(ref: str | None, settings: EncodeSettings) -> object | None:
    """The `--rerank-with` model, which must be multi-vector (one line otherwise)."""
    if ref is None:
        return None
    reranker = load_encoder(ref, settings)
    if getattr(reranker.meta, "kind", "dense") != "multi-vector":
        raise EmbedbenchError(f"--rerank-with {ref!r} must name a multi-vector (late-interaction) model")
    return reranker


def open_run(request: RunRequest) -> RunContext:
    """Load the model and settle what it is measured at; every check that needs the model runs here."""
    encoder = load_encoder(request.model, request.settings)
    specs = served_specs(encoder, request.specs)
    context = resolve_context(request.context, encoder) if isinstance(encoder, Encoder) else "none"
    check_dims([d for d in request.dims if d is not None], encoder.meta.dim)  # none past the model's size
    check_indexes(encoder, request.indexes, specs, request.dims)
    variant = encoding_variant(encoder, request.settings, loaded=isinstance(request.model, str))
    name = request.model if isinstance(request.model, str) else encoder.meta.name
    generator = open_generator(request.generator, request.settings.device)
    reranker = load_reranker(request.rerank_with, request.settings)
    # Opened last: nothing after it may fail and leave a Ray it started running.
    executor = open_executor(request.engine, request.model, request.settings, request.cache.root)
    return RunContext(
        model_name=name, hub_id=hub_id(name), encoder=encoder, settings=request.settings, cache=request.cache,
        specs=specs, dims=request.dims, limit_queries=request.limit_queries, context=context,
        rescore_depth=request.rescore_depth, generator=generator,
        rag_k=request.rag_k, command=request.command, encoding_variant=variant, executor=executor,
        shard_size=request.engine.shard_size, indexes=request.indexes, rerank_with=request.rerank_with,
        rerank_depth=request.rerank_depth, reranker=reranker)

