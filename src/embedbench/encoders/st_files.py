"""What a sentence-transformers folder will be once loaded, read from its files alone (no torch, no weights).

`read_st_folder` gives the values `SentenceTransformerEncoder` puts into its meta -- output dimension,
max length, pooling, the prompt of each role, device type and compute dtype (the --dtype asked for, else
the checkpoint's) -- computed the way sentence-transformers 6 and transformers 5 compute them while
loading, from modules.json, the modules' config files, config.json, tokenizer_config.json and the
safetensors header. It understands only the plain layout (Transformer -> Pooling [-> Dense] [-> Normalize],
no remote code, no loading options) and answers None for anything else; the encoder then loads the model
to find out, as before. Once a model is loaded the encoder compares these values with the loaded model's
(`SentenceTransformerEncoder.model`), so a reading that drifts from the library's stops the run instead of
keying vectors wrongly.
"""

from __future__ import annotations

import importlib.metadata
import json
import struct
from dataclasses import dataclass, field
from pathlib import Path

from embedbench.encoders.runtime import TORCH_DTYPES
from embedbench.encoders.settings import EncodeSettings

# The module classes whose configs are understood here (modules.json "type", last component).
_ST_PREFIXES = ("sentence_transformers.models.", "sentence_transformers.base.modules.",
                "sentence_transformers.sentence_transformer.modules.")
_TRANSFORMER_CONFIGS = ("sentence_bert_config.json", "sentence_roberta_config.json", "sentence_distilbert_config.json",
                        "sentence_camembert_config.json", "sentence_albert_config.json",
                        "sentence_xlm-roberta_config.json", "sentence_xlnet_config.json")
# sentence_bert_config.json keys that cannot change dim, max length, pooling, prompts, dtype or tokenization.
_HARMLESS_TRANSFORMER_KEYS = {"max_seq_length", "do_lower_case", "transformer_task", "modality_config",
                              "module_output_name", "unpad_inputs"}
_KWARG_KEYS = {"model_args", "model_kwargs", "tokenizer_args", "processor_kwargs", "config_args", "config_kwargs"}
_UNSET_KEYS = {"query_length", "document_length", "query_expansion", "processing_kwargs", "tokenizer_name_or_path"}
# sentence-transformers 6's Pooling: legacy boolean keys -> mode, in its concatenation order.
_LEGACY_POOLING = {
    "pooling_mode_cls_token": "cls",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
    "pooling_mode_weightedmean_tokens": "weightedmean",
    "pooling_mode_lasttoken": "lasttoken",
}
_FLOAT_DTYPES = {"float32", "float16", "bfloat16", "float64"}
_SAFETENSORS_FLOATS = {"F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16"}
# Prompt names a SentenceTransformer (6.x) always holds, empty unless configured.
_DEFAULT_PROMPTS = ("query", "document")


@dataclass(frozen=True)
class StDescription:
    """The loaded model's values that go into the encoder's meta (and so into the embedding cache key)."""

    dim: int | None
    max_tokens: int | None
    pooling: str | None
    prompts: dict[str, str] = field(default_factory=dict)  # the prompt of each role ("" for none)
    device_type: str = "cpu"
    compute_dtype: str = "float32"


@dataclass(frozen=True)
class StFolder:
    """A folder `read_st_folder` understood: its description and where the tokenizer lives."""

    description: StDescription
    transformer_dir: Path


class _Unknown(Exception):
    """The folder uses something this reader does not model: load the model to find out."""


def read_st_folder(folder: Path, settings: EncodeSettings, prompts: dict[str, str] | None,
                   role_prompt) -> StFolder | None:
    """The folder's description without loading it, or None when its layout is not the plain one.

    `prompts` are the caller's prompts (SentenceTransformer(prompts=...)); `role_prompt(holder, role)` picks a
    role's prompt from an object with `prompts` and `default_prompt_name` (st.library_prompt).
    """
    try:
        return _read(Path(folder), settings, prompts, role_prompt)
    except _Unknown:
        return None


