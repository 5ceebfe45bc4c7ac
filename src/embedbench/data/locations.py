"""Where data lives on this machine: the local datasets folder and the cache root for downloads.

`EMBEDBENCH_DATA_DIR` (or `--data-dir`) holds local datasets; `EMBEDBENCH_CACHE_DIR` holds downloaded
data (wheels, hub datasets) and the embedding cache, default `~/.cache/embedbench`. The engine takes
its cache root from here too, so data loaders never import the engine to find it.
"""

from __future__ import annotations

import os
from pathlib import Path


def default_data_dir() -> Path | None:
    """``$EMBEDBENCH_DATA_DIR`` when set (and non-empty), else None (relative paths are then read from the current directory)."""
    value = os.environ.get("EMBEDBENCH_DATA_DIR")
    return Path(value) if value else None


def default_cache_dir() -> Path:
    """``$EMBEDBENCH_CACHE_DIR`` when set (and non-empty), else ``~/.cache/embedbench``."""
    env = os.environ.get("EMBEDBENCH_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "embedbench"
