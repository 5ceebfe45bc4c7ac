"""Pinning Hugging Face hub references: `ORG/NAME[@BRANCH]` becomes the commit it stands for, before it is keyed.

A branch (`main` when none is given) moves; a result or a cached vector keyed by it would be served
after the repo changed. So a reference is resolved to a commit sha first: the hub's answer where
the hub is reachable (it is the current one), else the local Hugging Face cache's `refs/BRANCH`
(the commit its snapshot holds). A reference neither knows stops with one line.
"""

from __future__ import annotations

import re
import socket
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from embedbench.errors import ModelError

_COMMIT = re.compile(r"[0-9a-f]{40}")
HUB_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class PinnedRepo:
    """A hub repo at one commit, with the local cache's snapshot of that commit when there is one."""

    repo_id: str
    commit: str
    snapshot: Path | None


def hub_reachable(timeout: float = 3.0) -> bool:
    """A quick connection probe, so an offline machine fails in seconds instead of retrying for minutes."""
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return False
    url = urlparse(constants.ENDPOINT)
    try:
        socket.create_connection((url.hostname, url.port or 443), timeout=timeout).close()
    except OSError:
        return False
    return True


def cached_snapshot(repo_id: str, revision: str) -> Path | None:
    """The local cache's snapshot folder for a commit or a branch (read through refs/BRANCH), or None."""
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(repo_id, revision=revision, local_files_only=True))
    except Exception:  # noqa: BLE001 - absent, incomplete or an invalid id: not in the cache
        return None


def _hub_commit(repo_id: str, revision: str) -> tuple[str | None, str]:
    """(the hub's commit for the revision, or None; why not, in a few words)."""
    if not hub_reachable():
        return None, "the hub cannot be reached"
    from huggingface_hub import HfApi

    try:
        return HfApi().model_info(repo_id, revision=revision, timeout=HUB_TIMEOUT_S).sha, ""
    except Exception as exc:  # noqa: BLE001 - not found, gated, network: the cache may still know it
        return None, f"the hub answered {type(exc).__name__}"


def pin_repo(repo_id: str, revision: str | None = None) -> PinnedRepo:
    """Resolve `repo_id@revision` (default branch main) to a commit; ModelError (one line) when nothing knows it."""
    from huggingface_hub import constants

    rev = revision or "main"
    commit, why = (rev, "") if _COMMIT.fullmatch(rev) else _hub_commit(repo_id, rev)
    snapshot = cached_snapshot(repo_id, commit or rev)
    if commit is None and snapshot is not None:
        commit = snapshot.name  # snapshots/<commit sha>, reached through refs/<rev>
    if commit is None:
        raise ModelError(
            f"cannot pin hf:{repo_id}@{rev} to a commit: {why} and the local Hugging Face cache "
            f"({constants.HF_HUB_CACHE}) holds no snapshot for refs/{rev}; download it where the hub is "
            f"reachable (huggingface-cli download {repo_id}) or give a commit as hf:{repo_id}@SHA"
        )
    return PinnedRepo(repo_id, commit, snapshot)
