"""Late chunking: one forward pass over a document's chunks, one mean-pooled vector per chunk.

Works for any transformer whose sentence vector is the mean of its token states (pplx-embed,
all-MiniLM, e5, ...). The contextual pplx models (`pplx-embed-context-v1-*`) are trained for exactly
this use; for a non-contextual model it is the "context=late-chunking" variant, so the same model can
be compared with and without document context.

How a document becomes sequences
--------------------------------
Every chunk is tokenized on its own *without* special tokens. The chunks of one document are joined
in order with a separator token between consecutive chunks (the tokenizer's `sep_token`, else its
`eos_token`, else nothing), and wrapped in the special tokens the tokenizer itself adds to a single
text (e.g. BERT's `[CLS] ... [SEP]`; none for Qwen/pplx):

    prefix  [prompt]  chunk_1  sep  chunk_2  sep ... chunk_n  suffix

A chunk's vector is the mean of the final hidden states at *its own* token positions only: special
tokens, the optional prompt and the separators are context, never part of any chunk's mean.

Windows: context is limited to the window holding the chunk
----------------------------------------------------------
A document whose joined sequence is longer than `max_length` tokens is split into consecutive
windows of *whole* chunks, packed greedily in document order so that each window (with its special
tokens, prompt and separators) fits in `max_length`; each window is its own forward pass. A chunk
therefore sees only the chunks of its own window, not the whole document. A single chunk longer than
the window is truncated to fit and sits alone in its window (its vector is the mean of the kept
tokens). A chunk with no tokens (an empty string) gets a zero vector.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from embedbench.encoders.pooling import span_means
from embedbench.encoders.tokens import length_sorted_batches, pad_token_id, padded_tensors
from embedbench.errors import ModelError

ForwardFn = Callable[..., object]  # (input_ids LongTensor (B, L), attention_mask LongTensor (B, L)) -> (B, L, H)


@dataclass(frozen=True)
class Window:
    """One forward pass: token ids plus, for each chunk it holds, (doc index, chunk index, start, end)."""

    input_ids: list[int]
    spans: list[tuple[int, int, int, int]]


def special_tokens_around(tokenizer: object) -> tuple[list[int], list[int]]:
    """The ids the tokenizer puts before and after a single text (e.g. [CLS] / [SEP]); empty for Qwen."""
    probe = "hello world"
    with_special = tokenizer(probe, add_special_tokens=True)["input_ids"]  # type: ignore[operator]
    plain = tokenizer(probe, add_special_tokens=False)["input_ids"]  # type: ignore[operator]
    n = len(plain)
    for start in range(len(with_special) - n + 1):
        if with_special[start : start + n] == plain:
            return list(with_special[:start]), list(with_special[start + n :])
    return [], []


def separator_ids(tokenizer: object) -> list[int]:
    """The separator between chunks: the tokenizer's sep token, else its eos token, else none."""
    for attr in ("sep_token_id", "eos_token_id"):
        token_id = getattr(tokenizer, attr, None)
        if isinstance(token_id, int):
            return [token_id]
    return []


def build_windows(
    chunk_ids: Sequence[Sequence[Sequence[int]]],
    *,
    max_length: int,
    prefix: Sequence[int] = (),
    suffix: Sequence[int] = (),
    separator: Sequence[int] = (),
) -> list[Window]:
    """Pack each document's tokenized chunks into windows of whole chunks that fit in `max_length`.

    `chunk_ids[d][c]` are the ids of chunk c of document d (no special tokens). `prefix` (special
    tokens and prompt) and `suffix` wrap every window; `separator` goes between consecutive chunks.
    """
    budget = max_length - len(prefix) - len(suffix)
    if budget < 1:
        raise ModelError(f"max length {max_length} leaves no room for chunk tokens")
    sep = list(separator)
    windows: list[Window] = []
    for d, chunks in enumerate(chunk_ids):
        body: list[int] = []
        spans: list[tuple[int, int, int, int]] = []

        def close() -> None:
            if spans:
                windows.append(Window([*prefix, *body, *suffix], list(spans)))

        for c, ids in enumerate(chunks):
            ids = list(ids)[:budget]  # a chunk longer than the window is truncated to it
            joiner = sep if spans else []
            if spans and len(body) + len(joiner) + len(ids) > budget:
                close()
                body, spans, joiner = [], [], []
            start = len(prefix) + len(body) + len(joiner)
            body.extend(joiner)
            body.extend(ids)
            spans.append((d, c, start, start + len(ids)))
        close()
    return windows


