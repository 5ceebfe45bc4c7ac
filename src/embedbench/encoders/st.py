"""The sentence-transformers plugin: any SentenceTransformer folder or hub id behind the encoder contract.

A folder is encoded the way its own library encodes it for retrieval: queries through
`SentenceTransformer.encode_query`, documents through `encode_document`, each with the prompt that
method would pick from the folder's `config_sentence_transformers.json` (see `library_prompt`).
Only single-vector pipelines are accepted: a MultiVectorEncoder / SparseEncoder save, or a module
chain that ends in token embeddings, is refused rather than scored as if it were dense.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np

from embedbench.encoders.lazy import LazyModel, check_as_read, quiet_transformers
from embedbench.encoders.load_errors import load_failure
from embedbench.encoders.protocol import EncoderMeta
from embedbench.encoders.runtime import TORCH_DTYPES, check_device, torch_compute
from embedbench.encoders.settings import EncodeSettings
from embedbench.encoders.st_files import StDescription, read_st_folder
from embedbench.encoders.tokens import truncated_flags
from embedbench.errors import ModelError

ROLES = ("query", "document")
# The prompt names encode_query / encode_document look for, in order (sentence-transformers 5.x and 6.x).
_PROMPT_NAMES = {"query": ("query",), "document": ("document", "passage", "corpus")}


def library_prompt(model: object, role: str) -> str:
    """The prompt `encode_query` (role query) / `encode_document` (role document) prepend when given none.

    The first of the role's prompt names that the model's `prompts` holds, else `default_prompt_name`.
    sentence-transformers 6 always holds "query" and "document" (empty unless configured), so there a
    `default_prompt_name` reaches only plain `encode`, never these two methods.
    """
    prompts = getattr(model, "prompts", None) or {}
    name = next((n for n in _PROMPT_NAMES[role] if n in prompts), getattr(model, "default_prompt_name", None))
    return (prompts.get(name) or "") if name else ""


def check_single_vector_folder(path: Path) -> None:
    """Refuse a folder saved by another sentence-transformers model type (SentenceTransformer would
    silently rebuild it as Transformer + mean pooling and score it as dense)."""
    config = path / "config_sentence_transformers.json"
    try:
        model_type = json.loads(config.read_text()).get("model_type", "SentenceTransformer")
    except (OSError, json.JSONDecodeError, AttributeError):
        return  # no such config: a plain SentenceTransformer (or transformers) folder
    if model_type != "SentenceTransformer":
        raise ModelError(f"{path} is a {model_type} model (config_sentence_transformers.json); only single-vector "
                         f"SentenceTransformer pipelines can be evaluated, multi-vector and sparse models are not "
                         f"supported yet")


def check_single_vector_output(model: object, where: str) -> None:
    """Refuse a pipeline whose output has no sentence embedding (e.g. it ends in per-token vectors)."""
    out = model.encode_query(["probe"], output_value=None, show_progress_bar=False)[0]  # type: ignore[attr-defined]
    vector = out.get("sentence_embedding")
    if vector is None or getattr(vector, "ndim", 0) != 1:
        modules = [type(m).__name__ for m in model]  # type: ignore[attr-defined]
        raise ModelError(f"{where}: the pipeline {' -> '.join(modules)} gives no single sentence vector "
                         f"(outputs: {', '.join(sorted(out))}); multi-vector models are not supported yet")


class SentenceTransformerEncoder(LazyModel):
    """Encodes with `SentenceTransformer.encode_query` / `encode_document` (which sort by length to keep
    padding small), with the prompts those methods would use; `prompts` override the folder's, per role.

    Returns the model's own output before any normalization: the harness normalizes for cosine.

    The model loads on first use (`model`, encode_*): the meta is read from the folder's files
    (`st_files.read_st_folder`), and counting truncated texts loads only the tokenizer. A folder whose
    layout that reader does not know (or a hub id, or `lazy=False`) loads at once, as it always did.
    It computes in its weights' dtype: the checkpoint's under --dtype auto, else the one asked for (the
    weights loaded in it, as sentence-transformers' `model_kwargs={"dtype": ...}` does); no autocast.
    """

    def __init__(
        self,
        model_ref: str,
        *,
        name: str,
        revision: str,
        fingerprint: str,
        settings: EncodeSettings,
        prompts: dict[str, str] | None = None,
        hub_revision: str | None = None,
        source: str = "",
        license: str | None = None,
        lazy: bool = True,
    ) -> None:
        self._settings = settings
        self._ref, self._prompt_override, self._hub_revision = model_ref, prompts, hub_revision
        self._model: object | None = None
        self._tokenizer: object | None = None
        self._read: StDescription | None = None
        folder = Path(model_ref) if Path(model_ref).is_dir() else None
        if folder is not None:
            check_single_vector_folder(folder)
        found = read_st_folder(folder, settings, prompts, library_prompt) if lazy and folder is not None else None
        self._transformer_dir = found.transformer_dir if found is not None else None
        described = found.description if found is not None else describe_loaded(self.model)
        self._read = described
        self._prompts = dict(described.prompts)
        self.meta = EncoderMeta(
            name=name,
            revision=revision,
            fingerprint=fingerprint,
            dim=described.dim,
            max_tokens=described.max_tokens,
            pooling=described.pooling,
            prompts={role: p for role, p in self._prompts.items() if p},
            source=source,
            license=license,
            device_type=described.device_type,
            compute_dtype=described.compute_dtype,
        )

    def _load_model(self) -> object:
        """The SentenceTransformer, checked against the meta read from its files."""
        model = _load(self._ref, self._settings, self._prompt_override, self._hub_revision)
        check_single_vector_output(model, self._ref)
        if self._settings.max_length is not None:
            model.max_seq_length = self._settings.max_length
        if self._read is not None:
            check_as_read(self._ref, asdict(self._read), asdict(describe_loaded(model)))
        return model

    def _encode(self, texts: Sequence[str], role: str) -> np.ndarray:
        # The prompt is passed explicitly, so the vectors are exactly what meta.prompts (the cache key) says.
        method = self.model.encode_query if role == "query" else self.model.encode_document
        return float_vectors(method, texts, self._settings.batch_size, prompt=self._prompts[role])

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, "query")

    def encode_documents(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, "document")

    def count_truncated(self, texts: Sequence[str], role: str) -> int:
        """How many texts (with the role's prompt) are longer than the model's max length in tokens."""
        return int(self.truncated_flags(texts, role).sum())

    def truncated_flags(self, texts: Sequence[str], role: str) -> np.ndarray:
        """Per text (with the role's prompt): whether it is longer than the model's max length in tokens."""
        if not texts or self.meta.max_tokens is None:  # nothing to tokenize: the tokenizer need not load
            return np.zeros(len(texts), dtype=bool)
        return truncated_flags(self.tokenizer, texts, self.meta.max_tokens, self._prompts.get(role, ""))

    @property
    def tokenizer(self):
        """The model's tokenizer; before the model loads, the same tokenizer loaded on its own (no weights)."""
        if self._model is not None or self._transformer_dir is None:
            return self.model.tokenizer
        if self._tokenizer is None:
            self._tokenizer = _load_tokenizer(self._transformer_dir, self._settings)
        return self._tokenizer


def describe_loaded(model: object) -> StDescription:
    """What a loaded SentenceTransformer says about itself (the values the meta holds)."""
    device_type, compute_dtype = torch_compute(model.device, model, autocast=False)  # type: ignore[attr-defined]
    return StDescription(
        dim=model.get_embedding_dimension(),  # type: ignore[attr-defined]
        max_tokens=token_limit(model),
        pooling=_pooling_mode(model),
        prompts={role: library_prompt(model, role) for role in ROLES},
        device_type=device_type,
        compute_dtype=compute_dtype,
    )


def token_limit(model: object) -> int | None:
    """The model's max length in tokens: ``max_seq_length``; for a module that tokenizes with a bare
    ``tokenizers.Tokenizer`` (sentence-transformers' StaticEmbedding: ``max_seq_length`` is infinite) the
    length that tokenizer truncates at; None when nothing truncates."""
    limit = model.max_seq_length  # type: ignore[attr-defined]
    if isinstance(limit, int) and limit > 0:
        return limit
    truncation = getattr(model.tokenizer, "truncation", None)  # type: ignore[attr-defined]
    return int(truncation["max_length"]) if isinstance(truncation, dict) else None


def float_vectors(encode: object, texts: Sequence[str], batch_size: int, **options: object) -> np.ndarray:
    """float32 vectors from a SentenceTransformer encode method, as the model outputs them (not normalized)."""
    vectors = encode(  # type: ignore[operator]
        list(texts),
        batch_size=batch_size,
        convert_to_numpy=True,
        normalize_embeddings=False,
        show_progress_bar=False,
        **options,
    )
    return np.asarray(vectors, dtype=np.float32)


def _load(model_ref: str, settings: EncodeSettings, prompts: dict[str, str] | None, hub_revision: str | None):
    check_device(settings.device, settings.dtype)
    quiet_transformers()
    import torch
    from sentence_transformers import SentenceTransformer

    weights = {"dtype": getattr(torch, TORCH_DTYPES[settings.dtype])} if settings.dtype != "auto" else None
    try:
        return SentenceTransformer(model_ref, device=settings.device, revision=hub_revision, model_kwargs=weights,
                                   trust_remote_code=settings.trust_remote_code, prompts=dict(prompts or {}) or None)
    except Exception as exc:  # noqa: BLE001 - any loading failure becomes one line
        raise load_failure("sentence-transformers", model_ref, exc) from exc


def _load_tokenizer(folder: Path, settings: EncodeSettings):
    """The folder's tokenizer alone, as the model's Transformer module loads it (`read_st_folder` accepted
    the folder only when nothing there changes how it tokenizes)."""
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(str(folder), trust_remote_code=settings.trust_remote_code)
    except Exception as exc:  # noqa: BLE001 - any loading failure becomes one line
        raise load_failure("sentence-transformers", str(folder), exc) from exc


def _pooling_mode(model: object) -> str | None:
    for module in model:  # type: ignore[attr-defined]
        mode = getattr(module, "pooling_mode", None)
        if isinstance(mode, str):
            return mode
    return None
