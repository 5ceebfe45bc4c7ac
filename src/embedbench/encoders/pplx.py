"""The pplx-embed plugin: Perplexity's bidirectional Qwen3 embedders, loaded without remote code.

pplx-embed-v1 / pplx-embed-context-v1 are Qwen3 decoders with the causal mask off: the hub repos ship
`PPLXQwen3Model` as remote code (config `model_type` "bidirectional_pplx_qwen3"), a subclass of
transformers' `Qwen3Model` that sets `self_attn.is_causal = False` on every layer and masks padding
only. Since the architecture is plain Qwen3, this plugin builds `Qwen3Model` itself from the same
config (model_type read as qwen3), turns causality off, loads the safetensors weights strictly and
mean-pools over non-padding tokens -- no remote code, independent of the range of transformers
versions the remote code supports. `remote_code=True` instead runs the repo's own sentence-transformers
pipeline (trust_remote_code) up to, not including, its quantizer: a cross-check of the same vectors.

Vectors are x, the float32 mean-pooled final hidden state. The card's own output is quantized from x
by its `st_quantize.FlexibleQuantizer`; `pplx_int8` / `pplx_binary` reproduce it for the harness.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from embedbench.encoders.late_chunking import late_chunk_encode
from embedbench.encoders.lazy import LazyModel, check_as_read, quiet_transformers
from embedbench.encoders.pooling import pool
from embedbench.encoders.protocol import EncoderMeta
from embedbench.encoders.runtime import check_device, cuda_autocast, planned_compute, torch_compute, weights_dtype
from embedbench.encoders.settings import EncodeSettings
from embedbench.encoders.st import float_vectors
from embedbench.encoders.tokens import TokenizedEncoder, pad_token_id, padded_tensors
from embedbench.errors import ModelError

PPLX_MODEL_TYPE = "bidirectional_pplx_qwen3"

FLOAT_NOTE = (
    "fp32 scores x, the mean-pooled final hidden state (over non-padding tokens) before the card's "
    "st_quantize.FlexibleQuantizer, with no tanh. The card has no float output: SentenceTransformer.encode "
    "returns clamp(round(tanh(x)*127), -128, 127) by default (quantization='int8', int8 codes as floats), "
    "sign(x) as +/-1 for 'binary' and packbits(x >= 0) for 'ubinary'; tanh(x) is only the soft quantizer "
    "used in training. The native int8/binary rows are computed from x exactly that way; the fp32 row is x "
    "itself (scored by cosine, as the unnormalized int8 codes are), the unquantized reference for them."
)


def pplx_int8(x: np.ndarray) -> np.ndarray:
    """The card's int8 codes: clamp(round(tanh(x) * 127), -128, 127), no per-vector scale; compare by cosine."""
    codes = np.rint(np.tanh(np.asarray(x, dtype=np.float32)) * np.float32(127.0))
    return np.clip(codes, -128, 127).astype(np.int8)


def pplx_binary(x: np.ndarray) -> np.ndarray:
    """The card's binary codes as bits: True where x >= 0 (its +1), False where x < 0 (its -1)."""
    return np.asarray(x) >= 0


NATIVE_QUANTIZERS = {"int8": pplx_int8, "binary": pplx_binary}