def late_chunk_encode(
    tokenizer: object,
    forward_fn: ForwardFn,
    documents: Sequence[Sequence[str]],
    max_length: int,
    batch_size: int,
    *,
    prompt: str = "",
    dim: int | None = None,
) -> list[np.ndarray]:
    """Encode each document's chunks with late chunking; returns one float32 (n_chunks, dim) array per document.

    `tokenizer` is a Hugging Face tokenizer; `forward_fn(input_ids, attention_mask)` returns the final
    hidden states (B, L, H) for right-padded CPU LongTensors (it moves them to its device and runs
    under no_grad/autocast as it likes). `prompt` (e.g. "passage: ") is put after the leading special
    tokens of every window, as context only. `dim` sizes the arrays of documents with no chunks when no
    forward pass ran. See the module docstring for the joining and windowing rules: context is limited
    to the window holding the chunk.
    """
    if batch_size < 1:
        raise ModelError("batch size must be at least 1")
    windows = tokenize_into_windows(tokenizer, documents, max_length, prompt)
    vectors = embed_windows(windows, forward_fn, batch_size, pad_token_id(tokenizer))
    if dim is None and vectors:
        dim = len(next(iter(vectors.values())))
    return stack_per_document(documents, vectors, dim or 0)


def tokenize_chunks(tokenizer: object, documents: Sequence[Sequence[str]]) -> list[list[list[int]]]:
    """`ids[d][c]`: the token ids of chunk c of document d, without special tokens (one tokenizer call)."""
    flat = [chunk for doc in documents for chunk in doc]
    flat_ids = tokenizer(flat, add_special_tokens=False)["input_ids"] if flat else []  # type: ignore[operator]
    chunk_ids: list[list[list[int]]] = []
    pos = 0
    for doc in documents:
        chunk_ids.append([list(ids) for ids in flat_ids[pos : pos + len(doc)]])
        pos += len(doc)
    return chunk_ids


def tokenize_into_windows(tokenizer: object, documents: Sequence[Sequence[str]], max_length: int,
                          prompt: str = "") -> list[Window]:
    """The documents' chunks, tokenized and packed into windows wrapped in the tokenizer's special tokens."""
    lead, trail = special_tokens_around(tokenizer)
    prompt_ids = list(tokenizer(prompt, add_special_tokens=False)["input_ids"]) if prompt else []  # type: ignore
    return build_windows(
        tokenize_chunks(tokenizer, documents),
        max_length=max_length,
        prefix=[*lead, *prompt_ids],
        suffix=trail,
        separator=separator_ids(tokenizer),
    )


def embed_windows(windows: Sequence[Window], forward_fn: ForwardFn, batch_size: int,
                  pad_id: int) -> dict[tuple[int, int], np.ndarray]:
    """(doc index, chunk index) -> float32 chunk vector: one forward pass per window, longest windows first.

    A window with no tokens at all (only empty chunks, no special tokens) needs no forward pass: its
    chunks get no entry here (and a zero vector from `stack_per_document`).
    """
    import torch

    vectors: dict[tuple[int, int], np.ndarray] = {}
    lengths = [len(w.input_ids) for w in windows]
    for rows in length_sorted_batches(lengths, batch_size, skip_empty=True):
        batch = [windows[i] for i in rows]
        input_ids, attention_mask = padded_tensors([w.input_ids for w in batch], pad_id)
        spans = [(row, s, e) for row, w in enumerate(batch) for _, _, s, e in w.spans]
        with torch.inference_mode():
            stacked = span_means(forward_fn(input_ids, attention_mask), spans).cpu().numpy().astype(np.float32)
        keys = [(d, c) for w in batch for d, c, _, _ in w.spans]
        vectors.update(zip(keys, stacked))
    return vectors


