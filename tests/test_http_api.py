"""The HTTP client and the HTTP embedding encoders, against a real server on 127.0.0.1."""

from __future__ import annotations

import socket
import time
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import numpy as np
import pytest
from http_fakes import (  # noqa: F401  (fake_api_server is a fixture)
    FakeApiServer,
    contextual_vector,
    fake_api_server,
    float_vector,
    int8_codes,
    sign_codes,
)

from embedbench.encoders.http_api import (
    HttpContextualEncoder,
    HttpEmbeddingEncoder,
    from_url,
    plan_requests,
)
from embedbench.encoders.protocol import Encoder, NestedEncoder
from embedbench.encoders.settings import EncodeSettings
from embedbench.errors import ModelError
from embedbench.encoders.http_client import HttpClient, parse_retry_after

KEY = "sk-test-0123456789abcdef"
TEXTS = [f"text number {i}" for i in range(10)]


def client_for(server: FakeApiServer, sleeps: list[float] | None = None, **kwargs) -> HttpClient:
    kwargs.setdefault("timeout", 5)
    return HttpClient(server.url, api_key_env=kwargs.pop("api_key_env", None),
                      sleep=(sleeps.append if sleeps is not None else _no_sleep), **kwargs)


def encoder_for(server: FakeApiServer, sleeps: list[float] | None = None, *, client_kwargs=None,
                cls=HttpEmbeddingEncoder, **kwargs) -> HttpEmbeddingEncoder:
    client = client_for(server, sleeps, **(client_kwargs or {}))
    return cls(server.url, "fake-model", client=client, **kwargs)


def _no_sleep(seconds: float) -> None:
    pass


def expected_floats(texts: list[str], dim: int) -> np.ndarray:
    return np.stack([float_vector(t, dim) for t in texts])


# -- the encoder over /v1/embeddings -------------------------------------------------------------------

def test_batches_by_count_and_orders_by_index(fake_api_server):
    server = fake_api_server(dim=8)  # replies list items in reverse order
    enc = encoder_for(server, batch_size=4)
    vectors = enc.encode_documents(TEXTS)
    assert [len(r.body["input"]) for r in server.posts()] == [4, 4, 2]
    assert [t for r in server.posts() for t in r.body["input"]] == TEXTS
    np.testing.assert_array_equal(vectors, expected_floats(TEXTS, 8))
    assert vectors.dtype == np.float32 and enc.meta.dim == 8
    assert isinstance(enc, Encoder) and not isinstance(enc, NestedEncoder)


def test_batches_by_characters(fake_api_server):
    server = fake_api_server(dim=4)
    enc = encoder_for(server, batch_size=100, max_chars=30)
    enc.encode_queries(["a" * 10] * 5 + ["b" * 50, "c"])
    assert [len(r.body["input"]) for r in server.posts()] == [3, 2, 1, 1]


def test_plan_requests_limits():
    assert plan_requests([1, 1, 1], max_items=2, max_chars=10) == [range(0, 2), range(2, 3)]
    assert plan_requests([5, 20, 5], max_items=9, max_chars=10) == [range(0, 1), range(1, 2), range(2, 3)]
    assert plan_requests([1, 1, 1], max_items=9, max_chars=99, units=[2, 2, 1], max_units=3) == [
        range(0, 1), range(1, 3)]
    with pytest.raises(ModelError, match="4 chunks"):
        plan_requests([1], max_items=9, max_chars=99, units=[4], max_units=3)


def test_prompts_dimensions_and_payload(fake_api_server):
    server = fake_api_server(dim=16)
    enc = encoder_for(server, dimensions=6, prompts={"query": "query: ", "document": "passage: "})
    q = enc.encode_queries(["hi"])
    d = enc.encode_documents(["hi"])
    bodies = [r.body for r in server.posts()]
    assert bodies[0] == {"model": "fake-model", "input": ["query: hi"], "encoding_format": "float", "dimensions": 6}
    assert bodies[1]["input"] == ["passage: hi"]
    np.testing.assert_array_equal(q[0], float_vector("query: hi", 16)[:6])
    assert d.shape == (1, 6) and enc.meta.dim == 6
    assert enc.meta.fingerprint == f"http:{server.url}#fake-model#float#6" == enc.meta.revision
    assert enc.meta.native_quantizers == {}


