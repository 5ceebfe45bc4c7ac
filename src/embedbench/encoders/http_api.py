"""Embedding models served over HTTP, behind the encoder contract.

Two wire shapes:

* OpenAI-compatible `POST {base}/embeddings` (OpenAI, Text Embeddings Inference, vLLM):
  `{"model", "input": [text, ...], "encoding_format", "dimensions"?}` ->
  `{"data": [{"index", "embedding"}, ...]}`; `embedding` is a list of floats (`float`) or
  base64 little-endian float32 (`base64`).
* Perplexity's pplx-embed API: the same request with `encoding_format` `base64_int8` (signed int8
  codes, one byte per dimension) or `base64_binary` (packed sign bits, LSB first, dimensions/8
  bytes), and `POST {base}/contextualizedembeddings` taking `input: [[chunk, ...], ...]` and
  answering `{"data": [{"index": doc, "data": [{"index": chunk, "embedding"}, ...]}, ...]}`.

Quantized endpoints never reveal the pre-quantization float, so the "float" vectors returned here
are the decoded codes cast to float32: int8 codes keep their integer values (-128..127), binary
bits become +1 (bit set) / -1. `meta.served_precision` says what they are (int8 / binary), so the
runner records such a model's results at that precision and refuses finer ones (an "fp32" result
would be the int8 number at 4·d bytes); `meta.native_quantizers` maps the harness's precisions back
onto the server's codes:

* int8 endpoint: "int8" -> the codes themselves as int8 (`rint`, clipped; exact on the returned
  vectors and on any MRL prefix of them); "binary" -> `codes >= 0`. For pplx-embed, whose code is
  `round(tanh(x) * 127)`, this equals the model's own binary `x >= 0` except where
  `-atanh(0.5 / 127) < x < 0` (|x| < 0.0039), which rounds to code 0 and so sets the bit.
* binary endpoint: "binary" -> `codes >= 0` (exactly the served bits); no native int8.
* float endpoints: none (the harness quantizes post hoc).
"""

from __future__ import annotations

import base64
import binascii
import math
import urllib.parse
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from embedbench.encoders.http_client import HttpClient
from embedbench.encoders.protocol import EncoderMeta
from embedbench.encoders.settings import EncodeSettings
from embedbench.errors import ModelError

FORMATS = ("float", "base64", "base64_int8", "base64_binary")
ENDPOINTS = ("embeddings", "contextualized")
PPLX_HOST = "api.perplexity.ai"
PPLX_KEY_ENV = "PERPLEXITY_API_KEY"
DEFAULT_MAX_CHARS = 400_000  # about 100K tokens: under pplx's 120K tokens per request
PPLX_MAX_DOCUMENTS = 512
PPLX_MAX_CHUNKS = 16_000

_FLOAT_NOTES = {
    "float": "the server's float embedding",
    "base64": "the server's float embedding (base64 float32)",
    "base64_int8": (
        "the API's int8 codes (pplx-embed: round(tanh(x)*127)); the pre-quantization float is not served, "
        "so results are int8 (or coarser), never fp32"
    ),
    "base64_binary": (
        "the API's binary codes as +1/-1 float32; the pre-quantization float is not served, so results "
        "are binary only"
    ),
}
# What the vectors are when they arrive (EncoderMeta.served_precision): the runner records an int8
# endpoint's result as int8 (native: quantized by the server, d bytes) and refuses finer precisions.
SERVED_PRECISION = {"float": "fp32", "base64": "fp32", "base64_int8": "int8", "base64_binary": "binary"}


def int8_codes(x: np.ndarray) -> np.ndarray:
    """Native int8 for an int8 endpoint: the served codes (float32 holding integers) back as int8."""
    return np.clip(np.rint(x), -128, 127).astype(np.int8)


def nonnegative_bits(x: np.ndarray) -> np.ndarray:
    """Native binary for a quantized endpoint: bit set where the served code is >= 0."""
    return np.asarray(x) >= 0


# The harness's precisions mapped onto a quantized endpoint's codes (see the module docstring).
NATIVE_BY_FORMAT = {
    "base64_int8": {"int8": int8_codes, "binary": nonnegative_bits},
    "base64_binary": {"binary": nonnegative_bits},
}


