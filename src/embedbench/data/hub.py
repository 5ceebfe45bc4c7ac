"""Load one split of a Hugging Face hub dataset, or of a local mirror of it, through `datasets.load_dataset`.

A hub dataset is named by its repo id (``owner/name``), a config and a split, and pinned by a
revision (a commit hash) where one is known. The same call reads a local folder laid out like the
hub repo (a ``README.md`` whose YAML ``configs:`` maps each config's splits to parquet / jsonl
files, as ``push_to_hub`` writes it), so offline machines and tests go through the same code:

1. ``hub_path`` (a task's ``options.hub_path``): that folder; a relative path is taken under the
   data dir when one is set, else under the working directory;
2. ``$EMBEDBENCH_HUB_MIRROR``: the folder ``$EMBEDBENCH_HUB_MIRROR/<owner>/<name>`` when it exists;
3. otherwise the hub itself, at ``revision``, cached under ``<cache_dir>/hf-datasets``
   (``HF_DATASETS_OFFLINE=1`` then reads that cache only).

A local folder is read in memory on every load (datasets would otherwise reuse a stale arrow
cache after the folder's files change in place).

Failures become one-line :class:`EmbedbenchError` messages naming the repo, revision, config and
split, and how to provide the data offline.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from embedbench.errors import EmbedbenchError

if TYPE_CHECKING:
    from datasets import Dataset

__all__ = ["MIRROR_ENV", "HubSource", "load_hub_split", "require_columns", "resolve_source"]

MIRROR_ENV = "EMBEDBENCH_HUB_MIRROR"


@dataclass(frozen=True)
class HubSource:
    """Where a hub dataset is read from: a local folder, or the hub at a revision."""

    repo_id: str
    revision: str | None
    local: Path | None = None

    @property
    def label(self) -> str:
        """``owner/name@revision`` (or ``@latest``), plus the local folder when mirrored."""
        pinned = f"{self.repo_id}@{self.revision or 'latest'}"
        return f"{pinned} (local mirror {self.local})" if self.local else pinned


def resolve_source(repo_id: str, revision: str | None = None, *, hub_path: str | Path | None = None,
                   data_dir: Path | None = None) -> HubSource:
    """Pick the folder or hub repo a dataset is read from (see the module docstring for the order)."""
    if not isinstance(repo_id, str) or repo_id.count("/") != 1 or not all(repo_id.split("/")):
        raise EmbedbenchError(f"hub dataset id {repo_id!r} is not of the form owner/name")
    if hub_path:
        folder = Path(hub_path).expanduser()
        if not folder.is_absolute():
            folder = (data_dir or Path.cwd()) / folder
        if not folder.is_dir():
            raise EmbedbenchError(f"hub_path {folder} for {repo_id} is not a folder")
        return HubSource(repo_id, revision, folder)
    mirror = os.environ.get(MIRROR_ENV)
    if mirror:
        folder = Path(mirror).expanduser() / repo_id
        if folder.is_dir():
            return HubSource(repo_id, revision, folder)
    return HubSource(repo_id, revision, None)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:200]}" if text else type(exc).__name__


def load_hub_split(source: HubSource, config: str | None, split: str, cache_dir: Path) -> "Dataset":
    """One split of one config as a `datasets.Dataset`; errors are one line saying how to fix them."""
    try:
        import datasets
    except ImportError:
        raise EmbedbenchError("hub datasets need the `datasets` package (pip install datasets)") from None
    where = f"{source.label} config {config!r} split {split!r}"
    kwargs: dict[str, Any] = {"split": split, "cache_dir": str(Path(cache_dir) / "hf-datasets")}
    if source.local is None and source.revision:
        kwargs["revision"] = source.revision
    try:
        if source.local is None:
            ds = datasets.load_dataset(source.repo_id, config, **kwargs)
        else:
            # datasets' cache fingerprint of a local folder ignores its files' mtimes, so a mirror
            # changed in place would be served stale: build it in memory from a throwaway cache.
            with tempfile.TemporaryDirectory(prefix="embedbench-hub-") as tmp:
                ds = datasets.load_dataset(str(source.local), config, split=split, cache_dir=tmp,
                                           keep_in_memory=True)
    except (OSError, ValueError, KeyError) as exc:  # ConnectionError / FileNotFoundError are OSErrors
        if source.local is not None:
            raise EmbedbenchError(f"cannot read {where}: {_first_line(exc)}") from None
        raise EmbedbenchError(
            f"cannot load hub dataset {where} ({_first_line(exc)}); offline, either fill the cache once "
            f"online (datasets cache {kwargs['cache_dir']}), or put a copy of the repo folder at "
            f"${MIRROR_ENV}/{source.repo_id} or in the task's options.hub_path"
        ) from None
    if not isinstance(ds, datasets.Dataset):
        raise EmbedbenchError(f"{where}: expected one split, got {type(ds).__name__}")
    return ds


def require_columns(ds: "Dataset", columns: tuple[str, ...], where: str) -> None:
    """Raise a one-line error naming the missing columns (and the ones present)."""
    missing = [c for c in columns if c not in ds.column_names]
    if missing:
        raise EmbedbenchError(f"{where}: missing columns {missing} (has {ds.column_names})")