def stack_per_document(documents: Sequence[Sequence[str]], vectors: dict[tuple[int, int], np.ndarray],
                       dim: int) -> list[np.ndarray]:
    """One float32 (n_chunks, dim) array per document, chunks in order; a chunk without a vector is zero."""
    zero = np.zeros(dim, dtype=np.float32)
    return [
        np.stack([vectors.get((d, c), zero) for c in range(len(doc))]).astype(np.float32) if doc
        else np.zeros((0, dim), dtype=np.float32)
        for d, doc in enumerate(documents)
    ]


class LateChunkingWrapper:
    """Adds `encode_nested` (late chunking) to a sentence-transformers mean-pooling encoder.

    `encoder` is a `SentenceTransformerEncoder` (anything with `.model`, a SentenceTransformer, and
    `.meta`): queries and documents are encoded by it unchanged; nested documents run through its
    first module's `auto_model` and tokenizer with `late_chunk_encode`, chunk vectors being means of
    token states like its own Pooling(mean). Only Transformer -> Pooling(mean) [-> Normalize]
    pipelines are accepted (a Dense head or another pooling would make chunk vectors live in a
    different space from the model's own). The document prompt, if any, is context for every window.
    The harness names this variant `context=late-chunking`.
    """

    def __init__(self, encoder: object, *, batch_size: int | None = None, max_length: int | None = None) -> None:
        st = getattr(encoder, "model", None)
        if st is None or not hasattr(st, "__getitem__"):
            raise ModelError("late chunking needs a sentence-transformers encoder (with .model)")
        self.encoder = encoder
        self.meta = encoder.meta  # type: ignore[attr-defined]
        self._st = st
        first = st[0]
        self._auto_model = getattr(first, "auto_model", None) or getattr(first, "model", None)
        self._tokenizer = getattr(first, "tokenizer", None) or getattr(st, "tokenizer", None)
        if self._auto_model is None or self._tokenizer is None:
            raise ModelError("late chunking needs the first module to hold a transformers model and tokenizer")
        _check_mean_pooling(st)
        settings = getattr(encoder, "_settings", None)
        self._batch_size = batch_size or getattr(settings, "batch_size", None) or 32
        self._max_length = max_length or int(st.max_seq_length)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self.encoder.encode_queries(texts)  # type: ignore[attr-defined]

    def encode_documents(self, texts: Sequence[str]) -> np.ndarray:
        return self.encoder.encode_documents(texts)  # type: ignore[attr-defined]

    def count_truncated(self, texts: Sequence[str], role: str) -> int:
        return self.encoder.count_truncated(texts, role)  # type: ignore[attr-defined]

    def truncated_flags(self, texts: Sequence[str], role: str) -> np.ndarray:
        return self.encoder.truncated_flags(texts, role)  # type: ignore[attr-defined]

    def _forward(self, input_ids: object, attention_mask: object) -> object:
        device = self._st.device
        ids, mask = input_ids.to(device), attention_mask.to(device)  # type: ignore[attr-defined]
        out = self._auto_model(input_ids=ids, attention_mask=mask)
        return out.last_hidden_state if hasattr(out, "last_hidden_state") else out[0]

    def encode_nested(self, documents: Sequence[Sequence[str]]) -> list[np.ndarray]:
        return late_chunk_encode(
            self._tokenizer,
            self._forward,
            documents,
            self._max_length,
            self._batch_size,
            prompt=self.meta.prompts.get("document", ""),
            dim=self.meta.dim,
        )


def _pooling_mode(module: object) -> object:
    mode = getattr(module, "pooling_mode", None)
    if mode is None and hasattr(module, "get_pooling_mode_str"):  # sentence-transformers 5.x
        mode = module.get_pooling_mode_str()
    return mode


def _check_mean_pooling(st: object) -> None:
    modules = list(st)  # type: ignore[call-overload]
    names = [type(m).__name__ for m in modules]
    pooling = [m for m in modules if type(m).__name__ == "Pooling"]
    if len(pooling) != 1 or _pooling_mode(pooling[0]) != "mean":
        raise ModelError(f"late chunking needs mean pooling; this model's modules are {names}")
    if any(n not in {"Transformer", "Pooling", "Normalize"} for n in names[1:]):
        raise ModelError(f"late chunking supports Transformer -> Pooling(mean) [-> Normalize]; got {names}")
