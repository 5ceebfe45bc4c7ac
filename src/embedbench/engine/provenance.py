"""What every result records about the code and environment that produced it."""

from __future__ import annotations

import functools
import importlib.metadata
import subprocess
from datetime import datetime, timezone
from pathlib import Path

import embedbench

_PACKAGES = ("torch", "sentence-transformers", "transformers", "faiss-cpu", "numpy", "pytrec-eval-terrier")


@functools.cache
def package_versions() -> dict[str, str]:
    versions = {"embedbench": embedbench.__version__}
    for name in _PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


@functools.cache
def git_commit() -> str | None:
    """The commit of the checkout embedbench runs from ("+dirty" when it has local changes), else None."""
    root = Path(embedbench.__file__).resolve().parents[2]
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("+dirty" if dirty else "") if commit else None


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
