"""The transformers plugin: any `AutoModel` folder or hub id, pooled by mean, cls or last-token.

Texts are tokenized once, sorted by token length (longest first) so each batch pads little,
run under `torch.inference_mode` and put back in input order. The weights are float32 and CUDA runs
under autocast (bf16 where supported, else fp16; `--dtype` picks it, fp32 turns it off); off CUDA
`--dtype bf16 / fp16` casts the weights instead (`encoders.runtime`).
Pooling reads the attention mask, so it is right for left and right padding alike: `cls` takes
each row's first real token, `last-token` its last real token. Vectors are returned before
normalization unless `normalize=True` (the harness normalizes for cosine). The tokenizer and config
load when the encoder is built (they settle its meta and count truncated texts); the weights load on
the first text to encode (`encoders.lazy`), so a run whose vectors are all cached never loads them.

Reference grammar (:func:`parse_hf_ref`)::

    hf:MODEL[?KEY=VALUE[&KEY=VALUE...]]
    MODEL  a hub id (ORG/NAME, optionally @REVISION) or a local folder (starts with /, . or ~,
           or is an existing folder). A hub id is pinned to a commit before loading
           (embedbench.encoders.hub): the hub's, else the local cache's refs/REVISION (default main).
    KEY    pooling=mean|cls|last-token   (default mean)
           query_prefix=TEXT, document_prefix=TEXT   prepended to queries / documents
           normalize=true|false          (default false)
           revision=REV                  hub revision (same as @REV)

VALUEs are URL-decoded: ``+`` or ``%20`` is a space, ``%0A`` a newline, ``%2B`` a plus, ``%26``
an ampersand. Examples: ``hf:intfloat/e5-small-v2?query_prefix=query:+&document_prefix=passage:+``,
``hf:/models/ckpt?pooling=last-token``.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Iterable, Iterator
from pathlib import Path
from urllib.parse import parse_qsl

import numpy as np

from embedbench.encoders.fingerprint import folder_fingerprint
from embedbench.encoders.hub import pin_repo
from embedbench.encoders.lazy import LazyModel, check_as_read, quiet_transformers
from embedbench.encoders.load_errors import load_failure
from embedbench.encoders.pooling import check_pooling, pool
from embedbench.encoders.protocol import EncoderMeta
from embedbench.encoders.runtime import check_device, cuda_autocast, planned_compute, torch_compute, weights_dtype
from embedbench.encoders.settings import EncodeSettings
from embedbench.encoders.tokens import TokenizedEncoder, ensure_pad_token, model_max_length, pad_batch
from embedbench.errors import EmbedbenchError, ModelError

_KEYS = ("pooling", "query_prefix", "document_prefix", "normalize", "revision")


def parse_hf_ref(ref: str) -> tuple[str, dict[str, object]]:
    """`hf:MODEL?key=value&...` -> (model_ref, HfPoolingEncoder keyword options); see the module docstring."""
    if not ref.startswith("hf:"):
        raise EmbedbenchError(f"a transformers model reference starts with 'hf:', got {ref!r}")
    model, _, query = ref[3:].partition("?")
    if not model:
        raise EmbedbenchError(f"{ref!r} names no model (expected hf:ORG/NAME or hf:/path/to/folder)")
    options: dict[str, object] = {}
    if model.startswith(("/", ".", "~")) or Path(model).expanduser().is_dir():
        model = str(Path(model).expanduser())
    elif "@" in model:
        model, options["hub_revision"] = model.split("@", 1)
    pairs = parse_qsl(query, keep_blank_values=True)
    prompts: dict[str, str] = {}
    for i, (key, value) in enumerate(pairs):
        if key not in _KEYS:
            raise EmbedbenchError(f"{ref!r}: unknown option {key!r} (expected one of {', '.join(_KEYS)})")
        if any(key == other for other, _ in pairs[:i]):
            raise EmbedbenchError(f"{ref!r}: option {key!r} is given twice")
        if key == "pooling":
            options["pooling"] = check_pooling(value)
        elif key == "normalize":
            if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise EmbedbenchError(f"{ref!r}: normalize must be true or false, got {value!r}")
            options["normalize"] = value.lower() in ("true", "1", "yes")
        elif key == "revision":
            options["hub_revision"] = value
        else:
            prompts["query" if key == "query_prefix" else "document"] = value
    if prompts:
        options["prompts"] = prompts
    return model, options


def _locate(model_ref: str, hub_revision: str | None) -> tuple[Path | None, str | None, str | None]:
    """(folder to load from, hub id, pinned commit): a hub id is pinned so it is keyed by a commit, not a branch."""
    if Path(model_ref).is_dir():
        return Path(model_ref), None, None
    if model_ref.startswith(("/", ".", "~")):
        raise ModelError(f"model folder {model_ref!r} does not exist")
    pinned = pin_repo(model_ref, hub_revision)
    return pinned.snapshot, model_ref, pinned.commit


def _load_tokenizer(model_ref: str, folder: Path | None, commit: str | None, trust: bool) -> tuple[object, object]:
    """(tokenizer, AutoConfig) from the folder, else from the hub at the commit: no weights; one line on failure."""
    from transformers import AutoConfig, AutoTokenizer

    where, revision = (str(folder), None) if folder else (model_ref, commit)
    try:
        tokenizer = AutoTokenizer.from_pretrained(where, revision=revision, trust_remote_code=trust)
        config = AutoConfig.from_pretrained(where, revision=revision, trust_remote_code=trust)
    except Exception as exc:  # noqa: BLE001 - any loading failure becomes one line
        raise load_failure("transformers", model_ref, exc) from exc
    return tokenizer, config


def _load_transformers(model_ref: str, folder: Path | None, commit: str | None, trust: bool, dtype: str) -> object:
    """The AutoModel in `dtype` (a torch dtype name) from the folder, else from the hub at the commit; one line on
    failure."""
    quiet_transformers()
    import torch
    from transformers import AutoModel

    where, revision = (str(folder), None) if folder else (model_ref, commit)
    try:
        return AutoModel.from_pretrained(where, revision=revision, trust_remote_code=trust,
                                         dtype=getattr(torch, dtype))
    except Exception as exc:  # noqa: BLE001 - any loading failure becomes one line
        raise load_failure("transformers", model_ref, exc) from exc


def _identity(folder: Path | None, hub_id: str | None, commit: str | None, revision: str | None,
              fingerprint: str | None, normalize: bool) -> tuple[str, str]:
    """(revision, fingerprint): a hub repo's pinned commit, else the folder's content hash; explicit values win."""
    if revision is None:
        revision = commit if hub_id else f"sha:{folder_fingerprint(folder)}"  # type: ignore[arg-type]
    if fingerprint is None:
        fingerprint = (f"{hub_id}@{revision}" if hub_id else revision) + ("+l2" if normalize else "")
    return revision, fingerprint  # type: ignore[return-value]


class HfPoolingEncoder(LazyModel, TokenizedEncoder):
    """Encodes with a transformers `AutoModel` and pools its last hidden state (see the module docstring).

    `model_ref` is a folder or a hub id; a hub id is pinned to a commit (`hub_revision` may name a
    branch, a tag or a commit) and loaded from the local cache's snapshot of it when there is one.
    """

    def __init__(
        self,
        model_ref: str,
        *,
        settings: EncodeSettings | None = None,
        pooling: str = "mean",
        prompts: dict[str, str] | None = None,
        normalize: bool = False,
        name: str | None = None,
        revision: str | None = None,
        fingerprint: str | None = None,
        hub_revision: str | None = None,
        source: str = "",
        license: str | None = None,
    ) -> None:
        self._settings = settings = settings or EncodeSettings()
        self._pooling, self._normalize, self._prompts = check_pooling(pooling), normalize, dict(prompts or {})
        self._ref = model_ref
        self._folder, hub_id, self._commit = _locate(model_ref, hub_revision)
        # The tokenizer and config load now (no weights): they settle the max length, the size and counting.
        self.tokenizer, self._config = _load_tokenizer(model_ref, self._folder, self._commit,
                                                       settings.trust_remote_code)
        ensure_pad_token(self.tokenizer, model_ref)
        self._device = settings.device
        self._model: object | None = None
        self.max_length = settings.max_length or model_max_length(self.tokenizer, self._folder, self._config)
        revision, fingerprint = _identity(self._folder, hub_id, self._commit, revision, fingerprint, normalize)
        device_type, compute_dtype = planned_compute(self._device, settings.dtype)
        self.meta = EncoderMeta(
            dim=getattr(self._config, "hidden_size", None),
            max_tokens=self.max_length,
            pooling=self._pooling,
            prompts=self._prompts,
            device_type=device_type,
            compute_dtype=compute_dtype,
            name=name or model_ref,
            revision=revision,
            fingerprint=fingerprint,
            license=license,
            source=source or (f"hf:{hub_id}@{self._commit}" if hub_id else f"local:{self._folder}"),
        )

    def _load_model(self) -> object:
        """The AutoModel, checked against the meta read from its config."""
        check_device(self._device, self._settings.dtype)
        model = _load_transformers(self._ref, self._folder, self._commit, self._settings.trust_remote_code,
                                   weights_dtype(self._device, self._settings.dtype))
        model.to(self._device).eval()
        check_as_read(self._ref, self._as_read(), self._describe(model))
        return model

    @property
    def _fields(self) -> set[str]:  # type: ignore[override]
        """The tokenizer outputs the model's forward accepts."""
        accepted = inspect.signature(self.model.forward).parameters  # type: ignore[attr-defined]
        return {"input_ids", "attention_mask"} | ({"token_type_ids"} & set(accepted))

    def _as_read(self) -> dict[str, object]:
        return {"dim": self.meta.dim, "max_tokens": self.meta.max_tokens, "device_type": self.meta.device_type,
                "compute_dtype": self.meta.compute_dtype}

    def _describe(self, model: object) -> dict[str, object]:
        """What the loaded model says about the meta's model-dependent values."""
        device_type, compute_dtype = torch_compute(self._device, model, autocast=True, dtype=self._settings.dtype)
        max_tokens = self._settings.max_length or model_max_length(self.tokenizer, self._folder, model.config)
        return {"dim": getattr(model.config, "hidden_size", None), "max_tokens": max_tokens,  # type: ignore
                "device_type": device_type, "compute_dtype": compute_dtype}

    def _batches(self, encoded: dict[str, list[list[int]]]) -> Iterable[np.ndarray]:
        from tqdm.auto import tqdm

        batches = super()._batches(encoded)
        return tqdm(batches, desc="encode", disable=not self._settings.show_progress, leave=False)

    @contextlib.contextmanager
    def _batch_context(self) -> Iterator[None]:
        import torch

        with torch.inference_mode(), cuda_autocast(self._device, self._settings.dtype):  # pooling: float32 inside
            yield

    def _embed_rows(self, enc: dict[str, list[list[int]]], rows: np.ndarray) -> np.ndarray:
        """Pooled (and, if asked, L2-normalized) float32 vectors of the chosen rows of the tokenized texts."""
        import torch

        left = self.tokenizer.padding_side == "left"
        batch = {k: torch.from_numpy(v).to(self._device)
                 for k, v in pad_batch(enc, rows, self.tokenizer.pad_token_id, left).items()}
        hidden = self.model(**batch)[0]  # last_hidden_state, from a ModelOutput or a tuple
        vecs = pool(hidden.float(), batch["attention_mask"], self._pooling)
        if self._normalize:
            vecs = torch.nn.functional.normalize(vecs, dim=-1)
        return vecs.cpu().numpy()