def _check_options(model: str, encoding_format: str, dimensions: int | None, batch_size: int, max_chars: int,
                   bitorder: str) -> None:
    if encoding_format not in FORMATS:
        raise ModelError(f"encoding format must be one of {', '.join(FORMATS)}, got {encoding_format!r}")
    if dimensions is not None and dimensions < 1:
        raise ModelError(f"dimensions must be positive, got {dimensions}")
    if batch_size < 1 or max_chars < 1:
        raise ModelError("batch size and max characters per request must be at least 1")
    if bitorder not in ("little", "big"):
        raise ModelError(f"bit order must be little or big, got {bitorder!r}")
    if not model:
        raise ModelError("an HTTP embedding model needs a server model id")


def decode_embedding(value: object, encoding_format: str, *, dimensions: int | None = None,
                     bitorder: str = "little") -> np.ndarray:
    """One served embedding as a float32 vector; ValueError (with a short reason) if it is malformed."""
    if encoding_format == "float":
        if not isinstance(value, list) or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                  for v in value):
            raise ValueError("expected a list of numbers")
        return np.asarray(value, dtype=np.float32)
    if not isinstance(value, str):
        raise ValueError(f"expected a base64 string for {encoding_format}")
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("invalid base64") from None
    if encoding_format == "base64":
        if len(raw) % 4:
            raise ValueError(f"{len(raw)} bytes is not a whole number of float32 values")
        return np.frombuffer(raw, dtype="<f4").astype(np.float32)
    if encoding_format == "base64_int8":
        return np.frombuffer(raw, dtype=np.int8).astype(np.float32)
    if encoding_format == "base64_binary":
        if dimensions is not None and len(raw) != math.ceil(dimensions / 8):
            raise ValueError(f"{len(raw)} packed bytes for {dimensions} dimensions")
        bits = np.unpackbits(np.frombuffer(raw, dtype=np.uint8), count=dimensions, bitorder=bitorder)
        return bits.astype(np.float32) * 2 - 1
    raise ValueError(f"unknown encoding format {encoding_format!r}")


def plan_requests(chars: Sequence[int], *, max_items: int, max_chars: int,
                  units: Sequence[int] | None = None, max_units: int | None = None) -> list[range]:
    """Split items into consecutive ranges, each within `max_items`, `max_chars` and `max_units`.

    An item that alone exceeds `max_chars` still gets a request of its own (the server decides);
    `units` (chunks per document) are a hard API limit, so one item over `max_units` is an error.
    """
    ranges: list[range] = []
    start, n_chars, n_units = 0, 0, 0
    for i, size in enumerate(chars):
        unit = units[i] if units is not None else 0
        if max_units is not None and unit > max_units:
            raise ModelError(f"document {i} has {unit} chunks, over the API limit of {max_units} per request")
        full = (i - start >= max_items or (i > start and n_chars + size > max_chars)
                or (max_units is not None and n_units + unit > max_units))
        if full:
            ranges.append(range(start, i))
            start, n_chars, n_units = i, 0, 0
        n_chars += size
        n_units += unit
    if start < len(chars):
        ranges.append(range(start, len(chars)))
    return ranges


