"""The multi-vector (late-interaction) plugin: any sentence-transformers `MultiVectorEncoder` behind the contract.

sentence-transformers 6 loads native MultiVectorEncoder saves, PyLate checkpoints (config_sentence_transformers.json
`model_type` "ColBERT") and Stanford ColBERT checkpoints (config.json architecture "HF_ColBERT") into one
`MultiVectorEncoder`, whose `encode_query` / `encode_document` return one (tokens, d) matrix per text and whose
`similarity` is MaxSim. This plugin encodes through exactly those two methods, so the model's own query /
document prompts (ColBERT's [Q] / [D] markers), query expansion, document length, skiplist mask and token
normalization are applied as the library applies them; the harness then scores MaxSim itself
(`scoring.maxsim`), on the same matrices.

A folder is recognized by its saved type (`multi_vector_layout`), never by trying: `MultiVectorEncoder` would
happily convert a dense SentenceTransformer folder by adding a random projection, and a dense loader would
mean-pool a ColBERT one. The model loads when the encoder is built: its meta (token dimension, document
length, prompts, similarity, dtype) is read from the loaded pipeline.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from embedbench.encoders.lazy import LazyModel, quiet_transformers
from embedbench.encoders.load_errors import load_failure
from embedbench.encoders.protocol import EncoderMeta
from embedbench.encoders.runtime import TORCH_DTYPES, check_device, torch_compute
from embedbench.encoders.settings import EncodeSettings
from embedbench.encoders.st import ROLES, library_prompt
from embedbench.errors import EmbedbenchError, ModelError

# config_sentence_transformers.json model types MultiVectorEncoder loads as itself (PyLate v3 saves "ColBERT").
MULTI_VECTOR_TYPES = ("MultiVectorEncoder", "ColBERT")
STANFORD_ARCHITECTURE = "HF_ColBERT"
FLOAT_NOTE = ("fp32 scores the token vectors MultiVectorEncoder.encode_query / encode_document return (after the "
              "model's prompts or [Q]/[D] markers, query expansion, skiplist mask and token normalization), "
              "by MaxSim: the sum over query tokens of the best dot product with a document token")


def multi_vector_layout(path: Path) -> str | None:
    """The multi-vector save format of a folder: its config_sentence_transformers.json `model_type`
    ("MultiVectorEncoder", or PyLate's "ColBERT"), or "HF_ColBERT" for a Stanford ColBERT checkpoint
    (config.json architectures); None for anything else (a dense or sparse model)."""
    st_config = _json(Path(path) / "config_sentence_transformers.json")
    if isinstance(st_config, dict) and st_config.get("model_type") in MULTI_VECTOR_TYPES:
        return st_config["model_type"]
    config = _json(Path(path) / "config.json")
    if isinstance(config, dict) and STANFORD_ARCHITECTURE in (config.get("architectures") or []):
        return STANFORD_ARCHITECTURE
    return None


def _remote_code(path: Path) -> bool:
    config = _json(path / "config.json")
    return isinstance(config, dict) and bool(config.get("auto_map"))


def _json(path: Path) -> object:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


class MultiVectorStEncoder(LazyModel):
    """Token matrices from `MultiVectorEncoder.encode_query` / `encode_document`, float32, one per text.

    `prompts` override the model's own, per role (like `SentenceTransformer(prompts=...)`); the prompt each
    method uses is passed explicitly, so the vectors are exactly what `meta.prompts` (the cache key) says.
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
        mrl_dims: tuple[int, ...] = (),
        source: str = "",
        license: str | None = None,
    ) -> None:
        self._settings, self._ref, self._prompt_override, self._hub_revision = settings, model_ref, prompts, hub_revision
        self._model: object | None = None
        model = self.model  # the meta is what the loaded pipeline does, so it loads now
        self._prompts = {role: library_prompt(model, role) for role in ROLES}
        device_type, compute_dtype = torch_compute(model.device, model, autocast=False)  # type: ignore[attr-defined]
        self.similarity = model.similarity_fn_name  # type: ignore[attr-defined]
        self.meta = EncoderMeta(
            name=name,
            revision=revision,
            fingerprint=fingerprint,
            dim=self._token_dim,
            max_tokens=_document_length(model),
            pooling=self.similarity,  # how token vectors become a score: maxsim, or meanmaxsim
            mrl_dims=tuple(mrl_dims),
            prompts={role: p for role, p in self._prompts.items() if p},
            float_note=FLOAT_NOTE,
            source=source,
            license=license,
            device_type=device_type,
            compute_dtype=compute_dtype,
            kind="multi-vector",
        )

    def _load_model(self) -> object:
        """The MultiVectorEncoder, checked to be a multi-vector pipeline, with the run's max length applied."""
        quiet_transformers()
        dtype = getattr(self._settings, "dtype", "auto")
        check_device(self._settings.device, dtype)
        from sentence_transformers import MultiVectorEncoder

        kwargs = {"model_kwargs": {"dtype": TORCH_DTYPES[dtype]}} if dtype in TORCH_DTYPES else {}
        if not self._settings.trust_remote_code and Path(self._ref).is_dir() and _remote_code(Path(self._ref)):
            raise ModelError(f"{self._ref}: the model's code ships with it (config.json auto_map); loading it "
                             f"runs that code: pass --trust-remote-code (trust_remote_code=True) to allow it")
        try:
            model = MultiVectorEncoder(self._ref, device=self._settings.device, revision=self._hub_revision,
                                       trust_remote_code=self._settings.trust_remote_code,
                                       prompts=dict(self._prompt_override or {}) or None, **kwargs)
        except Exception as exc:  # noqa: BLE001 - any loading failure becomes one line
            raise load_failure("multi-vector", self._ref, exc) from exc
        self._token_dim = _check_pipeline(model, self._ref)
        if self._settings.max_length is not None:
            _cap_lengths(model, self._settings.max_length)
        return model

    def _encode(self, texts: Sequence[str], role: str) -> list[np.ndarray]:
        method = self.model.encode_query if role == "query" else self.model.encode_document  # type: ignore
        out = method(list(texts), prompt=self._prompts[role], batch_size=self._settings.batch_size,
                     convert_to_numpy=True, show_progress_bar=False)
        return [np.asarray(m, dtype=np.float32) for m in out]

    def encode_queries_multi(self, texts: Sequence[str]) -> list[np.ndarray]:
        return self._encode(texts, "query")

    def encode_documents_multi(self, texts: Sequence[str]) -> list[np.ndarray]:
        return self._encode(texts, "document")

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        raise _not_dense(self.meta.name)

    def encode_documents(self, texts: Sequence[str]) -> np.ndarray:
        raise _not_dense(self.meta.name)


