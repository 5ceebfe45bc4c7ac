"""A model that fails to load becomes one ModelError line (the CLI prints it on stderr and exits 2).

Loaders (transformers, sentence-transformers, onnxruntime) raise many exception types with
multi-line messages; the first line says what went wrong, the rest is a traceback-like tail.
"""

from __future__ import annotations

from embedbench.errors import ModelError


def one_line(exc: BaseException) -> str:
    """The first line of an exception's message, or its type name."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def load_failure(kind: str, ref: str, exc: BaseException) -> ModelError:
    """`cannot load KIND model 'REF': FIRST LINE`, to raise `from exc`."""
    return ModelError(f"cannot load {kind} model {ref!r}: {one_line(exc)}")