class HttpEmbeddingEncoder:
    """An embedding model behind an HTTP API (see the module docstring for the wire shapes).

    `prompts` ({"query": ..., "document": ...}) prefix texts client-side. Requests carry at most
    `batch_size` texts and `max_chars` characters (a longer single text goes alone); they are sent
    one after another, each through `HttpClient`'s retries.
    """

    endpoint = "embeddings"

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        name: str | None = None,
        encoding_format: str = "float",
        dimensions: int | None = None,
        api_key_env: str | None = None,
        prompts: dict[str, str] | None = None,
        batch_size: int = 32,
        max_chars: int = DEFAULT_MAX_CHARS,
        timeout: float = 60,
        max_retries: int = 5,
        bitorder: str = "little",
        client: HttpClient | None = None,
        source: str = "",
        license: str | None = None,
    ) -> None:
        _check_options(model, encoding_format, dimensions, batch_size, max_chars, bitorder)
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.encoding_format = encoding_format
        self.dimensions = dimensions
        self.batch_size = batch_size
        self.max_chars = max_chars
        self.bitorder = bitorder
        self.client = client or HttpClient(self.base_url, api_key_env=api_key_env, timeout=timeout,
                                           max_retries=max_retries)
        self._prompts = dict(prompts or {})
        self.meta = self._describe(name, source, license)

    def _describe(self, name: str | None, source: str, license: str | None) -> EncoderMeta:
        """The meta record: the server, model id and wire format key the vectors (there are no local weights)."""
        fingerprint = f"http:{self.base_url}#{self.model}#{self.encoding_format}#{self.dimensions}"
        if self.bitorder != "little" and self.encoding_format == "base64_binary":
            fingerprint += f"#bitorder={self.bitorder}"
        return EncoderMeta(
            name=name or f"{self.model}@{urllib.parse.urlsplit(self.base_url).netloc}",
            revision=fingerprint,
            fingerprint=fingerprint,
            dim=self.dimensions,
            prompts=self._prompts,
            native_quantizers=dict(NATIVE_BY_FORMAT.get(self.encoding_format, {})),
            float_note=_FLOAT_NOTES[self.encoding_format],
            source=source or f"http:{self.base_url}",
            license=license,
            served_precision=SERVED_PRECISION[self.encoding_format],
            libraries=(),  # the server computes the vectors: no local torch stack touches them
        )

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(base_url={self.base_url!r}, model={self.model!r}, "
                f"encoding_format={self.encoding_format!r}, dimensions={self.dimensions!r}, "
                f"api_key_env={self.client.api_key_env!r})")

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, self._prompts.get("query", ""))

    def encode_documents(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, self._prompts.get("document", ""))

    def _encode(self, texts: Sequence[str], prompt: str) -> np.ndarray:
        inputs = [prompt + t for t in texts]
        if not inputs:
            return np.zeros((0, self.meta.dim or 0), dtype=np.float32)
        parts = [self._embed_batch(inputs[r.start:r.stop])
                 for r in plan_requests([len(t) for t in inputs], max_items=self.batch_size, max_chars=self.max_chars)]
        return np.concatenate(parts)

    def _payload(self, inputs: list) -> dict:
        payload: dict = {"model": self.model, "input": inputs, "encoding_format": self.encoding_format}
        if self.dimensions is not None:
            payload["dimensions"] = self.dimensions
        return payload

    def _embed_batch(self, inputs: list[str]) -> np.ndarray:
        where = self.client.url("embeddings")
        response = self.client.post_json("embeddings", self._payload(inputs))
        return self._vectors(_ordered(response.get("data"), len(inputs), where, "embeddings"), where)

    def _vectors(self, values: list[object], where: str) -> np.ndarray:
        """Decode, then check the count, one dimension across every response, and finiteness."""
        rows = []
        for i, value in enumerate(values):
            try:
                rows.append(decode_embedding(value, self.encoding_format, dimensions=self.dimensions,
                                             bitorder=self.bitorder))
            except ValueError as exc:
                raise ModelError(f"{where}: embedding {i} is malformed ({self.encoding_format}): {exc}") from None
        dims = {len(r) for r in rows}
        if len(dims) > 1:
            raise ModelError(f"{where}: embeddings of different lengths in one response: {sorted(dims)}")
        (dim,) = dims
        expected = self.dimensions if self.dimensions is not None else self.meta.dim
        if dim == 0:
            raise ModelError(f"{where}: the server returned empty embeddings")
        if expected is not None and dim != expected:
            raise ModelError(f"{where}: expected {expected}-dimensional embeddings, got {dim}")
        matrix = np.stack(rows).astype(np.float32, copy=False)
        if not np.isfinite(matrix).all():
            bad = int((~np.isfinite(matrix)).any(axis=1).sum())
            raise ModelError(f"{where}: {bad} embedding(s) contain NaN or infinite values")
        if self.meta.dim is None:
            self.meta = replace(self.meta, dim=dim)
        return matrix