def _read(folder: Path, settings: EncodeSettings, prompts: dict[str, str] | None, role_prompt) -> StFolder:
    if _major(_version("sentence-transformers")) != 6 or _major(_version("transformers")) != 5:
        raise _Unknown("the reading follows sentence-transformers 6 and transformers 5")
    modules = _modules(folder)
    transformer_dir = folder / modules[0][1]
    st_config = _transformer_config(transformer_dir)
    config = _json(transformer_dir / "config.json")
    if not isinstance(config, dict) or "auto_map" in config or "quantization_config" in config:
        raise _Unknown("remote code, quantization or no config")
    if any((transformer_dir / name).exists() for name in ("processor_config.json", "preprocessor_config.json")):
        raise _Unknown("a processor, not a plain tokenizer")
    tokenizer_config = _json(transformer_dir / "tokenizer_config.json")
    if not isinstance(tokenizer_config, dict) or "auto_map" in tokenizer_config:
        raise _Unknown("no tokenizer config, or a remote-code tokenizer")
    dim = None
    for kind, path in reversed(modules):
        dim = _module_dim(kind, folder / path)
        if dim is not None:
            break
    if dim is None:
        raise _Unknown("no module tells the dimension")
    holder = _Prompts(*_library_prompts(folder, prompts))
    return StFolder(
        StDescription(
            dim=dim,
            max_tokens=_max_tokens(st_config, tokenizer_config, config, settings),
            pooling=_pooling_mode(folder / modules[1][1]),
            prompts={role: role_prompt(holder, role) for role in _DEFAULT_PROMPTS},
            device_type=settings.device.partition(":")[0],
            compute_dtype=TORCH_DTYPES.get(settings.dtype) or _load_dtype(transformer_dir, config),
        ),
        transformer_dir,
    )


@dataclass(frozen=True)
class _Prompts:
    prompts: dict[str, str]
    default_prompt_name: str | None


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        raise _Unknown(f"{dist} is not installed") from None


def _major(version: str) -> int | None:
    head = version.split(".", 1)[0]
    return int(head) if head.isdigit() else None


def _json(path: Path) -> object:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise _Unknown(f"{path}: {exc}") from None


def _modules(folder: Path) -> list[tuple[str, str]]:
    """(kind, relative path) of each module: Transformer, Pooling, then Dense / Normalize only."""
    entries = _json(folder / "modules.json")
    if not isinstance(entries, list) or len(entries) < 2:
        raise _Unknown("modules.json")
    out = []
    for entry in entries:
        if not isinstance(entry, dict) or entry.get("kwargs") or not isinstance(entry.get("path"), str):
            raise _Unknown("a module entry")
        kind = _kind(entry.get("type"))
        path = entry["path"]
        if Path(path).is_absolute() or ".." in Path(path).parts:
            raise _Unknown("a module path outside the folder")
        out.append((kind, path))
    kinds = [k for k, _ in out]
    if kinds[0] != "Transformer" or kinds[1] != "Pooling" or any(k not in ("Dense", "Normalize") for k in kinds[2:]):
        raise _Unknown(f"modules {kinds}")
    return out


def _kind(type_name: object) -> str:
    if not isinstance(type_name, str):
        raise _Unknown("module type")
    for prefix in _ST_PREFIXES:
        if type_name.startswith(prefix):
            kind = type_name[len(prefix):].rpartition(".")[2]
            if kind in ("Transformer", "Pooling", "Dense", "Normalize"):
                return kind
    raise _Unknown(f"module type {type_name}")


def _transformer_config(transformer_dir: Path) -> dict:
    """sentence_bert_config.json (or a legacy name) when it holds only settings this reader models."""
    for name in _TRANSFORMER_CONFIGS:
        if (transformer_dir / name).is_file():
            config = _json(transformer_dir / name)
            break
    else:
        config = {}
    if not isinstance(config, dict):
        raise _Unknown("sentence_bert_config.json")
    for key, value in config.items():
        if key in _KWARG_KEYS:
            rest = {k: v for k, v in (value or {}).items() if k != "trust_remote_code"} if isinstance(value, dict) \
                else value
            if rest:
                raise _Unknown(f"{key} = {value!r}")
        elif key in _UNSET_KEYS:
            if value not in (None, {}):
                raise _Unknown(f"{key} = {value!r}")
        elif key not in _HARMLESS_TRANSFORMER_KEYS:
            raise _Unknown(f"sentence_bert_config.json key {key}")
    if config.get("do_lower_case") not in (None, False):
        raise _Unknown("do_lower_case changes the tokenizer")
    if config.get("transformer_task", "feature-extraction") != "feature-extraction":
        raise _Unknown("transformer_task")
    limit = config.get("max_seq_length")
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 1):
        raise _Unknown("max_seq_length")
    return config


def _pooling_config(path: Path) -> tuple[tuple[str, ...], int]:
    """(modes, token dimension) of a Pooling module, legacy boolean keys read as sentence-transformers 6 does."""
    config = _json(path / "config.json")
    if not isinstance(config, dict):
        raise _Unknown("pooling config")
    known = {"word_embedding_dimension", "embedding_dimension", "pooling_mode", "include_prompt", *_LEGACY_POOLING}
    if set(config) - known:
        raise _Unknown(f"pooling config keys {sorted(set(config) - known)}")
    width = config.get("embedding_dimension", config.get("word_embedding_dimension"))
    if not isinstance(width, int) or isinstance(width, bool) or width < 1:
        raise _Unknown("pooling dimension")
    mode = config.get("pooling_mode")
    if mode is None:
        mode = tuple(m for key, m in _LEGACY_POOLING.items() if config.get(key, False)) or ("mean",)
    modes = (mode,) if isinstance(mode, str) else tuple(mode) if isinstance(mode, (list, tuple)) else None
    if not modes or any(m not in _LEGACY_POOLING.values() for m in modes):
        raise _Unknown(f"pooling mode {mode!r}")
    return modes, width


