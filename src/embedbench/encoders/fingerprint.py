"""Content hashes of local model folders, so two `checkpoint-1000` folders never collide."""

from __future__ import annotations

import hashlib
from pathlib import Path

# Files that define a model's vectors: weights, configs, tokenizer files.
_SUFFIXES = {".safetensors", ".bin", ".json", ".txt", ".model", ".onnx", ".onnx_data", ".py", ".pt"}


def folder_fingerprint(path: Path) -> str:
    """sha256 over the relative path and bytes of every weight/config/tokenizer file, first 16 hex chars."""
    h = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in _SUFFIXES and ".git" not in p.parts)
    if not files:
        raise FileNotFoundError(f"{path} holds no model weights or config files")
    for f in files:
        h.update(str(f.relative_to(path)).encode())
        with f.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 22), b""):
                h.update(block)
    return h.hexdigest()[:16]
