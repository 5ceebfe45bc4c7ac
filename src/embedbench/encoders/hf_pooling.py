"""The transformers plugin: any `AutoModel` folder or hub id, pooled by mean, cls or last-token.

Texts are tokenized once, sorted by token length (longest first) so each batch pads little,
run under `torch.inference_mode` (autocast bf16/fp16 on CUDA) and put back in input order.
Pooling reads the attention mask, so it is right for left and right padding alike: `cls` takes
each row's first real token, `last-token` its last real token. Vectors are returned before
normalization unless `normalize=True` (the harness normalizes for cosine).

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

import inspect
import json
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import parse_qsl

import numpy as np

from embedbench.encoders.fingerprint import folder_fingerprint
from embedbench.encoders.hub import pin_repo
from embedbench.encoders.protocol import EncoderMeta
from embedbench.encoders.runtime import cuda_autocast_dtype, torch_compute
from embedbench.encoders.settings import EncodeSettings
from embedbench.errors import EmbedbenchError, ModelError

POOLINGS = ("mean", "cls", "last-token")
_KEYS = ("pooling", "query_prefix", "document_prefix", "normalize", "revision")


def check_pooling(mode: str) -> str:
    if mode not in POOLINGS:
        raise EmbedbenchError(f"pooling must be one of {', '.join(POOLINGS)}, got {mode!r}")
    return mode


def pool(hidden, mask, mode: str):
    """(n, t, d) token states + (n, t) 0/1 mask -> (n, d), for either padding side (torch tensors)."""
    import torch

    check_pooling(mode)
    mask = mask.to(hidden.dtype if hidden.is_floating_point() else torch.float32)
    if mode == "mean":
        summed = (hidden * mask.unsqueeze(-1)).sum(dim=1)
        return summed / mask.sum(dim=1, keepdim=True).clamp(min=1e-9)
    rows = torch.arange(hidden.shape[0], device=hidden.device)
    if mode == "cls":  # first real token: argmax returns the first maximum
        return hidden[rows, mask.argmax(dim=1)]
    # last-token: the last real token, i.e. the first maximum of the reversed mask
    return hidden[rows, mask.shape[1] - 1 - mask.flip(1).argmax(dim=1)]


def length_sorted_batches(lengths: Sequence[int], batch_size: int) -> list[np.ndarray]:
    """Index batches over texts sorted longest first (stable), so each batch pads little."""
    order = np.argsort(-np.asarray(lengths, dtype=np.int64), kind="stable")
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def pad_batch(encoded: dict[str, list[list[int]]], rows: Sequence[int], pad_id: int, left: bool) -> dict[str, np.ndarray]:
    """Pad the chosen rows of each tokenizer field to one width (int64); input_ids with pad_id, the rest with 0."""
    width = max(len(encoded["input_ids"][r]) for r in rows)
    out: dict[str, np.ndarray] = {}
    for key, seqs in encoded.items():
        arr = np.full((len(rows), width), pad_id if key == "input_ids" else 0, dtype=np.int64)
        for i, r in enumerate(rows):
            seq = seqs[r]
            if seq:
                if left:
                    arr[i, width - len(seq) :] = seq
                else:
                    arr[i, : len(seq)] = seq
        out[key] = arr
    return out


def model_max_length(tokenizer, folder: Path | None, config=None) -> int | None:
    """sentence_bert_config.json's max_seq_length, else the tokenizer's limit, else the config's positions."""
    if folder is not None and (folder / "sentence_bert_config.json").is_file():
        limit = json.loads((folder / "sentence_bert_config.json").read_text()).get("max_seq_length")
        if isinstance(limit, int) and limit > 0:
            return limit
    limit = getattr(tokenizer, "model_max_length", None)
    if isinstance(limit, int) and 0 < limit < 1_000_000:
        return limit
    return getattr(config, "max_position_embeddings", None)


def one_line(exc: BaseException) -> str:
    """The first line of an exception's message, or its type name."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


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


def _load_transformers(model_ref: str, folder: Path | None, commit: str | None, trust: bool) -> tuple[object, object]:
    """(tokenizer, float32 AutoModel) from the folder, else from the hub at the commit; one line on failure."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    where, revision = (str(folder), None) if folder else (model_ref, commit)
    try:
        tokenizer = AutoTokenizer.from_pretrained(where, revision=revision, trust_remote_code=trust)
        model = AutoModel.from_pretrained(where, revision=revision, trust_remote_code=trust, dtype=torch.float32)
    except Exception as exc:  # noqa: BLE001 - any loading failure becomes one line
        raise ModelError(f"cannot load transformers model {model_ref!r}: {one_line(exc)}") from exc
    return tokenizer, model