def _read_config(path: Path) -> dict:
    config_file = path / "config.json"
    if not config_file.is_file():
        raise ModelError(f"{path}: no config.json")
    try:
        return json.loads(config_file.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelError(f"{config_file}: cannot read: {exc}") from exc


def is_pplx_folder(path: Path) -> bool:
    """True when the folder's config.json is a pplx-embed one (model_type or auto_map naming PPLXQwen3)."""
    try:
        config = json.loads((Path(path) / "config.json").read_text())
    except (OSError, json.JSONDecodeError, TypeError):
        return False
    if not isinstance(config, dict):
        return False
    if config.get("model_type") == PPLX_MODEL_TYPE:
        return True
    auto_map = config.get("auto_map")
    return isinstance(auto_map, dict) and any("PPLXQwen3" in str(v) for v in auto_map.values())


def _qwen3_config(raw: dict) -> object:
    """The folder's config as a plain transformers Qwen3Config (model_type qwen3, remote-code keys dropped)."""
    from transformers import Qwen3Config

    dropped = ("auto_map", "architectures", "model_type", "transformers_version", "_name_or_path")
    values = {k: v for k, v in raw.items() if k not in dropped}
    try:
        config = Qwen3Config(**values)
    except (TypeError, ValueError) as exc:
        raise ModelError(f"not a Qwen3 configuration: {exc}") from exc
    config._attn_implementation = "sdpa"
    config.is_causal = False  # transformers 5.x: decoder attention as an encoder (masks and kernels)
    layer_types = set(getattr(config, "layer_types", None) or ["full_attention"])
    if layer_types != {"full_attention"}:
        raise ModelError(f"pplx-embed uses full attention only; this config has layer types {sorted(layer_types)}")
    return config


def _weight_files(path: Path) -> list[Path]:
    single = path / "model.safetensors"
    if single.is_file():
        return [single]
    index = path / "model.safetensors.index.json"
    if index.is_file():
        try:
            weight_map = json.loads(index.read_text())["weight_map"]
        except (OSError, json.JSONDecodeError, KeyError) as exc:
            raise ModelError(f"{index}: cannot read the weight map: {exc}") from exc
        files = [path / name for name in sorted(set(weight_map.values()))]
        missing = [f.name for f in files if not f.is_file()]
        if missing:
            raise ModelError(f"{path}: missing weight shards {missing[:3]}")
        return files
    raise ModelError(f"{path}: no model.safetensors (or model.safetensors.index.json)")


def _no_init() -> contextlib.AbstractContextManager:
    """Skip random initialization of weights that are about to be overwritten."""
    try:
        from transformers.initialization import no_init_weights  # transformers 5.x
    except ImportError:
        try:
            from transformers.modeling_utils import no_init_weights  # transformers 4.x
        except ImportError:
            return contextlib.nullcontext()
    return no_init_weights()


def build_bidirectional_qwen3(path: Path, dtype: str = "float32") -> object:
    """Qwen3Model from the folder's config and safetensors, causal mask off on every layer (strict load), its
    weights in `dtype` (a torch dtype name)."""
    import torch
    from transformers import Qwen3Model

    path = Path(path)
    config = _qwen3_config(_read_config(path))
    files = _weight_files(path)
    with _no_init():
        model = Qwen3Model(config)
    model.to(getattr(torch, dtype))
    prefix = _check_weights(path, files, {k: tuple(v.shape) for k, v in model.state_dict().items()})
    _load_weights(model, files, prefix)
    for layer in model.layers:
        layer.self_attn.is_causal = False
    model.eval()
    return model


def _checkpoint_shapes(files: Sequence[Path]) -> dict[str, tuple[int, ...]]:
    """Every tensor's name and shape across the safetensors files, read from their headers only."""
    from safetensors import safe_open

    found: dict[str, tuple[int, ...]] = {}
    for f in files:
        try:
            with safe_open(str(f), framework="pt") as fh:
                for key in fh.keys():
                    found[key] = tuple(fh.get_slice(key).get_shape())
        except Exception as exc:  # safetensors raises its own error types
            raise ModelError(f"{f}: cannot read safetensors: {exc}") from exc
    return found


def _check_weights(path: Path, files: Sequence[Path], expected: dict[str, tuple[int, ...]]) -> str:
    """The checkpoint's key prefix ("" or "model."), once its keys and shapes are exactly the model's."""
    found = _checkpoint_shapes(files)
    # The hub checkpoints are saved from the bare model (no prefix); accept a uniform "model." prefix too.
    prefix = "model." if found and all(k.startswith("model.") for k in found) else ""
    found = {k[len(prefix) :]: v for k, v in found.items()}
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    if missing or unexpected:
        raise ModelError(
            f"{path}: weights do not match a Qwen3 encoder: missing {missing[:3]}{'...' if len(missing) > 3 else ''}, "
            f"unexpected {unexpected[:3]}{'...' if len(unexpected) > 3 else ''}"
        )
    wrong = [k for k in expected if expected[k] != found[k]]
    if wrong:
        k = wrong[0]
        raise ModelError(f"{path}: weight {k} has shape {found[k]}, the config expects {expected[k]}")
    return prefix


def _load_weights(model: object, files: Sequence[Path], prefix: str) -> None:
    """Copy every shard into the model (the key set was checked against all shards, so non-strict per shard)."""
    from safetensors.torch import load_file

    for f in files:
        state = load_file(str(f))
        if prefix:
            state = {k[len(prefix) :]: v for k, v in state.items()}
        model.load_state_dict(state, strict=False)  # type: ignore[attr-defined]


class PplxEncoder(LazyModel, TokenizedEncoder):
    """pplx-embed behind the encoder contract: float32 x per text, late chunking for nested documents.

    No instruction prefix (the models use none). Texts are sorted by token length, batched, and
    returned in input order; a text with no tokens is a zero vector. On cuda the forward pass runs
    under autocast (bf16 where supported, else fp16; `--dtype` picks it, fp32 turns it off) on both paths,
    as meta.compute_dtype records; off CUDA, `--dtype bf16 / fp16` casts the weights (`encoders.runtime`).
    Pooling is always in float32. Without remote code the weights load on the first text to encode
    (`model`), the tokenizer alone when texts are only counted; the meta comes from config.json.
    """

    _fields = ("input_ids",)
    _skip_empty = True

    def __init__(
        self,
        path: Path,
        *,
        name: str,
        revision: str,
        fingerprint: str,
        settings: EncodeSettings,
        mrl_dims: Sequence[int] = (),
        remote_code: bool = False,
        contextual: bool | None = None,
        source: str = "",
        license: str | None = None,
    ) -> None:
        path = Path(path)
        if not path.is_dir():
            raise ModelError(f"{path}: not a folder")
        if not is_pplx_folder(path):
            raise ModelError(f"{path}: not a pplx-embed folder (config model_type is not {PPLX_MODEL_TYPE})")
        raw = _read_config(path)
        self.path = path
        self.remote_code = remote_code
        self._raw = raw
        self._settings = settings
        self._prompts: dict[str, str] = {}  # pplx-embed uses no instruction prefix
        self._device = settings.device
        self.max_length = settings.max_length or _default_max_length(path, raw)
        self._st: object | None = None
        self._model: object | None = None
        self._tokenizer: object | None = None
        if remote_code:  # the cross-check path loads at once: its compute dtype is the remote code's
            self._st, self._model, self._tokenizer = self._load(path)
            device_type, compute_dtype = torch_compute(self._device, self._model, autocast=True,
                                                       dtype=settings.dtype)
        else:  # weights load on the first text to encode; a folder without them fails here already
            _weight_files(path)
            device_type, compute_dtype = planned_compute(self._device, settings.dtype)
        self.meta = EncoderMeta(
            dim=int(raw["hidden_size"]),
            max_tokens=self.max_length,
            pooling="mean",
            prompts={},
            native_quantizers=dict(NATIVE_QUANTIZERS),
            float_note=FLOAT_NOTE,
            device_type=device_type,
            compute_dtype=compute_dtype,
            name=name,
            revision=revision,
            fingerprint=fingerprint,
            mrl_dims=tuple(mrl_dims),
            source=source,
            license=license,
            contextual=is_context_model(raw) if contextual is None else contextual,
        )

    def _load_model(self) -> object:
        """The bidirectional Qwen3 model, checked against the meta's compute."""
        _, model, _ = self._load(self.path)
        loaded = torch_compute(self._device, model, autocast=True, dtype=self._settings.dtype)
        check_as_read(self.path, {"device_type": self.meta.device_type, "compute_dtype": self.meta.compute_dtype},
                      dict(zip(("device_type", "compute_dtype"), loaded)))
        return model

    @property
    def tokenizer(self):
        """The tokenizer, loaded on its own (no weights) when the model is not loaded yet."""
        if self._tokenizer is None:
            config = self._model.config if self._model is not None else _qwen3_config(self._raw)  # type: ignore
            self._tokenizer = _load_tokenizer(self.path, config)
        return self._tokenizer

    def _load(self, path: Path) -> tuple[object | None, object, object | None]:
        """(the repo's own sentence-transformers pipeline or None, the Qwen3 model, its tokenizer or None)."""
        check_device(self._device, self._settings.dtype)
        quiet_transformers()
        if self.remote_code:
            st = _load_remote(path, self._settings, self.max_length)
            return st, st[0].auto_model, st.tokenizer
        model = build_bidirectional_qwen3(path, weights_dtype(self._device, self._settings.dtype))
        return None, model.to(self._device), None

    # -- forward -------------------------------------------------------------------------------

    def _forward(self, input_ids: object, attention_mask: object) -> object:
        """Final hidden states (B, L, H) for right-padded ids; every token attends to every non-padding token."""
        import torch

        input_ids = input_ids.to(self._device)  # type: ignore[attr-defined]
        attention_mask = attention_mask.to(self._device)  # type: ignore[attr-defined]
        with torch.inference_mode(), cuda_autocast(self._device, self._settings.dtype):
            if self.remote_code:  # the repo's PPLXQwen3Model builds its own bidirectional mask
                return self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            from transformers.masking_utils import create_bidirectional_mask

            # Three switches, so no transformers version can fall back to causal attention: the padding-only
            # 4-D mask prepared here (Qwen3Model uses a prepared {layer type: mask} dict as is), is_causal=False
            # for the attention kernels (5.x passes this kwarg down to every layer, overriding the module
            # attribute; sdpa needs it when the mask is skipped for a batch without padding), and the module
            # attributes set at load for versions that do not know the kwarg.
            embeds = self.model.embed_tokens(input_ids)
            mask = create_bidirectional_mask(
                config=self.model.config, inputs_embeds=embeds, attention_mask=attention_mask
            )
            out = self.model(
                inputs_embeds=embeds, attention_mask={"full_attention": mask}, use_cache=False, is_causal=False
            )
            return out.last_hidden_state

    def _hidden_states(self, ids: list[list[int]], rows: np.ndarray) -> tuple[object, object]:
        """(final hidden states, attention mask) of the chosen texts, right-padded into one batch."""
        input_ids, attention_mask = padded_tensors([ids[i] for i in rows], pad_token_id(self.tokenizer))
        return self._forward(input_ids, attention_mask), attention_mask

    def _embed_rows(self, encoded: dict[str, list[list[int]]], rows: np.ndarray) -> np.ndarray:
        """x, the float32 mean of the final hidden states over each text's tokens."""
        import torch

        hidden, attention_mask = self._hidden_states(encoded["input_ids"], rows)
        with torch.inference_mode():
            return pool(hidden.float(), attention_mask.to(hidden.device), "mean").cpu().numpy()

    def _encode(self, texts: Sequence[str], role: str) -> np.ndarray:
        if self._st is None:
            return super()._encode(texts, role)
        with cuda_autocast(self._device, self._settings.dtype):  # the in-house path's compute, meta.compute_dtype
            return float_vectors(self._st.encode, texts, self._settings.batch_size)

    # -- the encoder contract (encode_queries / encode_documents / count_truncated: TokenizedEncoder) ---------

    def encode_nested(self, documents: Sequence[Sequence[str]]) -> list[np.ndarray]:
        """Late chunking (embedbench.encoders.late_chunking): chunks joined with eos, one pass per window."""
        return late_chunk_encode(
            self.tokenizer, self._forward, documents, self.max_length, self._settings.batch_size, dim=self.meta.dim
        )

    def token_states(self, texts: Sequence[str]) -> list[np.ndarray]:
        """Final hidden states per text, (n_tokens, dim) float32 each, padding removed (for inspection/tests)."""
        encoded = self._tokenize(texts, "document")
        ids = encoded["input_ids"]
        out = [np.zeros((0, self.meta.dim or 0), dtype=np.float32) for _ in ids]
        for rows in self._batches(encoded):
            hidden = self._hidden_states(ids, rows)[0].float().cpu().numpy()
            for row, i in enumerate(rows):
                out[i] = hidden[row, : len(ids[i])]
        return out


def _default_max_length(path: Path, raw: dict) -> int:
    """The sentence-transformers max_seq_length of the folder, else the tokenizer's, else the positions."""
    for name, key in (("sentence_bert_config.json", "max_seq_length"), ("tokenizer_config.json", "model_max_length")):
        try:
            value = json.loads((path / name).read_text()).get(key)
        except (OSError, json.JSONDecodeError, AttributeError):
            continue
        if isinstance(value, int) and 0 < value < 10**7:
            return value
    value = raw.get("max_position_embeddings")
    if isinstance(value, int) and value > 0:
        return value
    raise ModelError(f"{path}: cannot tell the model's max length; set max_length")


def _load_tokenizer(path: Path, config: object) -> object:
    from transformers import AutoTokenizer

    try:  # the in-memory Qwen3 config: AutoTokenizer never reads the remote-code config.json
        return AutoTokenizer.from_pretrained(str(path), config=config, trust_remote_code=False)
    except Exception as exc:  # transformers raises many types here
        raise ModelError(f"{path}: cannot load the tokenizer: {exc}") from exc


def _load_remote(path: Path, settings: EncodeSettings, max_length: int) -> object:
    """The repo's own sentence-transformers pipeline (remote code), cut before its quantizer; in the checkpoint's
    dtype under --dtype auto, else in the in-house path's weights dtype."""
    import torch
    from sentence_transformers import SentenceTransformer

    cast = weights_dtype(settings.device, settings.dtype)
    weights = None if settings.dtype == "auto" else {"dtype": getattr(torch, cast)}
    try:
        full = SentenceTransformer(str(path), device=settings.device, trust_remote_code=True, model_kwargs=weights)
    except Exception as exc:
        raise ModelError(f"{path}: cannot load with remote code: {exc}") from exc
    names = [type(m).__name__ for m in full]
    if len(names) < 2 or names[1] != "Pooling":
        raise ModelError(f"{path}: expected Transformer -> Pooling -> FlexibleQuantizer, got {names}")
    st = SentenceTransformer(modules=[full[0], full[1]], device=settings.device)
    st.max_seq_length = max_length
    return st


def is_context_model(config: dict) -> bool:
    """pplx-embed-context shares v1's architecture; its config's name says which it is."""
    return "context" in str(config.get("_name_or_path", "")).lower()


def load_pplx(path: Path, **options: object) -> PplxEncoder:
    """Load a pplx-embed(-context) folder (options as PplxEncoder's); without remote code unless `remote_code`."""
    return PplxEncoder(Path(path), **options)  # type: ignore[arg-type]