def _not_dense(name: str) -> ModelError:
    return ModelError(f"model {name!r} is a multi-vector model (one vector per token, scored by MaxSim); it has no "
                      f"single vector per text for this step")


def _check_pipeline(model: object, where: str) -> int:
    """The token dimension, once the pipeline is seen to give token matrices and nothing pools them into one
    vector (a Pooling module, or a Dense on the sentence embedding, would be ignored by encode_*)."""
    from sentence_transformers.sentence_transformer.modules import Pooling

    modules = list(model)  # type: ignore[call-overload]
    pooled = [type(m).__name__ for m in modules
              if isinstance(m, Pooling) or getattr(m, "module_input_name", None) == "sentence_embedding"]
    if pooled:
        raise ModelError(f"{where}: not a multi-vector pipeline ({' -> '.join(type(m).__name__ for m in modules)}): "
                         f"{pooled[0]} makes one vector per text")
    probe = model.encode_document(["probe text"], convert_to_numpy=True, show_progress_bar=False)[0]  # type: ignore
    if getattr(probe, "ndim", 0) != 2 or probe.shape[1] < 1:
        raise ModelError(f"{where}: the pipeline gives no token matrix (got shape {getattr(probe, 'shape', None)})")
    return int(probe.shape[1])


def _document_length(model: object) -> int | None:
    """The longest document the model reads, in tokens: its Transformer's document_length, else max_seq_length."""
    transformer = model[0]  # type: ignore[index]
    return getattr(transformer, "document_length", None) or getattr(model, "max_seq_length", None)


