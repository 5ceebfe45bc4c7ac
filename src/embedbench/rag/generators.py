"""RAG answer generators: one fixed prompt, a local causal LM or an OpenAI-compatible chat endpoint.

The prompt follows the structure of BERGEN's default ("basic") prompt: a system message asking for a
brief answer drawn from the documents, then a user message listing the retrieved passages, each cut
to its first `MAX_DOC_WORDS` (100) words, and the question:

    system: SYSTEM_PROMPT
    user:   Background:
            Document 1: <passage 1, first 100 words>
            Document 2: <passage 2, first 100 words>
            ...

            Question: <question>

With no passages (closed book) the system message is SYSTEM_PROMPT_NO_DOCS and the user message is
`Question: <question>`. Decoding is greedy (temperature 0) with at most `max_new_tokens` (default
128, BERGEN's setting) new tokens. A model whose tokenizer has a chat template gets the messages
through it (the system text folded into the user turn if the template rejects a system role);
one without gets the plain text `SYSTEM\n\nUSER\n\nAnswer:`.

`load_generator(ref)`: `hf:PATH_OR_REPO` or a local folder -> TransformersGenerator;
`http(s)://HOST/v1?model=NAME[&api_key_env=VAR&max_tokens=N&timeout=S&max_retries=N]` ->
ChatEndpointGenerator (e.g. a vLLM server), whose requests go through `embedbench.encoders.http_client`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from embedbench.errors import EmbedbenchError, ModelError
from embedbench.encoders.http_client import HttpClient

SYSTEM_PROMPT = ("You are a helpful assistant. Answer the question using the information in the documents "
                 "below, as briefly as possible.")
SYSTEM_PROMPT_NO_DOCS = "You are a helpful assistant. Answer the question as briefly as possible."
MAX_DOC_WORDS = 100
DEFAULT_MAX_NEW_TOKENS = 128


@runtime_checkable
class Generator(Protocol):
    """Anything that answers a question from passages; `ref` and `fingerprint` identify it in results."""

    ref: str
    fingerprint: str

    def generate(self, question: str, passages: list[str]) -> str: ...


def build_messages(question: str, passages: Sequence[str]) -> list[dict[str, str]]:
    """The fixed prompt as chat messages (system, user)."""
    if not passages:
        return [{"role": "system", "content": SYSTEM_PROMPT_NO_DOCS},
                {"role": "user", "content": f"Question: {question}"}]
    docs = "".join(f"Document {i}: {' '.join(p.split()[:MAX_DOC_WORDS])}\n" for i, p in enumerate(passages, 1))
    return [{"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": f"Background:\n{docs}\nQuestion: {question}"}]


def plain_prompt(question: str, passages: Sequence[str]) -> str:
    """The prompt for a model without a chat template."""
    system, user = (m["content"] for m in build_messages(question, passages))
    return f"{system}\n\n{user}\n\nAnswer:"


class TransformersGenerator:
    """Any causal LM folder (or hub id) via AutoModelForCausalLM; greedy decoding."""

    def __init__(self, path: str, *, device: str = "cpu", max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
                 dtype: str | None = None, trust_remote_code: bool = False) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if max_new_tokens < 1:
            raise EmbedbenchError("max_new_tokens must be at least 1")
        local = Path(path).expanduser()
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(str(local) if local.is_dir() else path,
                                                           trust_remote_code=trust_remote_code)
            self.model = AutoModelForCausalLM.from_pretrained(
                str(local) if local.is_dir() else path, dtype=dtype or "auto", trust_remote_code=trust_remote_code)
        except (OSError, ValueError, KeyError) as exc:
            raise ModelError(f"cannot load generator {path!r}: {str(exc).splitlines()[0]}") from None
        self.model.to(device).eval()
        self.device = device
        self.max_new_tokens = max_new_tokens
        self.ref = f"hf:{local.resolve() if local.is_dir() else path}"
        if local.is_dir():
            from embedbench.encoders.fingerprint import folder_fingerprint

            self.fingerprint = folder_fingerprint(local)
        else:
            self.fingerprint = str(getattr(self.model.config, "_commit_hash", None) or path)

    def prompt(self, question: str, passages: Sequence[str]) -> tuple[str, bool]:
        """The prompt text and whether it came from the chat template (which adds its own special tokens)."""
        if not getattr(self.tokenizer, "chat_template", None):
            return plain_prompt(question, passages), False
        messages = build_messages(question, passages)
        try:
            return self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False), True
        except Exception:  # the template rejects a system turn (jinja2 TemplateError and kin)
            merged = [{"role": "user", "content": f"{messages[0]['content']}\n{messages[1]['content']}"}]
            return self.tokenizer.apply_chat_template(merged, add_generation_prompt=True, tokenize=False), True

    def generate(self, question: str, passages: list[str]) -> str:
        import torch

        text, templated = self.prompt(question, passages)
        enc = self.tokenizer(text, return_tensors="pt", add_special_tokens=not templated).to(self.device)
        n_in = enc["input_ids"].shape[1]
        limit = getattr(self.model.config, "max_position_embeddings", None)
        if limit is not None and n_in + self.max_new_tokens > limit:
            raise ModelError(f"{self.ref}: prompt of {n_in} tokens + {self.max_new_tokens} new tokens exceeds the "
                             f"model's {limit} positions")
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.tokenizer.eos_token_id
        with torch.inference_mode():
            out = self.model.generate(**enc, do_sample=False, max_new_tokens=self.max_new_tokens, pad_token_id=pad)
        return self.tokenizer.decode(out[0, n_in:], skip_special_tokens=True).strip()


class ChatEndpointGenerator:
    """An OpenAI-compatible `/chat/completions` endpoint (vLLM, TGI, OpenAI...), through HttpClient."""

    def __init__(self, base_url: str, model: str, *, api_key_env: str | None = None,
                 max_tokens: int = DEFAULT_MAX_NEW_TOKENS, timeout: float = 120, max_retries: int = 5,
                 client: HttpClient | None = None) -> None:
        if not model:
            raise EmbedbenchError(f"{base_url}: a chat endpoint needs a model name (?model=NAME)")
        if max_tokens < 1:
            raise EmbedbenchError("max_tokens must be at least 1")
        self.client = client or HttpClient(base_url, api_key_env=api_key_env, timeout=timeout, max_retries=max_retries)
        self.model = model
        self.max_tokens = max_tokens
        self.ref = f"{self.client.base_url}?model={model}"
        self.fingerprint = model

    def generate(self, question: str, passages: list[str]) -> str:
        body = {"model": self.model, "messages": build_messages(question, passages),
                "temperature": 0, "max_tokens": self.max_tokens}
        reply = self.client.post_json("chat/completions", body)
        try:
            content = reply["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            raise ModelError(f"POST {self.client.url('chat/completions')}: reply has no choices[0].message.content") \
                from None
        if not isinstance(content, str):
            raise ModelError(f"POST {self.client.url('chat/completions')}: message content is "
                             f"{type(content).__name__}, not a string")
        return content.strip()


_ENDPOINT_KEYS = {"model", "api_key_env", "max_tokens", "timeout", "max_retries"}


def _int(key: str, value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise EmbedbenchError(f"generator option {key}={value!r} is not an integer") from None


def load_generator(ref: str, *, device: str = "cpu", max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
                   trust_remote_code: bool = False) -> Generator:
    """`hf:PATH_OR_REPO`, a local model folder, or `http(s)://HOST/v1?model=NAME&...` (see module docstring)."""
    if ref.startswith(("http://", "https://")):
        parts = urlsplit(ref)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        unknown = sorted(set(query) - _ENDPOINT_KEYS)
        if unknown:
            raise EmbedbenchError(f"generator {ref!r}: unknown option {unknown[0]!r} "
                                  f"(known: {', '.join(sorted(_ENDPOINT_KEYS))})")
        base = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
        return ChatEndpointGenerator(
            base, query.get("model", ""), api_key_env=query.get("api_key_env") or None,
            max_tokens=_int("max_tokens", query["max_tokens"]) if "max_tokens" in query else max_new_tokens,
            timeout=_int("timeout", query["timeout"]) if "timeout" in query else 120,
            max_retries=_int("max_retries", query["max_retries"]) if "max_retries" in query else 5)
    if ref.startswith("hf:"):
        path = ref[3:]
        if not path:
            raise EmbedbenchError("generator 'hf:' needs a folder or hub id after the colon")
    else:
        path = ref
        if not Path(path).expanduser().is_dir():
            raise ModelError(f"generator {ref!r} is not a model folder (use hf:REPO for a hub model, "
                             "or http(s)://HOST/v1?model=NAME for a chat endpoint)")
    return TransformersGenerator(path, device=device, max_new_tokens=max_new_tokens,
                                 trust_remote_code=trust_remote_code)
