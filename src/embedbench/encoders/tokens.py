"""Texts to padded, length-sorted token batches: the tokenizer side every transformer plugin shares.

The transformers, ONNX and pplx plugins and late chunking all tokenize texts once, sort them by
token length (longest first, stable) so each batch pads little, pad each batch to its longest
row, and put the vectors back in input order (`TokenizedEncoder` is that encode path). Also here:
the model's max length, how many texts it would truncate, and a pad token for tokenizers that have
none. numpy only at import time.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np

from embedbench.encoders.protocol import EncoderMeta
from embedbench.encoders.settings import EncodeSettings
from embedbench.errors import ModelError

TOKENIZER_FIELDS = ("input_ids", "attention_mask", "token_type_ids")


def tokenize(tokenizer, texts: Sequence[str], *, prompt: str = "", max_length: int | None = None,
             fields: Iterable[str] = TOKENIZER_FIELDS) -> dict[str, list[list[int]]]:
    """The tokenizer's `fields` for `prompt + text` of each text, truncated to `max_length` tokens (None: not)."""
    if not texts:
        return {"input_ids": []}
    enc = tokenizer([prompt + t for t in texts], truncation=max_length is not None, max_length=max_length)
    return {k: list(enc[k]) for k in fields if k in enc}


def truncated_flags(tokenizer, texts: Sequence[str], max_length: int | None, prompt: str = "") -> np.ndarray:
    """Per text (with `prompt` in front): whether it is longer than `max_length` tokens, special tokens included."""
    if max_length is None or not texts:
        return np.zeros(len(texts), dtype=bool)
    if not callable(tokenizer):  # a bare `tokenizers.Tokenizer` (StaticEmbedding): no special tokens, cut by itself
        rows = tokenizer.encode_batch([prompt + t for t in texts], add_special_tokens=False)
        return np.fromiter((len(r.ids) > max_length or bool(r.overflowing) for r in rows), dtype=bool, count=len(texts))
    ids = tokenizer([prompt + t for t in texts], add_special_tokens=True, truncation=False, verbose=False,
                    return_attention_mask=False, return_token_type_ids=False)["input_ids"]  # ids only: faster
    return np.fromiter((len(row) > max_length for row in ids), dtype=bool, count=len(texts))


def count_truncated(tokenizer, texts: Sequence[str], max_length: int | None, prompt: str = "") -> int:
    """How many texts (with `prompt` in front) are longer than `max_length` tokens, special tokens included."""
    return int(truncated_flags(tokenizer, texts, max_length, prompt).sum())


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


def ensure_pad_token(tokenizer, where: object) -> None:
    """Give a tokenizer without a pad token its eos token as one (decoders often ship none)."""
    if tokenizer.pad_token_id is None:
        if tokenizer.eos_token is None:
            raise ModelError(f"{where}: the tokenizer has neither a pad nor an eos token")
        tokenizer.pad_token = tokenizer.eos_token


def pad_token_id(tokenizer) -> int:
    """The id to pad with: the pad token, else the eos token, else 0 (the attention mask hides it either way)."""
    for attr in ("pad_token_id", "eos_token_id"):
        token_id = getattr(tokenizer, attr, None)
        if isinstance(token_id, int):
            return token_id
    return 0


def length_sorted_batches(lengths: Sequence[int], batch_size: int, *, skip_empty: bool = False) -> list[np.ndarray]:
    """Index batches over texts sorted longest first (stable), so each batch pads little.

    `skip_empty` leaves out texts of length 0 (callers that give them a zero vector without a forward pass).
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    order = np.argsort(-lengths, kind="stable")
    if skip_empty:
        order = order[lengths[order] > 0]
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


def padded_tensors(sequences: Sequence[Sequence[int]], pad_id: int) -> tuple[object, object]:
    """Right-padded (input_ids, attention_mask) CPU LongTensors for lists of token ids."""
    import torch

    encoded = {"input_ids": [list(s) for s in sequences], "attention_mask": [[1] * len(s) for s in sequences]}
    batch = pad_batch(encoded, range(len(sequences)), pad_id, left=False)
    return torch.from_numpy(batch["input_ids"]), torch.from_numpy(batch["attention_mask"])


def embed_in_input_order(n: int, batches: Iterable[np.ndarray], embed: Callable[[np.ndarray], np.ndarray],
                         dim: int | None) -> np.ndarray:
    """(n, d) float32: `embed(rows)` for each batch of row indices, put back in input order.

    Rows that no batch covers (texts skipped as empty) stay zero; with no batch at all, d is `dim` (or 0).
    """
    out: np.ndarray | None = None
    for rows in batches:
        vecs = embed(rows)
        if out is None:
            out = np.zeros((n, vecs.shape[1]), dtype=np.float32)
        out[rows] = vecs
    return out if out is not None else np.zeros((n, dim or 0), dtype=np.float32)


class TokenizedEncoder:
    """The encode path of the plugins that tokenize texts themselves (transformers, ONNX, pplx).

    Each text gets its role's prompt, is tokenized once (truncated to `max_length`), embedded in
    length-sorted batches by the subclass's `_embed_rows(encoded, rows)` and returned in input order.
    A subclass sets `tokenizer`, `max_length`, `meta`, `_prompts` and `_settings`; it may set `_fields`
    (the tokenizer outputs it feeds), `_skip_empty` (a text with no tokens keeps a zero vector and
    needs no forward pass) and override `_batch_context` (entered once around all batches).
    """

    tokenizer: object
    max_length: int | None
    meta: EncoderMeta
    _prompts: dict[str, str]
    _settings: EncodeSettings
    _fields: Iterable[str] = TOKENIZER_FIELDS
    _skip_empty = False

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, "query")

    def encode_documents(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, "document")

    def count_truncated(self, texts: Sequence[str], role: str) -> int:
        """How many texts (with the role's prompt) are longer than the max length in tokens."""
        return int(self.truncated_flags(texts, role).sum())

    def truncated_flags(self, texts: Sequence[str], role: str) -> np.ndarray:
        """Per text (with the role's prompt): whether it is longer than the max length in tokens."""
        if self.max_length is None or not texts:  # nothing to tokenize: the tokenizer need not load
            return np.zeros(len(texts), dtype=bool)
        return truncated_flags(self.tokenizer, texts, self.max_length, self._prompts.get(role, ""))

    def _tokenize(self, texts: Sequence[str], role: str) -> dict[str, list[list[int]]]:
        return tokenize(self.tokenizer, texts, prompt=self._prompts.get(role, ""), max_length=self.max_length,
                        fields=self._fields)

    def _batches(self, encoded: dict[str, list[list[int]]]) -> Iterable[np.ndarray]:
        lengths = [len(ids) for ids in encoded["input_ids"]]
        return length_sorted_batches(lengths, self._settings.batch_size, skip_empty=self._skip_empty)

    def _batch_context(self) -> contextlib.AbstractContextManager:
        return contextlib.nullcontext()

    def _embed_rows(self, encoded: dict[str, list[list[int]]], rows: np.ndarray) -> np.ndarray:
        """float32 (len(rows), d) vectors of the chosen rows of the tokenized texts."""
        raise NotImplementedError

    def _encode(self, texts: Sequence[str], role: str) -> np.ndarray:
        encoded = self._tokenize(texts, role)
        with self._batch_context():
            return embed_in_input_order(len(texts), self._batches(encoded),
                                        lambda rows: self._embed_rows(encoded, rows), self.meta.dim)