def _cap_lengths(model: object, limit: int) -> None:
    """--max-length: no text past `limit` tokens (query expansion keeps its own fixed query width)."""
    transformer = model[0]  # type: ignore[index]
    model.max_seq_length = limit  # type: ignore[attr-defined]
    if getattr(transformer, "document_length", None) is None or transformer.document_length > limit:
        transformer.document_length = limit
    if (getattr(transformer, "query_length", None) or 0) > limit:
        transformer.query_length = limit


def load_multi_vector(path: Path, *, name: str, revision: str, fingerprint: str, settings: EncodeSettings,
                      **options: object) -> MultiVectorStEncoder:
    """A multi-vector folder (`multi_vector_layout` says which save format) behind the encoder contract."""
    if multi_vector_layout(path) is None:
        raise EmbedbenchError(f"{path} is not a multi-vector model folder (no MultiVectorEncoder, PyLate or "
                              f"Stanford ColBERT configuration)")
    return MultiVectorStEncoder(str(path), name=name, revision=revision, fingerprint=fingerprint, settings=settings,
                                **options)  # type: ignore[arg-type]


def hf_multi_vector(model_ref: str, options: dict, settings: EncodeSettings, name: str) -> MultiVectorStEncoder | None:
    """The multi-vector model an `hf:` reference names -- a folder, or a hub repo pinned to a commit -- or None
    when it is not one (the transformers plugin then loads it). Of the reference's options only the revision
    and the query / document prefixes (prompts) apply to it."""
    from embedbench.encoders.fingerprint import folder_fingerprint
    from embedbench.encoders.hub import pin_repo
    from embedbench.encoders.weights import fetch_weights

    folder = Path(model_ref) if Path(model_ref).is_dir() else None
    if folder is not None:
        if multi_vector_layout(folder) is None:
            return None
        revision = fingerprint = folder_fingerprint(folder)
        source = f"local:{folder}"
    else:
        if model_ref.startswith(("/", ".", "~")):
            return None  # no such folder: the transformers plugin says so
        pinned = pin_repo(model_ref, options.get("hub_revision"))
        if not _hub_multi_vector(pinned):
            return None
        folder = fetch_weights(name, model_ref, pinned.commit)
        revision, fingerprint = pinned.commit, f"{model_ref}@{pinned.commit}"
        source = f"hf:{fingerprint}"
    extra = sorted(set(options) - {"hub_revision", "prompts"})
    if extra:
        raise EmbedbenchError(f"{name}: option {', '.join(extra)} does not apply to a multi-vector model")
    return MultiVectorStEncoder(str(folder), name=name, revision=revision, fingerprint=fingerprint, settings=settings,
                                prompts=options.get("prompts"), source=source)


def _hub_multi_vector(pinned: object) -> bool:
    """Whether a pinned hub repo is a multi-vector save: read from its cached snapshot, else from its two small
    config files, fetched alone at the commit."""
    snapshot = getattr(pinned, "snapshot", None)
    if snapshot is not None:
        return multi_vector_layout(snapshot) is not None
    from huggingface_hub import hf_hub_download

    from embedbench.encoders.hub import hub_errors

    found = None
    for filename in ("config_sentence_transformers.json", "config.json"):
        try:
            found = Path(hf_hub_download(pinned.repo_id, filename, revision=pinned.commit)).parent
        except hub_errors():  # absent from the repo (or the hub gone): the other file, or not multi-vector
            continue
    return found is not None and multi_vector_layout(found) is not None

