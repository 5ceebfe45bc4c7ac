"""Asking the Hugging Face hub, and pinning `ORG/NAME[@BRANCH]` to the commit it stands for.

Every question goes through huggingface_hub's own HTTP client, so it honours HF_ENDPOINT, HF_TOKEN,
HF_HUB_OFFLINE and the proxy variables; it is asked once, with a short timeout, so an offline machine
fails in seconds. What the client raises is sorted into a `HubRefusal` whose `reason` says what a user
can do about it (get online, get access, fix the revision), so callers print one distinct line each.

A branch (`main` when none is given) moves; a result or a cached vector keyed by it would be served
after the repo changed. So a reference is resolved to a commit sha first: the hub's answer where
the hub answers (it is the current one), else the local Hugging Face cache's `refs/BRANCH`
(the commit its snapshot holds). A reference neither knows stops with one line.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from embedbench.encoders.load_errors import one_line
from embedbench.errors import ModelError

log = logging.getLogger(__name__)

_COMMIT = re.compile(r"[0-9a-f]{40}")
HUB_TIMEOUT_S = 10.0
# Files for other runtimes that no embedbench loader reads: never downloaded, never required in the cache
# (a pplx-embed repo's ONNX export alone would double the download).
NOT_READ = ("onnx/*", "openvino/*", "coreml/*", "*.onnx", "*.onnx_data", "*.gguf", "*.h5", "*.msgpack", "*.ot",
            "*.tflite")

# HubRefusal reasons: what the user does about it.
OFFLINE = "offline"  # HF_HUB_OFFLINE, or no connection: download elsewhere
ACCESS = "access"  # 401 / 403, gated or private: HF_TOKEN
REVISION = "revision"  # the repo has no such revision
REPO = "repo"  # no such repo (404)
OTHER = "other"  # anything else the hub answered: its own words


class HubRefusal(Exception):
    """The hub gave no usable answer; `why` is one line in the hub's (or the connection's) own words."""

    def __init__(self, reason: str, why: str) -> None:
        super().__init__(why)
        self.reason, self.why = reason, why


@dataclass(frozen=True)
class PinnedRepo:
    """A hub repo at one commit, with the local cache's snapshot of that commit when there is one."""

    repo_id: str
    commit: str
    snapshot: Path | None


def hub_errors() -> tuple[type[BaseException], ...]:
    """What huggingface_hub raises when the hub does not answer usefully (imported late: it loads slowly).

    httpx2 is the HTTP client huggingface_hub 2.x is built on: its TransportError covers connection,
    proxy, timeout and protocol failures. HfHubHTTPError covers every refusal (gated, not found, 5xx),
    LocalEntryNotFoundError a download that found neither the hub nor the cache, HFValidationError an
    invalid repo id.
    """
    import httpx2
    from huggingface_hub.errors import HfHubHTTPError, HFValidationError, LocalEntryNotFoundError, OfflineModeIsEnabled

    return OfflineModeIsEnabled, httpx2.TransportError, HfHubHTTPError, LocalEntryNotFoundError, HFValidationError


def refusal(exc: BaseException) -> HubRefusal:
    """Sort one of `hub_errors()` by what a user can do about it."""
    import httpx2
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    if isinstance(exc, LocalEntryNotFoundError) and isinstance(exc.__cause__, Exception):
        exc = exc.__cause__  # snapshot_download wraps the connection error it met
    if isinstance(exc, OfflineModeIsEnabled):
        return HubRefusal(OFFLINE, "HF_HUB_OFFLINE is set")
    if isinstance(exc, httpx2.TransportError):
        return HubRefusal(OFFLINE, f"the hub cannot be reached ({type(exc).__name__}: {one_line(exc)})")
    if not isinstance(exc, HfHubHTTPError):
        return HubRefusal(OTHER, one_line(exc))
    status = exc.response.status_code
    said = f"{status} {exc.server_message or _first_words(exc)}".strip()
    if isinstance(exc, GatedRepoError):
        return HubRefusal(ACCESS, f"a gated repo: {said}")
    if isinstance(exc, RevisionNotFoundError):
        return HubRefusal(REVISION, said)
    if status in (401, 403):
        return HubRefusal(ACCESS, f"{said}: a gated or private repo")
    if isinstance(exc, RepositoryNotFoundError):
        return HubRefusal(REPO, said)
    return HubRefusal(OTHER, said)


def _first_words(exc: BaseException) -> str:
    """huggingface_hub's messages start `404 Client Error.` then a blank line: the first line after the status."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[1] if len(lines) > 1 else ""


def model_info(repo_id: str, revision: str, *, files: bool = False) -> Any:
    """The hub's ModelInfo of `repo_id@revision` (with every file's size when `files`); HubRefusal otherwise."""
    from huggingface_hub import HfApi

    try:
        return HfApi().model_info(repo_id, revision=revision, timeout=HUB_TIMEOUT_S, files_metadata=files)
    except hub_errors() as exc:
        log.debug("hub: %s@%s: %s", repo_id, revision, exc)
        raise refusal(exc) from exc


def cached_snapshot(repo_id: str, revision: str) -> Path | None:
    """The local cache's complete snapshot folder for a commit or a branch (read through refs/BRANCH), or None.
    Reads the disk only, never the network."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HFValidationError, LocalEntryNotFoundError

    try:
        return Path(snapshot_download(repo_id, revision=revision, local_files_only=True,
                                      ignore_patterns=list(NOT_READ)))
    except (LocalEntryNotFoundError, HFValidationError):  # absent, incomplete, or an invalid id: not cached
        return None


def pin_repo(repo_id: str, revision: str | None = None) -> PinnedRepo:
    """Resolve `repo_id@revision` (default branch main) to a commit; ModelError (one line) when nothing knows it."""
    from huggingface_hub import constants

    rev = revision or "main"
    commit, why = rev, ""
    if not _COMMIT.fullmatch(rev):
        try:
            commit = model_info(repo_id, rev).sha
        except HubRefusal as refused:  # the cache may still know it
            commit, why = None, _pin_why(refused, repo_id, rev)
    snapshot = cached_snapshot(repo_id, commit or rev)
    if commit is None and snapshot is not None:
        commit = snapshot.name  # snapshots/<commit sha>, reached through refs/<rev>
    if commit is None:
        raise ModelError(
            f"cannot pin hf:{repo_id}@{rev} to a commit: {why}, and the local Hugging Face cache "
            f"({constants.HF_HUB_CACHE}) holds no snapshot for refs/{rev}; download it where the hub is "
            f"reachable (hf download {repo_id} --revision {rev}) or give a commit as hf:{repo_id}@SHA"
        )
    return PinnedRepo(repo_id, commit, snapshot)


def _pin_why(refused: HubRefusal, repo_id: str, rev: str) -> str:
    """Why the hub named no commit, in words that say what to do."""
    if refused.reason == ACCESS:
        return f"the hub refuses access to {repo_id} ({refused.why}; set HF_TOKEN to a token that may read it)"
    if refused.reason == REVISION:
        return f"the hub has no revision {rev} of {repo_id} ({refused.why})"
    if refused.reason == REPO:
        return f"the hub has no repo {repo_id} ({refused.why})"
    if refused.reason == OFFLINE:
        return refused.why
    return f"the hub answered {refused.why}"