def test_empty_input_sends_nothing(fake_api_server):
    server = fake_api_server()
    assert encoder_for(server).encode_documents([]).shape == (0, 0)
    assert server.requests == []


def test_base64_float_format(fake_api_server):
    server = fake_api_server(dim=8)
    enc = encoder_for(server, encoding_format="base64")
    np.testing.assert_array_equal(enc.encode_documents(TEXTS[:3]), expected_floats(TEXTS[:3], 8))


# -- retries --------------------------------------------------------------------------------------------

def test_429_retry_after_is_honoured(fake_api_server):
    server = fake_api_server(dim=4)
    server.fail(429, retry_after=7)
    sleeps: list[float] = []
    vectors = encoder_for(server, sleeps).encode_documents(["a", "b"])
    assert sleeps == [7.0]
    assert len(server.posts()) == 2 and vectors.shape == (2, 4)


def test_503_retry_after_http_date(fake_api_server):
    server = fake_api_server(dim=4)
    server.fail(503, retry_after=format_datetime(datetime.now(timezone.utc) + timedelta(seconds=30), usegmt=True))
    sleeps: list[float] = []
    encoder_for(server, sleeps).encode_documents(["a"])
    assert len(sleeps) == 1 and 25 <= sleeps[0] <= 30


def test_parse_retry_after():
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=timezone.utc)
    assert parse_retry_after("3", now) == 3.0
    assert parse_retry_after("Thu, 01 Jan 2026 12:00:10 GMT", now) == 10.0
    assert parse_retry_after("Thu, 01 Jan 2026 11:00:00 GMT", now) == 0.0
    assert parse_retry_after("soon", now) is None and parse_retry_after(None) is None


def test_5xx_is_retried_with_backoff_then_succeeds(fake_api_server):
    server = fake_api_server(dim=4)
    server.fail(500, times=2)
    sleeps: list[float] = []
    vectors = encoder_for(server, sleeps, client_kwargs={"backoff": 0.5}).encode_documents(["a"])
    assert vectors.shape == (1, 4) and len(server.posts()) == 3
    assert len(sleeps) == 2 and 0.25 <= sleeps[0] <= 0.5 and 0.5 <= sleeps[1] <= 1.0


def test_retries_exhausted_is_a_model_error(fake_api_server):
    server = fake_api_server()
    server.fail(503, times=10)
    sleeps: list[float] = []
    with pytest.raises(ModelError, match="after 3 attempts: HTTP 503") as info:
        encoder_for(server, sleeps, client_kwargs={"max_retries": 2}).encode_documents(["a"])
    assert len(server.posts()) == 3 and len(sleeps) == 2
    assert "\n" not in str(info.value)


def test_400_fails_at_once(fake_api_server):
    server = fake_api_server()
    server.fail(400, times=3)
    sleeps: list[float] = []
    with pytest.raises(ModelError, match="HTTP 400"):
        encoder_for(server, sleeps).encode_documents(["a"])
    assert len(server.posts()) == 1 and sleeps == []


def test_redirects_are_not_followed(fake_api_server):
    server = fake_api_server()
    server.fail(307, headers={"Location": f"{server.root}/elsewhere"})
    with pytest.raises(ModelError, match="HTTP 307"):
        encoder_for(server).encode_documents(["a"])
    assert [r.path for r in server.requests] == ["/v1/embeddings"]


def test_connection_refused_is_retried_then_fails():
    with socket.socket() as sock:  # a port nobody listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    sleeps: list[float] = []
    client = HttpClient(f"http://127.0.0.1:{port}/v1", api_key_env=None, max_retries=2, sleep=sleeps.append,
                        timeout=2)
    with pytest.raises(ModelError, match="after 3 attempts: cannot connect"):
        client.post_json("embeddings", {"model": "m", "input": ["a"]})
    assert len(sleeps) == 2


