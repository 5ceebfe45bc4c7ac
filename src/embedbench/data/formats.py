"""Turn a dataset spec such as ``beir:DIR``, ``squad:FILE`` or ``trec:DIR`` into validated data.

A relative path is tried as given (from the current directory) and then under ``data_dir``
(the ``--data-dir`` / ``EMBEDBENCH_DATA_DIR`` folder). An unknown format, a spec without
``FORMAT:`` or a path found nowhere raises :class:`~embedbench.errors.EmbedbenchError`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from embedbench.data.beir import load_beir
from embedbench.data.sources import fetch_hint
from embedbench.data.squad import load_squad
from embedbench.data.trec import load_trec
from embedbench.data.types import RetrievalData
from embedbench.errors import EmbedbenchError

__all__ = ["FORMATS", "load_dataset_spec", "resolve_data_path"]

FORMATS: dict[str, Callable[[Path], RetrievalData]] = {
    "beir": load_beir,
    "squad": load_squad,
    "trec": load_trec,
}


def resolve_data_path(raw: str, data_dir: Path | None) -> Path:
    """``raw`` as given when it exists (or is absolute), else under ``data_dir``."""
    path = Path(raw).expanduser()
    if path.is_absolute() or path.exists():
        return path
    tried = [str(path)]
    if data_dir is not None:
        under = Path(data_dir).expanduser() / path
        if under.exists():
            return under
        tried.append(str(under))
    raise EmbedbenchError(f"dataset path {raw!r} not found (tried: {', '.join(tried)}){fetch_hint(raw)}")


def load_dataset_spec(spec: str, data_dir: Path | None) -> RetrievalData:
    """Load and ``validate()`` the dataset a ``FORMAT:PATH`` spec names."""
    known = ", ".join(sorted(FORMATS))
    fmt, sep, raw = spec.partition(":")
    fmt = fmt.strip().lower()
    if not sep or fmt not in FORMATS:
        raise EmbedbenchError(f"unknown dataset format in {spec!r}; known formats: {known} (write FORMAT:PATH)")
    if not raw.strip():
        raise EmbedbenchError(f"dataset spec {spec!r} names no path (write {fmt}:PATH)")
    return FORMATS[fmt](resolve_data_path(raw.strip(), data_dir)).validate()
