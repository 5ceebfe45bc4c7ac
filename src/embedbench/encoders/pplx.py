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
from embedbench.encoders.protocol import EncoderMeta
from embedbench.encoders.runtime import cuda_autocast_dtype, torch_compute
from embedbench.encoders.settings import EncodeSettings
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


def build_bidirectional_qwen3(path: Path) -> object:
    """Qwen3Model from the folder's config and safetensors, causal mask off on every layer (strict load)."""
    import torch
    from safetensors import safe_open
    from safetensors.torch import load_file
    from transformers import Qwen3Model

    path = Path(path)
    config = _qwen3_config(_read_config(path))
    files = _weight_files(path)
    with _no_init():
        model = Qwen3Model(config)
    model.to(torch.float32)
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}

    found: dict[str, tuple[int, ...]] = {}
    for f in files:
        try:
            with safe_open(str(f), framework="pt") as fh:
                for key in fh.keys():
                    found[key] = tuple(fh.get_slice(key).get_shape())
        except Exception as exc:  # safetensors raises its own error types
            raise ModelError(f"{f}: cannot read safetensors: {exc}") from exc
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
    for f in files:
        state = load_file(str(f))
        if prefix:
            state = {k[len(prefix) :]: v for k, v in state.items()}
        model.load_state_dict(state, strict=False)  # the key set was checked above against all shards
    for layer in model.layers:
        layer.self_attn.is_causal = False
    model.eval()
    return model


