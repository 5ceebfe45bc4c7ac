"""A small JSON-over-HTTP client with retries: the transport under every API-backed model.

The embedding encoder (`encoders/http_api.py`) posts `/embeddings` requests through it; a RAG
generator can post chat completions the same way. Standard library only (`urllib.request`, which
honours the usual `HTTP(S)_PROXY` / `NO_PROXY` variables).

Retry policy: connection errors, timeouts, 429 and 5xx (except 501) are retried up to
`max_retries` times (so at most `max_retries + 1` attempts) with exponential backoff and jitter; a
`Retry-After` header (seconds or an HTTP date) on 429 or 503 replaces the computed wait. Any other
4xx, and any redirect (never followed, so the key is not replayed elsewhere), fails at once. A
2xx body that is not a JSON object fails at once too. Every failure is a one-line `ModelError`.

The API key is read from the environment variable named by `api_key_env` at each call and sent as
`Authorization: Bearer ...`. It is never logged and never part of an exception message or repr;
any copy of it a server echoes back in an error body is masked.
"""

from __future__ import annotations

import email.utils
import http.client
import json
import logging
import os
import random
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone

from embedbench.errors import ModelError

log = logging.getLogger(__name__)

RETRY_AFTER_STATUSES = frozenset({429, 503})
BODY_EXCERPT = 200


class HttpClient:
    """POST JSON to `base_url + "/" + path` and return the decoded JSON object.

    `backoff * 2**attempt` seconds (capped at `max_backoff`, then scaled by a random factor in
    [0.5, 1]) between attempts; a server's `Retry-After` is honoured as given, up to
    `max_retry_after` seconds. `sleep` is injectable so tests can record the waits.
    """

    def __init__(
        self,
        base_url: str,
        *,
        api_key_env: str | None,
        timeout: float = 60,
        max_retries: int = 5,
        backoff: float = 0.5,
        max_backoff: float = 30,
        max_retry_after: float = 600,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        user_agent: str = "embedbench",
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ModelError(f"base URL must start with http:// or https://, got {base_url!r}")
        if timeout <= 0 or max_retries < 0 or backoff < 0 or max_backoff < 0:
            raise ModelError("timeout must be positive; retries and backoff must not be negative")
        self.base_url = base_url.rstrip("/")
        self.api_key_env = api_key_env
        self.timeout = float(timeout)
        self.max_retries = int(max_retries)
        self.backoff = float(backoff)
        self.max_backoff = float(max_backoff)
        self.max_retry_after = float(max_retry_after)
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._user_agent = user_agent
        self._opener = urllib.request.build_opener(_NoRedirect())

    def __repr__(self) -> str:
        return f"HttpClient(base_url={self.base_url!r}, api_key_env={self.api_key_env!r})"

    def url(self, path: str) -> str:
        return f"{self.base_url}/{path.lstrip('/')}" if path else self.base_url

    def post_json(self, path: str, payload: dict) -> dict:
        """POST `payload` as JSON; the response's JSON object, or a one-line ModelError."""
        url = self.url(path)
        key = self._api_key()
        body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        headers = {"Content-Type": "application/json", "Accept": "application/json", "User-Agent": self._user_agent}
        if key:
            headers["Authorization"] = f"Bearer {key}"
        attempts = self.max_retries + 1
        for attempt in range(attempts):
            request = urllib.request.Request(url, data=body, headers=headers, method="POST")
            outcome = self._attempt(request, key)
            if outcome.data is not None:
                return outcome.data
            if attempt + 1 == attempts:
                break
            wait = self._wait(attempt, outcome.retry_after)
            log.warning("POST %s: %s; retry %d/%d in %.1f s", url, outcome.failure, attempt + 1, self.max_retries, wait)
            self._sleep(wait)
        raise ModelError(f"POST {url} failed after {attempts} attempt{'s' if attempts > 1 else ''}: {outcome.failure}")

    def _attempt(self, request: urllib.request.Request, key: str | None) -> _Attempt:
        """One try: the JSON object, or why it failed in a retryable way; a failure not worth retrying raises."""
        url = request.full_url
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                status, raw = response.status, response.read()
            return _Attempt(data=_decode_json(url, status, raw, key))
        except urllib.error.HTTPError as exc:
            failure = f"HTTP {exc.code}: {_excerpt(_read_quietly(exc), key)}"
            if not is_retryable(exc.code):
                raise ModelError(f"POST {url} failed with {failure}") from None
            retry_after = parse_retry_after(exc.headers.get("Retry-After")) if exc.code in RETRY_AFTER_STATUSES else None
            return _Attempt(failure=failure, retry_after=retry_after)
        except (TimeoutError, socket.timeout):
            return _Attempt(failure=f"timed out after {self.timeout:g} s")
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, (TimeoutError, socket.timeout)):
                return _Attempt(failure=f"timed out after {self.timeout:g} s")
            return _Attempt(failure=f"cannot connect: {_mask(str(exc.reason), key)}")
        except (OSError, http.client.HTTPException) as exc:  # resets, TLS errors, truncated replies
            return _Attempt(failure=f"connection failed: {type(exc).__name__}: {_mask(str(exc), key)}")

    def _api_key(self) -> str | None:
        if self.api_key_env is None:
            return None
        key = os.environ.get(self.api_key_env, "").strip()
        if not key:
            raise ModelError(f"{self.base_url}: the API key variable {self.api_key_env} is not set or empty")
        return key

    def _wait(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, self.max_retry_after)
        cap = min(self.max_backoff, self.backoff * 2**attempt)
        return cap * (0.5 + 0.5 * self._rng.random())


@dataclass(frozen=True)
class _Attempt:
    """What one POST gave: the decoded JSON object, or a retryable failure (and the server's Retry-After)."""

    data: dict | None = None
    failure: str = ""
    retry_after: float | None = None


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Redirects are errors: following one would replay the Authorization header to another URL."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: ANN001
        return None


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` header: delta-seconds or an HTTP date; None if absent or bad."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    now = now or datetime.now(timezone.utc)
    return max(0.0, (when - now).total_seconds())


def is_retryable(status: int) -> bool:
    """429 and 5xx (except 501 Not Implemented) are worth another try; other 4xx are not."""
    return status == 429 or (500 <= status <= 599 and status != 501)


def _decode_json(url: str, status: int, raw: bytes, key: str | None) -> dict:
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ModelError(f"POST {url}: malformed JSON in the HTTP {status} response: {_excerpt(raw, key)}") from None
    if not isinstance(data, dict):
        raise ModelError(f"POST {url}: expected a JSON object in the HTTP {status} response: {_excerpt(raw, key)}")
    return data


def _read_quietly(exc: urllib.error.HTTPError) -> bytes:
    try:
        return exc.read() or b""
    except Exception:
        return b""
    finally:
        exc.close()


def _excerpt(raw: bytes, key: str | None) -> str:
    """The first BODY_EXCERPT characters of a body, on one line, with any copy of the key masked."""
    text = raw.decode("utf-8", errors="replace")
    text = " ".join(_mask(text, key).split())
    if len(text) > BODY_EXCERPT:
        text = text[:BODY_EXCERPT] + "..."
    return repr(text) if text else "(empty body)"


def _mask(text: str, key: str | None) -> str:
    return text.replace(key, "***") if key else text