class HttpContextualEncoder(HttpEmbeddingEncoder):
    """Perplexity's contextualized endpoint: chunk vectors that see their whole document.

    Requests are bounded by the API's limits: `max_documents` (512) documents, `max_chunks`
    (16,000) chunks and `max_chars` characters; a document is never split across requests (one
    with more chunks than `max_chunks` is an error). Queries and stand-alone documents are sent as
    one-chunk documents. Prompts prefix texts in `encode_queries`/`encode_documents` only; chunks in
    `encode_nested` are sent as given. `batch_size` is not used here.
    """

    endpoint = "contextualized"

    def __init__(self, base_url: str, model: str, *, max_documents: int = PPLX_MAX_DOCUMENTS,
                 max_chunks: int = PPLX_MAX_CHUNKS, **kwargs) -> None:
        super().__init__(base_url, model, **kwargs)
        if max_documents < 1 or max_chunks < 1:
            raise ModelError("max documents and max chunks per request must be at least 1")
        self.max_documents = max_documents
        self.max_chunks = max_chunks

    def _encode(self, texts: Sequence[str], prompt: str) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.meta.dim or 0), dtype=np.float32)
        return np.concatenate(self._nested([[prompt + t] for t in texts]))

    def encode_nested(self, documents: Sequence[Sequence[str]]) -> list[np.ndarray]:
        """One (n_chunks, dim) float32 array per document, chunks in order."""
        return self._nested([list(doc) for doc in documents])

    def _nested(self, documents: list[list[str]]) -> list[np.ndarray]:
        if any(not doc for doc in documents):
            raise ModelError("a document for the contextualized endpoint needs at least one chunk")
        plan = plan_requests([sum(len(c) for c in doc) for doc in documents], max_items=self.max_documents,
                             max_chars=self.max_chars, units=[len(doc) for doc in documents],
                             max_units=self.max_chunks)
        out: list[np.ndarray] = []
        for r in plan:
            out.extend(self._embed_documents(documents[r.start:r.stop]))
        return out

    def _embed_documents(self, documents: list[list[str]]) -> list[np.ndarray]:
        where = self.client.url("contextualizedembeddings")
        response = self.client.post_json("contextualizedembeddings", self._payload(documents))
        per_doc = _ordered(response.get("data"), len(documents), where, "documents", key="data")
        values: list[object] = []
        for d, (doc, items) in enumerate(zip(documents, per_doc)):
            values.extend(_ordered(items, len(doc), where, f"chunk embeddings for document {d}"))
        matrix = self._vectors(values, where)
        bounds = np.cumsum([0] + [len(doc) for doc in documents])
        return [matrix[bounds[i]:bounds[i + 1]] for i in range(len(documents))]


def _ordered(items: object, n: int, where: str, what: str, key: str = "embedding") -> list[object]:
    """`items[*][key]` in `index` order, checking there is exactly one per input."""
    if not isinstance(items, list) or not all(isinstance(it, dict) and key in it for it in items):
        raise ModelError(f"{where}: the response has no list of {what} (a 'data' list of objects with {key!r})")
    if len(items) != n:
        raise ModelError(f"{where}: expected {n} {what}, got {len(items)}")
    indices = [it.get("index") for it in items]
    if all(i is None for i in indices):
        return [it[key] for it in items]
    if sorted(i for i in indices if isinstance(i, int) and not isinstance(i, bool)) != list(range(n)):
        raise ModelError(f"{where}: the {what} indices are not 0..{n - 1} once each")
    ordered: list[object] = [None] * n
    for i, it in zip(indices, items):
        ordered[i] = it[key]
    return ordered


_PARAMS = ("model", "format", "dimensions", "api_key_env", "name", "endpoint", "batch_size", "max_chars",
           "max_documents", "max_chunks", "query_prompt", "document_prompt", "timeout", "max_retries", "bitorder")


def from_url(spec: str, settings: EncodeSettings | None = None) -> HttpEmbeddingEncoder:
    """Build an HTTP encoder from a model reference.

    Grammar::

        REF   := ("http" | "https") "://" HOST [":" PORT] [PATH] "?" PARAM ("&" PARAM)*
        PARAM := model=ID                      (required) the server's model id
               | format=FORMAT                 float | base64 | base64_int8 | base64_binary;
                                               default base64_int8 on api.perplexity.ai, else float
               | dimensions=N                  ask the server for N dimensions (MRL); default: the model's
               | api_key_env=VAR               send $VAR as a Bearer token; default PERPLEXITY_API_KEY on
                                               api.perplexity.ai, else no Authorization header
               | name=NAME                     the model name in results; default ID@HOST[:PORT]
               | endpoint=embeddings|contextualized
                                               default contextualized when ID contains "pplx-embed-context"
               | batch_size=N                  texts per request (endpoint=embeddings only);
                                               default settings.batch_size
               | max_chars=N                   characters per request; default 400000
               | max_documents=N | max_chunks=N  per request (endpoint=contextualized only);
                                               default 512 and 16000, the pplx API's limits
               | query_prompt=TEXT | document_prompt=TEXT   prefixes (percent-encoded)
               | timeout=SECONDS | max_retries=N    defaults 60 and 5
               | bitorder=little|big           packed-bit order of base64_binary; default little (pplx)

    PATH is the API root that `/embeddings` (or `/contextualizedembeddings`) is appended to;
    default `/v1`. Each parameter may appear once. The key itself never goes in the reference (it
    would end up in results): `api_key`, user:password@ and fragments are refused.
    Example: `http://127.0.0.1:8080/v1?model=foo&format=base64_int8&dimensions=256&api_key_env=PPLX_API_KEY`.
    """
    settings = settings or EncodeSettings()
    if settings.dtype != "auto":  # the server computes the vectors; nothing here could honour it
        raise ModelError(f"--dtype {settings.dtype}: an HTTP embedding API computes on its server, in its own "
                         f"dtype; use --dtype auto")
    parts = urllib.parse.urlsplit(spec)
    params = _reference_params(spec, parts)
    model = params["model"]
    base_url = urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/") or "/v1", "", ""))
    endpoint = params.get("endpoint") or ("contextualized" if "pplx-embed-context" in model else "embeddings")
    if endpoint not in ENDPOINTS:
        raise ModelError(f"endpoint must be one of {', '.join(ENDPOINTS)}, got {endpoint!r}")
    options = _encoder_options(params, base_url, is_pplx=parts.hostname == PPLX_HOST)
    if endpoint == "contextualized":
        return _contextual_encoder(base_url, model, params, options)
    for key in ("max_documents", "max_chunks"):
        if key in params:
            raise ModelError(f"{key} applies only to endpoint=contextualized")
    batch_size = _number(params, "batch_size", int) or settings.batch_size
    return HttpEmbeddingEncoder(base_url, model, batch_size=batch_size, **options)


