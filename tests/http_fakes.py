"""A real HTTP server on 127.0.0.1 faking embedding and chat-completion APIs, for tests.

Serves, under `/v1`:

* `POST /v1/embeddings` (OpenAI / TEI / vLLM / Perplexity shape): deterministic vectors from a hash of
  each text, in `float`, `base64` (float32), `base64_int8` (pplx codes: round(tanh(v)*127)) or
  `base64_binary` (packbits(v >= 0), LSB first); `dimensions` keeps the first N values (MRL).
* `POST /v1/contextualizedembeddings` (Perplexity): `input: [[chunk, ...], ...]`, per-document lists;
  a chunk's vector is its own plus half its whole document's (see `contextual_vector`).
* `POST /v1/chat/completions`: a fixed answer, a callable's answer, or an echo of the last user message.

Responses list their items in reverse order by default (clients must sort by `index`). Scripted
failures (`fail`, `malformed`, `wrong_count`, `stall`) apply to the next POSTs in FIFO order, whatever
the path. Every request is recorded (lower-cased headers, parsed JSON body) in `requests`.

Use `with FakeApiServer() as server: ...` or the `fake_api_server` fixture factory (import it into the
test module): `server = fake_api_server(dim=16, api_key="k")`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest


def float_vector(text: str, dim: int) -> np.ndarray:
    """The server's deterministic float vector for a text (standard normal, seeded by sha256)."""
    seed = int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "little")
    return np.random.default_rng(seed).standard_normal(dim).astype(np.float32)


def contextual_vector(chunks: list[str], i: int, dim: int) -> np.ndarray:
    """Chunk i's vector in its document: its own vector plus half the whole document's."""
    return float_vector(chunks[i], dim) + np.float32(0.5) * float_vector("\x1e".join(chunks), dim)


def int8_codes(vector: np.ndarray) -> np.ndarray:
    """pplx-embed's int8 quantizer: clamp(round(tanh(v) * 127), -128, 127)."""
    return np.clip(np.rint(np.tanh(vector) * 127), -128, 127).astype(np.int8)


def sign_codes(vector: np.ndarray) -> np.ndarray:
    """pplx-embed's binary quantizer as +1/-1: v >= 0 -> +1."""
    return np.where(vector >= 0, 1, -1).astype(np.int8)


def encode_vector(vector: np.ndarray, encoding_format: str) -> object:
    if encoding_format == "float":
        return [float(v) for v in vector]
    if encoding_format == "base64":
        return base64.b64encode(vector.astype("<f4").tobytes()).decode("ascii")
    if encoding_format == "base64_int8":
        return base64.b64encode(int8_codes(vector).tobytes()).decode("ascii")
    if encoding_format == "base64_binary":
        return base64.b64encode(np.packbits(vector >= 0, bitorder="little").tobytes()).decode("ascii")
    raise ValueError(encoding_format)


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]  # lower-cased names
    body: object  # parsed JSON, or the raw text when it is not JSON


@dataclass
class Scripted:
    """One scripted reply: a status with a body, or (status None) the normal reply, possibly altered."""

    status: int | None = None
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    drop_last: bool = False
    echo_auth: bool = False