def _pooling_mode(path: Path) -> str | None:
    """`Pooling.pooling_mode` when it is one mode (a string); several modes are a tuple, which st.py skips."""
    modes, _ = _pooling_config(path)
    return modes[0] if len(modes) == 1 else None


def _module_dim(kind: str, path: Path) -> int | None:
    """What the module's get_embedding_dimension returns (Normalize has none; a Transformer is never last here)."""
    if kind == "Pooling":
        modes, width = _pooling_config(path)
        return len(modes) * width
    if kind == "Dense":
        config = _json(path / "config.json")
        if not isinstance(config, dict):
            raise _Unknown("dense config")
        if config.get("module_input_name", "sentence_embedding") != "sentence_embedding" or \
                config.get("module_output_name") not in (None, "sentence_embedding"):
            raise _Unknown("a Dense module on another feature")
        out = config.get("out_features")
        if not isinstance(out, int) or isinstance(out, bool):
            raise _Unknown("dense out_features")
        return out
    return None


def _library_prompts(folder: Path, prompts: dict[str, str] | None) -> tuple[dict[str, str], str | None]:
    """(prompts, default_prompt_name) as SentenceTransformer 6 settles them: its empty query / document
    placeholders, the caller's prompts over them, then the folder's saved prompts where none is set yet."""
    merged: dict[str, str | None] = dict.fromkeys(_DEFAULT_PROMPTS)
    if prompts:
        merged.update(prompts)
    default_name = None
    path = folder / "config_sentence_transformers.json"
    if path.is_file():
        config = _json(path)
        if not isinstance(config, dict) or "requirements" in config:
            raise _Unknown("config_sentence_transformers.json")
        saved = config.get("prompts", {})
        if not isinstance(saved, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in saved.items()):
            raise _Unknown("saved prompts")
        for name, text in saved.items():
            if name not in merged or merged[name] is None:
                merged[name] = text
        default_name = config.get("default_prompt_name")
        if default_name is not None and not isinstance(default_name, str):
            raise _Unknown("default_prompt_name")
    settled = {name: "" if text is None else text for name, text in merged.items()}
    if default_name is not None and default_name not in settled:
        raise _Unknown("a default prompt name that is not a prompt (the library refuses it)")
    return settled, default_name


def _max_tokens(st_config: dict, tokenizer_config: dict, config: dict, settings: EncodeSettings) -> int:
    """`SentenceTransformer.max_seq_length`: the run's limit, else max_seq_length, else the tokenizer's
    model_max_length capped at the config's max_position_embeddings."""
    if settings.max_length is not None:
        return settings.max_length
    if st_config.get("max_seq_length") is not None:
        return st_config["max_seq_length"]
    limit = tokenizer_config.get("model_max_length")
    positions = config.get("max_position_embeddings")
    if not isinstance(limit, int) or isinstance(limit, bool) or not isinstance(positions, int):
        raise _Unknown("max length")
    return limit if positions == -1 else min(limit, positions)


def _load_dtype(transformer_dir: Path, config: dict) -> str:
    """The dtype transformers 5 loads the weights in (dtype="auto"): config.json's dtype, else the
    checkpoint's floating dtype (one safetensors file, every floating tensor in one dtype)."""
    declared = config.get("dtype")
    if declared is None:
        declared = config.get("torch_dtype")
    if declared is not None:
        if declared not in _FLOAT_DTYPES:
            raise _Unknown(f"dtype {declared!r}")
        return declared
    dtypes = {_SAFETENSORS_FLOATS.get(t) for t in _safetensors_dtypes(transformer_dir / "model.safetensors")}
    dtypes.discard(None)
    if len(dtypes) != 1:
        raise _Unknown(f"checkpoint dtypes {dtypes}")
    return dtypes.pop()


def _safetensors_dtypes(path: Path) -> set[str]:
    """The dtypes named in a safetensors file's header (8-byte length, then JSON); the tensors are not read."""
    try:
        with path.open("rb") as fh:
            (size,) = struct.unpack("<Q", fh.read(8))
            if size > 100_000_000:
                raise _Unknown("safetensors header size")
            header = json.loads(fh.read(size))
    except (OSError, ValueError, struct.error) as exc:
        raise _Unknown(f"{path}: {exc}") from None
    if not isinstance(header, dict):
        raise _Unknown("safetensors header")
    return {v.get("dtype") for k, v in header.items() if k != "__metadata__" and isinstance(v, dict)}