def _reference_params(spec: str, parts: urllib.parse.SplitResult) -> dict[str, str]:
    """The reference's query parameters, each known and given once, with model=ID among them; no secrets."""
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ModelError(f"an HTTP model reference looks like http://HOST:PORT/v1?model=ID, got {spec!r}")
    if parts.username is not None or parts.password is not None or parts.fragment:
        raise ModelError("an HTTP model reference takes no user:password@ or #fragment; "
                         "name the key's environment variable with api_key_env=VAR")
    try:
        pairs = urllib.parse.parse_qsl(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
    except ValueError:
        raise ModelError(f"cannot parse the query string of HTTP model reference {spec!r}") from None
    params: dict[str, str] = {}
    for key, value in pairs:
        if key in ("api_key", "key", "token", "apikey"):
            raise ModelError("never put an API key in a model reference; use api_key_env=VAR")
        if key not in _PARAMS:
            raise ModelError(f"unknown parameter {key!r} in HTTP model reference; known: {', '.join(_PARAMS)}")
        if key in params:
            raise ModelError(f"parameter {key!r} appears twice in HTTP model reference")
        params[key] = value
    if not params.get("model"):
        raise ModelError(f"HTTP model reference needs model=ID (the server's model id): {spec!r}")
    return params


def _encoder_options(params: dict[str, str], base_url: str, *, is_pplx: bool) -> dict:
    """Keyword options both endpoints take, with the defaults for the pplx API on api.perplexity.ai."""
    prompts = {role: params[f"{role}_prompt"] for role in ("query", "document") if params.get(f"{role}_prompt")}
    return dict(
        name=params.get("name") or None,
        encoding_format=params.get("format") or ("base64_int8" if is_pplx else "float"),
        dimensions=_number(params, "dimensions", int),
        api_key_env=params.get("api_key_env") or (PPLX_KEY_ENV if is_pplx else None),
        prompts=prompts,
        max_chars=_number(params, "max_chars", int) or DEFAULT_MAX_CHARS,
        timeout=_number(params, "timeout", float) or 60.0,
        max_retries=_number(params, "max_retries", int, default=5),
        bitorder=params.get("bitorder") or "little",
        source=f"http:{base_url}",
    )


def _contextual_encoder(base_url: str, model: str, params: dict[str, str], options: dict) -> HttpContextualEncoder:
    if "batch_size" in params:
        raise ModelError("batch_size applies only to endpoint=embeddings; use max_documents=N")
    return HttpContextualEncoder(
        base_url, model,
        max_documents=_number(params, "max_documents", int) or PPLX_MAX_DOCUMENTS,
        max_chunks=_number(params, "max_chunks", int) or PPLX_MAX_CHUNKS,
        **options,
    )


def _number(params: dict[str, str], key: str, kind: type, default=None):
    if not params.get(key):
        return default
    try:
        value = kind(params[key])
    except ValueError:
        raise ModelError(f"{key} must be a number, got {params[key]!r}") from None
    if value < 0 or (kind is int and key != "max_retries" and value == 0) or (kind is float and value == 0):
        raise ModelError(f"{key} must be positive, got {params[key]!r}")
    return value