class FakeApiServer:
    """A ThreadingHTTPServer on 127.0.0.1 (port 0) in a daemon thread; see the module docstring."""

    def __init__(self, *, dim: int = 16, api_key: str | None = None, reverse: bool = True,
                 chat_answer: str | Callable[[list[dict]], str] | None = None) -> None:
        self.dim = dim
        self.api_key = api_key
        self.reverse = reverse
        self.chat_answer = chat_answer
        self.requests: list[RecordedRequest] = []
        self._script: deque[Scripted] = deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- life cycle -------------------------------------------------------------------------------
    def start(self) -> FakeApiServer:
        handler = _make_handler(self)
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeApiServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def root(self) -> str:
        assert self._httpd is not None, "server not started"
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def url(self) -> str:
        """The API base URL clients append `/embeddings` etc. to."""
        return f"{self.root}/v1"

    # -- scripting --------------------------------------------------------------------------------
    def fail(self, status: int, times: int = 1, *, retry_after: str | float | None = None,
             body: bytes | None = None, echo_auth: bool = False, headers: dict[str, str] | None = None) -> None:
        """The next `times` POSTs answer `status` (with Retry-After if given) and a JSON error body.

        `echo_auth` appends the received Authorization header to the body (a careless server).
        """
        headers = dict(headers or {})
        if retry_after is not None:
            headers["Retry-After"] = str(retry_after)
        body = body if body is not None else json.dumps({"error": {"message": f"scripted {status}"}}).encode()
        self._push(times, Scripted(status=status, body=body, headers=headers, echo_auth=echo_auth))

    def malformed(self, times: int = 1, body: bytes = b'{"data": [ this is not json') -> None:
        self._push(times, Scripted(status=200, body=body))

    def wrong_count(self, times: int = 1) -> None:
        """The next `times` embedding replies leave out their last item."""
        self._push(times, Scripted(drop_last=True))

    def stall(self, seconds: float, times: int = 1) -> None:
        """The next `times` POSTs wait `seconds` (cut short when the server stops) before answering."""
        self._push(times, Scripted(delay=seconds))

    def _push(self, times: int, item: Scripted) -> None:
        with self._lock:
            self._script.extend(item for _ in range(times))

    def _next_scripted(self) -> Scripted | None:
        with self._lock:
            return self._script.popleft() if self._script else None

    def posts(self, path: str = "/v1/embeddings") -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.method == "POST" and r.path == path]

    # -- replies ----------------------------------------------------------------------------------
    def reply(self, path: str, body: object, scripted: Scripted | None) -> tuple[int, dict]:
        if not isinstance(body, dict):
            return 400, _error("body must be a JSON object")
        if path == "/v1/chat/completions":
            return self._chat(body)
        if path not in ("/v1/embeddings", "/v1/contextualizedembeddings"):
            return 404, _error(f"no route {path}")
        fmt = body.get("encoding_format", "float")
        if fmt not in ("float", "base64", "base64_int8", "base64_binary"):
            return 400, _error(f"unknown encoding_format {fmt!r}")
        if not body.get("model"):
            return 400, _error("model is required")
        n = body.get("dimensions", self.dim)
        if not isinstance(n, int) or not 1 <= n <= self.dim:
            return 400, _error(f"dimensions must be 1..{self.dim}")
        drop = scripted is not None and scripted.drop_last
        if path == "/v1/embeddings":
            texts = body.get("input")
            texts = [texts] if isinstance(texts, str) else texts
            if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
                return 400, _error("input must be a non-empty list of strings")
            items = [{"object": "embedding", "index": i, "embedding": encode_vector(float_vector(t, self.dim)[:n], fmt)}
                     for i, t in enumerate(texts)]
            items = self._arrange(items, drop)
            return 200, {"object": "list", "data": items, "model": body["model"],
                         "usage": {"prompt_tokens": sum(len(t.split()) for t in texts)}}
        docs = body.get("input")
        if (not isinstance(docs, list) or not docs or len(docs) > 512
                or not all(isinstance(d, list) and d and all(isinstance(c, str) for c in d) for d in docs)):
            return 400, _error("input must be 1..512 non-empty lists of strings")
        if sum(len(d) for d in docs) > 16_000:
            return 400, _error("more than 16000 chunks")
        out = []
        for d, chunks in enumerate(docs):
            items = [{"object": "embedding", "index": i,
                      "embedding": encode_vector(contextual_vector(chunks, i, self.dim)[:n], fmt)}
                     for i in range(len(chunks))]
            out.append({"object": "list", "index": d, "data": self._arrange(items, False)})
        return 200, {"object": "list", "data": self._arrange(out, drop), "model": body["model"]}

    def _arrange(self, items: list[dict], drop_last: bool) -> list[dict]:
        if drop_last:
            items = items[:-1]
        return items[::-1] if self.reverse else items

    def _chat(self, body: dict) -> tuple[int, dict]:
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return 400, _error("messages must be a non-empty list")
        if callable(self.chat_answer):
            answer = self.chat_answer(messages)
        elif self.chat_answer is not None:
            answer = self.chat_answer
        else:
            last = next((m.get("content", "") for m in reversed(messages) if m.get("role") == "user"), "")
            answer = f"echo: {last}"
        return 200, {
            "id": f"chatcmpl-{len(self.requests)}", "object": "chat.completion", "created": int(time.time()),
            "model": body.get("model", ""),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": answer}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 0, "completion_tokens": len(str(answer).split()), "total_tokens": 0},
        }


def _error(message: str) -> dict:
    return {"error": {"message": message}}


def _make_handler(server: FakeApiServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # keep test output clean
            pass

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode("utf-8", "replace")
            try:
                body: object = json.loads(raw)
            except json.JSONDecodeError:
                body = raw
            headers = {k.lower(): v for k, v in self.headers.items()}
            with server._lock:
                server.requests.append(RecordedRequest("POST", self.path, headers, body))
            scripted = server._next_scripted()
            if scripted is not None and scripted.delay:
                if server._stopping.wait(scripted.delay):
                    return
            if server.api_key is not None and headers.get("authorization") != f"Bearer {server.api_key}":
                return self._send(401, json.dumps(_error("invalid API key")).encode(), {})
            if scripted is not None and scripted.status is not None:
                payload = scripted.body or b""
                if scripted.echo_auth:
                    payload += f" (received Authorization: {headers.get('authorization')})".encode()
                return self._send(scripted.status, payload, scripted.headers)
            status, reply = server.reply(self.path, body, scripted)
            self._send(status, json.dumps(reply).encode(), {})

        def _send(self, status: int, payload: bytes, headers: dict[str, str]) -> None:
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (a timeout test)

    return Handler


@pytest.fixture
def fake_api_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., FakeApiServer]]:
    """A factory of started fake servers, all stopped at teardown; proxies are bypassed for loopback."""
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    servers: list[FakeApiServer] = []

    def make(**kwargs: object) -> FakeApiServer:
        server = FakeApiServer(**kwargs).start()  # type: ignore[arg-type]
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()