def _identity(folder: Path | None, hub_id: str | None, commit: str | None, revision: str | None,
              fingerprint: str | None, normalize: bool) -> tuple[str, str]:
    """(revision, fingerprint): a hub repo's pinned commit, else the folder's content hash; explicit values win."""
    if revision is None:
        revision = commit if hub_id else f"sha:{folder_fingerprint(folder)}"  # type: ignore[arg-type]
    if fingerprint is None:
        fingerprint = (f"{hub_id}@{revision}" if hub_id else revision) + ("+l2" if normalize else "")
    return revision, fingerprint  # type: ignore[return-value]


class HfPoolingEncoder:
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
        import torch

        self._settings = settings = settings or EncodeSettings()
        self._pooling, self._normalize, self._prompts = check_pooling(pooling), normalize, dict(prompts or {})
        folder, hub_id, commit = _locate(model_ref, hub_revision)
        self.tokenizer, self.model = _load_transformers(model_ref, folder, commit, settings.trust_remote_code)
        if self.tokenizer.pad_token_id is None:
            if self.tokenizer.eos_token is None:
                raise ModelError(f"{model_ref}: the tokenizer has neither a pad nor an eos token")
            self.tokenizer.pad_token = self.tokenizer.eos_token
        accepted = inspect.signature(self.model.forward).parameters
        self._inputs = {"input_ids", "attention_mask"} | ({"token_type_ids"} & set(accepted))
        self._device = torch.device(settings.device)
        self.model.to(self._device).eval()
        self.max_length = settings.max_length or model_max_length(self.tokenizer, folder, self.model.config)
        revision, fingerprint = _identity(folder, hub_id, commit, revision, fingerprint, normalize)
        device_type, compute_dtype = torch_compute(self._device, self.model, autocast=True)
        self.meta = EncoderMeta(
            name=name or model_ref,
            revision=revision,
            fingerprint=fingerprint,
            dim=getattr(self.model.config, "hidden_size", None),
            max_tokens=self.max_length,
            pooling=pooling,
            prompts=self._prompts,
            source=source or (f"hf:{hub_id}@{commit}" if hub_id else f"local:{folder}"),
            license=license,
            device_type=device_type,
            compute_dtype=compute_dtype,
        )

    def _tokenize(self, texts: Sequence[str], role: str, truncate: bool = True) -> dict[str, list[list[int]]]:
        prompt = self._prompts.get(role, "")
        limit = self.max_length if truncate else None
        enc = self.tokenizer([prompt + t for t in texts], truncation=limit is not None, max_length=limit)
        return {k: list(v) for k, v in enc.items() if k in self._inputs}

    def _encode(self, texts: Sequence[str], role: str) -> np.ndarray:
        import torch
        from tqdm.auto import tqdm

        dim = self.meta.dim or 0
        if not texts:
            return np.zeros((0, dim), dtype=np.float32)
        enc = self._tokenize(texts, role)
        batches = length_sorted_batches([len(ids) for ids in enc["input_ids"]], self._settings.batch_size)
        left = self.tokenizer.padding_side == "left"
        cuda = self._device.type == "cuda"
        amp = cuda_autocast_dtype() if cuda else torch.bfloat16  # as meta.compute_dtype; autocast is off on CPU
        out: np.ndarray | None = None
        with torch.inference_mode(), torch.autocast(self._device.type, dtype=amp, enabled=cuda):
            for rows in tqdm(batches, desc="encode", disable=not self._settings.show_progress, leave=False):
                batch = {k: torch.from_numpy(v).to(self._device)
                         for k, v in pad_batch(enc, rows, self.tokenizer.pad_token_id, left).items()}
                hidden = self.model(**batch)[0]  # last_hidden_state, from a ModelOutput or a tuple
                vecs = pool(hidden.float(), batch["attention_mask"], self._pooling)
                if self._normalize:
                    vecs = torch.nn.functional.normalize(vecs, dim=-1)
                if out is None:
                    out = np.empty((len(texts), vecs.shape[1]), dtype=np.float32)
                out[rows] = vecs.cpu().numpy()
        return out  # type: ignore[return-value]

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, "query")

    def encode_documents(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, "document")

    def count_truncated(self, texts: Sequence[str], role: str) -> int:
        """How many texts (with the role's prompt) are longer than the max length in tokens."""
        if self.max_length is None:
            return 0
        return sum(len(ids) > self.max_length for ids in self._tokenize(texts, role, truncate=False)["input_ids"])