def test_timeout_on_a_slow_server(fake_api_server):
    server = fake_api_server()
    server.stall(3.0, times=2)
    sleeps: list[float] = []
    t0 = time.perf_counter()
    with pytest.raises(ModelError, match="timed out after 0.2 s"):
        encoder_for(server, sleeps, client_kwargs={"timeout": 0.2, "max_retries": 1}).encode_documents(["a"])
    assert time.perf_counter() - t0 < 2.0
    assert len(server.posts()) == 2 and len(sleeps) == 1


# -- malformed replies -------------------------------------------------------------------------------

def test_malformed_json_is_a_one_line_model_error(fake_api_server):
    server = fake_api_server()
    server.malformed(body=b"\n" + b"x" * 1000)
    with pytest.raises(ModelError, match="malformed JSON in the HTTP 200 response") as info:
        encoder_for(server).encode_documents(["a"])
    message = str(info.value)
    assert "\n" not in message and "x" * 200 in message and "x" * 201 not in message


def test_wrong_count_is_a_model_error(fake_api_server):
    server = fake_api_server()
    server.wrong_count()
    with pytest.raises(ModelError, match="expected 3 embeddings, got 2"):
        encoder_for(server).encode_documents(["a", "b", "c"])


@pytest.mark.parametrize("body, message", [
    (b'{"data": [{"index": 0, "embedding": [1.0, NaN]}]}', "NaN or infinite"),
    (b'{"data": [{"index": 0, "embedding": [1.0]}, {"index": 1, "embedding": [1.0, 2.0]}]}', "different lengths"),
    (b'{"data": [{"index": 0, "embedding": [1.0]}, {"index": 0, "embedding": [2.0]}]}', "indices"),
    (b'{"data": [{"index": 0, "embedding": "abc"}]}', "malformed"),
    (b'{"object": "list"}', "no list of embeddings"),
    (b'[1, 2]', "expected a JSON object"),
])
def test_bad_vectors_are_model_errors(fake_api_server, body, message):
    server = fake_api_server()
    server.malformed(body=body)
    n = body.count(b'"index"') or 1
    with pytest.raises(ModelError, match=message):
        encoder_for(server).encode_documents(["t"] * n)


def test_dimension_change_between_requests_is_an_error(fake_api_server):
    server = fake_api_server(dim=4)
    enc = encoder_for(server)
    enc.encode_documents(["a"])
    server.malformed(body=b'{"data": [{"index": 0, "embedding": [1.0, 2.0]}]}')
    with pytest.raises(ModelError, match="expected 4-dimensional embeddings, got 2"):
        enc.encode_documents(["b"])


# -- the API key ------------------------------------------------------------------------------------------

def test_api_key_sent_as_bearer_and_never_shown(fake_api_server, monkeypatch, caplog):
    monkeypatch.setenv("TEST_EMBED_KEY", KEY)
    server = fake_api_server(dim=4, api_key=KEY)
    enc = encoder_for(server, client_kwargs={"api_key_env": "TEST_EMBED_KEY"})
    server.fail(500, echo_auth=True)  # retried, and logged
    with caplog.at_level("DEBUG"):
        enc.encode_documents(["a"])
    assert "retry 1/5" in caplog.text and KEY not in caplog.text
    assert {r.headers["authorization"] for r in server.posts()} == {f"Bearer {KEY}"}
    server.fail(400, echo_auth=True)  # the error body repeats the Authorization header
    with pytest.raises(ModelError) as info:
        enc.encode_documents(["b"])
    assert KEY not in str(info.value) and "Bearer ***" in str(info.value)
    assert info.value.__cause__ is None and info.value.__suppress_context__
    for text in (repr(enc), repr(enc.client), str(vars(enc)), str(vars(enc.client)), repr(enc.meta)):
        assert KEY not in text


def test_missing_api_key_variable(fake_api_server, monkeypatch):
    monkeypatch.delenv("TEST_EMBED_KEY", raising=False)
    server = fake_api_server()
    with pytest.raises(ModelError, match="TEST_EMBED_KEY is not set"):
        encoder_for(server, client_kwargs={"api_key_env": "TEST_EMBED_KEY"}).encode_documents(["a"])
    assert server.requests == []