class PplxEncoder:
    """pplx-embed behind the encoder contract: float32 x per text, late chunking for nested documents.

    No instruction prefix (the models use none). Texts are sorted by token length, batched, and
    returned in input order. On cuda the forward pass runs under autocast (bf16 where supported,
    else fp16) on both paths, as meta.compute_dtype records; pooling is always in float32.
    """

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
        import torch

        path = Path(path)
        if not path.is_dir():
            raise ModelError(f"{path}: not a folder")
        if not is_pplx_folder(path):
            raise ModelError(f"{path}: not a pplx-embed folder (config model_type is not {PPLX_MODEL_TYPE})")
        raw = _read_config(path)
        self.path = path
        self.remote_code = remote_code
        self._settings = settings
        self._device = torch.device(settings.device)
        self.max_length = settings.max_length or _default_max_length(path, raw)

        if remote_code:
            self._st = _load_remote(path, settings, self.max_length)
            self.model = self._st[0].auto_model
            self.tokenizer = self._st.tokenizer
        else:
            self._st = None
            self.model = build_bidirectional_qwen3(path).to(self._device)
            self.tokenizer = _load_tokenizer(path, self.model.config)
        dim = int(raw["hidden_size"])
        device_type, compute_dtype = torch_compute(self._device, self.model, autocast=True)
        self.meta = EncoderMeta(
            name=name,
            revision=revision,
            fingerprint=fingerprint,
            dim=dim,
            max_tokens=self.max_length,
            pooling="mean",
            mrl_dims=tuple(mrl_dims),
            prompts={},
            native_quantizers=dict(NATIVE_QUANTIZERS),
            float_note=FLOAT_NOTE,
            source=source,
            license=license,
            contextual=is_context_model(raw) if contextual is None else contextual,
            device_type=device_type,
            compute_dtype=compute_dtype,
        )

    # -- forward -------------------------------------------------------------------------------

    def _autocast(self) -> contextlib.AbstractContextManager:
        import torch

        if self._device.type != "cuda":
            return contextlib.nullcontext()
        return torch.autocast(device_type="cuda", dtype=cuda_autocast_dtype())

    def _forward(self, input_ids: object, attention_mask: object) -> object:
        """Final hidden states (B, L, H) for right-padded ids; every token attends to every non-padding token."""
        import torch

        input_ids = input_ids.to(self._device)  # type: ignore[attr-defined]
        attention_mask = attention_mask.to(self._device)  # type: ignore[attr-defined]
        with torch.inference_mode(), self._autocast():
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

    def _tokenize(self, texts: Sequence[str]) -> list[list[int]]:
        enc = self.tokenizer(list(texts), add_special_tokens=True, truncation=True, max_length=self.max_length)
        return [list(ids) for ids in enc["input_ids"]]

    def _batches(self, ids: list[list[int]]):
        """Yield (indices, input_ids, attention_mask), longest texts first; skips texts with no tokens."""
        import torch

        pad_id = self.tokenizer.pad_token_id
        if pad_id is None:
            pad_id = self.tokenizer.eos_token_id if self.tokenizer.eos_token_id is not None else 0
        order = sorted((i for i in range(len(ids)) if ids[i]), key=lambda i: -len(ids[i]))
        step = self._settings.batch_size
        for start in range(0, len(order), step):
            idx = order[start : start + step]
            width = len(ids[idx[0]])
            input_ids = torch.full((len(idx), width), pad_id, dtype=torch.long)
            attention_mask = torch.zeros((len(idx), width), dtype=torch.long)
            for row, i in enumerate(idx):
                input_ids[row, : len(ids[i])] = torch.tensor(ids[i], dtype=torch.long)
                attention_mask[row, : len(ids[i])] = 1
            yield idx, input_ids, attention_mask

    def _encode(self, texts: Sequence[str]) -> np.ndarray:
        import torch

        if self._st is not None:
            return self._encode_remote(texts)
        ids = self._tokenize(texts)
        out = np.zeros((len(ids), self.meta.dim or 0), dtype=np.float32)  # a text with no tokens stays zero
        for idx, input_ids, attention_mask in self._batches(ids):
            hidden = self._forward(input_ids, attention_mask)
            with torch.inference_mode():
                mask = attention_mask.to(hidden.device).unsqueeze(-1).bool()
                summed = hidden.float().masked_fill(~mask, 0.0).sum(dim=1)
                pooled = summed / mask.sum(dim=1).clamp(min=1).float()
            out[idx] = pooled.cpu().numpy()
        return out

    def _encode_remote(self, texts: Sequence[str]) -> np.ndarray:
        with self._autocast():  # the same compute dtype as the in-house path and meta.compute_dtype
            vectors = self._st.encode(
                list(texts),
                batch_size=self._settings.batch_size,
                convert_to_numpy=True,
                normalize_embeddings=False,
                show_progress_bar=False,
            )
        return np.asarray(vectors, dtype=np.float32)

    # -- the encoder contract ------------------------------------------------------------------

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts)

    def encode_documents(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts)

    def encode_nested(self, documents: Sequence[Sequence[str]]) -> list[np.ndarray]:
        """Late chunking (embedbench.encoders.late_chunking): chunks joined with eos, one pass per window."""
        return late_chunk_encode(
            self.tokenizer,
            self._forward,
            documents,
            self.max_length,
            self._settings.batch_size,
            dim=self.meta.dim,
        )

    def count_truncated(self, texts: Sequence[str], role: str) -> int:
        """How many texts are longer than the max length in tokens (no prompt: pplx uses none)."""
        lengths = self.tokenizer(list(texts), add_special_tokens=True, truncation=False, verbose=False)["input_ids"]
        return sum(len(ids) > self.max_length for ids in lengths)

    def token_states(self, texts: Sequence[str]) -> list[np.ndarray]:
        """Final hidden states per text, (n_tokens, dim) float32 each, padding removed (for inspection/tests)."""
        ids = self._tokenize(texts)
        out = [np.zeros((0, self.meta.dim or 0), dtype=np.float32) for _ in ids]
        for idx, input_ids, attention_mask in self._batches(ids):
            hidden = self._forward(input_ids, attention_mask).float().cpu().numpy()
            for row, i in enumerate(idx):
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
    """The repo's own sentence-transformers pipeline (remote code), cut before its quantizer."""
    from sentence_transformers import SentenceTransformer

    try:
        full = SentenceTransformer(str(path), device=settings.device, trust_remote_code=True)
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


def load_pplx(
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
) -> PplxEncoder:
    """Load a pplx-embed(-context) folder; without remote code unless `remote_code` is set."""
    return PplxEncoder(
        Path(path),
        name=name,
        revision=revision,
        fingerprint=fingerprint,
        settings=settings,
        mrl_dims=mrl_dims,
        remote_code=remote_code,
        contextual=contextual,
        source=source,
        license=license,
    )