def test_wrong_api_key_fails_at_once(fake_api_server, monkeypatch):
    monkeypatch.setenv("TEST_EMBED_KEY", "wrong-key")
    server = fake_api_server(api_key=KEY)
    with pytest.raises(ModelError, match="HTTP 401"):
        encoder_for(server, client_kwargs={"api_key_env": "TEST_EMBED_KEY"}).encode_documents(["a"])
    assert len(server.posts()) == 1


# -- Perplexity's quantized formats ---------------------------------------------------------------------------

def test_base64_int8_decodes_to_the_servers_codes(fake_api_server):
    server = fake_api_server(dim=16)
    enc = encoder_for(server, encoding_format="base64_int8", dimensions=12)
    vectors = enc.encode_documents(TEXTS)
    codes = np.stack([int8_codes(float_vector(t, 16)[:12]) for t in TEXTS])
    np.testing.assert_array_equal(vectors, codes.astype(np.float32))
    natives = enc.meta.native_quantizers
    assert set(natives) == {"int8", "binary"}
    np.testing.assert_array_equal(natives["int8"](vectors), codes)
    assert natives["int8"](vectors).dtype == np.int8
    np.testing.assert_array_equal(natives["binary"](vectors), codes >= 0)
    np.testing.assert_array_equal(natives["int8"](vectors[:, :8]), codes[:, :8])  # MRL prefix
    assert "int8 codes" in enc.meta.float_note


@pytest.mark.parametrize("dimensions", [None, 12])
def test_base64_binary_decodes_packed_bits(fake_api_server, dimensions):
    server = fake_api_server(dim=16)
    enc = encoder_for(server, encoding_format="base64_binary", dimensions=dimensions)
    vectors = enc.encode_documents(TEXTS)
    n = dimensions or 16
    signs = np.stack([sign_codes(float_vector(t, 16)[:n]) for t in TEXTS])
    np.testing.assert_array_equal(vectors, signs.astype(np.float32))
    assert set(enc.meta.native_quantizers) == {"binary"}
    np.testing.assert_array_equal(enc.meta.native_quantizers["binary"](vectors), signs > 0)
    assert enc.meta.dim == n and "+1/-1" in enc.meta.float_note


def test_big_endian_bits_differ_and_change_the_fingerprint(fake_api_server):
    server = fake_api_server(dim=16)
    little = encoder_for(server, encoding_format="base64_binary")
    big = encoder_for(server, encoding_format="base64_binary", bitorder="big")
    assert not np.array_equal(little.encode_documents(TEXTS), big.encode_documents(TEXTS))
    assert big.meta.fingerprint != little.meta.fingerprint


# -- the contextualized endpoint ---------------------------------------------------------------------------

DOCS = [["alpha one", "alpha two", "alpha three"], ["beta"], ["gamma one", "gamma two"], ["delta"]]


def test_encode_nested_over_the_contextual_endpoint(fake_api_server):
    server = fake_api_server(dim=8)
    enc = encoder_for(server, cls=HttpContextualEncoder, encoding_format="base64_int8", max_documents=3)
    assert isinstance(enc, NestedEncoder)
    out = enc.encode_nested(DOCS)
    posts = server.posts("/v1/contextualizedembeddings")
    assert [r.body["input"] for r in posts] == [DOCS[:3], DOCS[3:]]
    assert posts[0].body["encoding_format"] == "base64_int8"
    assert [a.shape for a in out] == [(3, 8), (1, 8), (2, 8), (1, 8)]
    for doc, got in zip(DOCS, out):
        want = np.stack([int8_codes(contextual_vector(doc, i, 8)) for i in range(len(doc))])
        np.testing.assert_array_equal(got, want.astype(np.float32))


def test_nested_batches_respect_the_chunk_limit(fake_api_server):
    server = fake_api_server(dim=4)
    enc = encoder_for(server, cls=HttpContextualEncoder, max_chunks=4)
    enc.encode_nested(DOCS)
    assert [sum(len(d) for d in r.body["input"]) for r in server.posts("/v1/contextualizedembeddings")] == [4, 3]
    with pytest.raises(ModelError, match="5 chunks, over the API limit of 4"):
        enc.encode_nested([["c"] * 5])


def test_contextual_queries_are_one_chunk_documents(fake_api_server):
    server = fake_api_server(dim=4)
    enc = encoder_for(server, cls=HttpContextualEncoder, prompts={"query": "q: "})
    vectors = enc.encode_queries(["x", "y"])
    assert server.posts("/v1/contextualizedembeddings")[0].body["input"] == [["q: x"], ["q: y"]]
    np.testing.assert_allclose(vectors[1], contextual_vector(["q: y"], 0, 4), rtol=1e-6)


def test_contextual_wrong_document_count(fake_api_server):
    server = fake_api_server()
    server.wrong_count()
    with pytest.raises(ModelError, match="expected 4 documents, got 3"):
        encoder_for(server, cls=HttpContextualEncoder).encode_nested(DOCS)


# -- the model reference -----------------------------------------------------------------------------------

def test_from_url_parses_the_reference():
    enc = from_url("http://127.0.0.1:8080/v1?model=foo&format=base64_int8&dimensions=256&api_key_env=PPLX_API_KEY",
                   EncodeSettings(batch_size=7))
    assert type(enc) is HttpEmbeddingEncoder
    assert (enc.base_url, enc.model, enc.encoding_format, enc.dimensions) == (
        "http://127.0.0.1:8080/v1", "foo", "base64_int8", 256)
    assert enc.client.api_key_env == "PPLX_API_KEY" and enc.batch_size == 7
    assert enc.meta.fingerprint == "http:http://127.0.0.1:8080/v1#foo#base64_int8#256"
    assert enc.meta.name == "foo@127.0.0.1:8080" and enc.meta.dim == 256


def test_from_url_defaults_and_options():
    pplx = from_url("https://api.perplexity.ai?model=pplx-embed-context-v1-4b")
    assert isinstance(pplx, HttpContextualEncoder)
    assert (pplx.base_url, pplx.encoding_format, pplx.client.api_key_env) == (
        "https://api.perplexity.ai/v1", "base64_int8", "PERPLEXITY_API_KEY")
    local = from_url("http://localhost:80/v1/?model=bge&name=bge-tei&batch_size=64&max_chars=1000"
                     "&query_prompt=query%3A+&timeout=5&max_retries=0")
    assert (local.meta.name, local.batch_size, local.max_chars, local.encoding_format) == ("bge-tei", 64, 1000, "float")
    assert local.meta.prompts == {"query": "query: "} and local.client.max_retries == 0
    assert local.client.api_key_env is None


@pytest.mark.parametrize("spec, message", [
    ("ftp://host/v1?model=m", "looks like"),
    ("http://host/v1", "needs model="),
    ("http://host/v1?model=m&api_key=sk-1", "never put an API key"),
    ("http://user:pw@host/v1?model=m", "user:password"),
    ("http://host/v1?model=m&colour=red", "unknown parameter 'colour'"),
    ("http://host/v1?model=m&model=n", "twice"),
    ("http://host/v1?model=m&format=fp16", "encoding format"),
    ("http://host/v1?model=m&dimensions=abc", "dimensions must be a number"),
    ("http://host/v1?model=m&dimensions=0", "dimensions must be positive"),
    ("http://host/v1?model=m&endpoint=rerank", "endpoint must be"),
    ("http://host/v1?model=m&max_chunks=5", "only to endpoint=contextualized"),
])
def test_from_url_refuses_bad_references(spec, message):
    with pytest.raises(ModelError, match=message):
        from_url(spec)


def test_from_url_encodes_end_to_end(fake_api_server):
    server = fake_api_server(dim=8)
    enc = from_url(f"{server.url}?model=m&format=base64_int8&dimensions=4&max_retries=0")
    vectors = enc.encode_documents(["a", "b"])
    np.testing.assert_array_equal(vectors[0], int8_codes(float_vector("a", 8)[:4]).astype(np.float32))


# -- the client on its own (chat completions, as a RAG generator will use it) ---------------------------------

def test_client_posts_chat_completions(fake_api_server):
    server = fake_api_server(chat_answer=lambda messages: messages[-1]["content"].upper())
    reply = client_for(server).post_json("/chat/completions", {"model": "m", "messages": [
        {"role": "user", "content": "hello"}]})
    assert reply["choices"][0]["message"]["content"] == "HELLO"
    assert server.posts("/v1/chat/completions")[0].headers["content-type"] == "application/json"
