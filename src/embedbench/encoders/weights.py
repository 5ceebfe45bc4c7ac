"""Weights first: a hub preset's weights are found (or known to be downloadable) before any data loads.

`check_weights` runs while a run is planned: the local Hugging Face cache is read first (no network);
when it lacks the snapshot, the hub is asked once for the commit's file list with sizes, and the free
space of the cache's disk is compared with what is still missing. `fetch_weights` runs when the model
loads: the cached snapshot, or one line on stderr with the download's size, then the download.

Every way this can fail is one distinct line (the CLI prints it and exits 2): absent and offline, no
access (HF_TOKEN), no such revision, no such repo, not enough disk, or the hub's own words.
"""

from __future__ import annotations

import logging
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from embedbench.encoders.hub import (
    ACCESS,
    NOT_READ,
    OFFLINE,
    REPO,
    REVISION,
    HubRefusal,
    cached_snapshot,
    hub_errors,
    model_info,
    refusal,
)
from embedbench.encoders.load_errors import one_line
from embedbench.errors import ModelError

log = logging.getLogger(__name__)
LOCAL_COPY = "or pass --model PATH to a local copy"


@dataclass(frozen=True)
class Download:
    """What fetching a commit's weights into the local cache takes: `size` bytes not yet in `cache`."""

    repo_id: str
    commit: str
    size: int
    cache: Path


def human_size(n: int) -> str:
    """Decimal units, as the hub shows file sizes: 8041246720 -> '8.04 GB'."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.2f} {unit}"
    return f"{n} B"


def hub_cache() -> Path:
    """The folder downloads land in (HF_HUB_CACHE, by default HF_HOME/hub)."""
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def check_weights(name: str, repo_id: str, revision: str) -> Path | None:
    """The cached snapshot of `repo_id@revision`; else None once the hub has it and the disk can hold it.
    Anything else is one ModelError line, raised before any data is loaded."""
    snapshot = cached_snapshot(repo_id, revision)
    if snapshot is None:
        plan_download(name, repo_id, revision)
    return snapshot


def plan_download(name: str, repo_id: str, revision: str) -> Download:
    """Ask the hub for the commit's files and sizes; refuse in one line when it will not give them or the
    cache's disk has too little free space for the part not yet cached."""
    try:
        info = model_info(repo_id, revision, files=True)
    except HubRefusal as refused:
        raise refused_weights(name, repo_id, revision, refused) from refused
    cache = hub_cache()
    size = _missing_bytes(repo_id, info.siblings or [], cache)
    free = shutil.disk_usage(_existing(cache)).free
    if size > free:
        raise ModelError(
            f"{name}: the weights {_ref(repo_id, info.sha)} need {human_size(size)} but only {human_size(free)} is "
            f"free in {cache}; free some space, point HF_HUB_CACHE (or HF_HOME) at a larger disk, {LOCAL_COPY}"
        )
    return Download(repo_id, info.sha, size, cache)


def fetch_weights(name: str, repo_id: str, revision: str) -> Path:
    """The local folder holding `repo_id@revision`: the cached snapshot (no network), else downloaded after
    one line on stderr saying how much and where."""
    snapshot = cached_snapshot(repo_id, revision)
    if snapshot is not None:
        log.debug("%s: weights from the local cache, %s", name, snapshot)
        return snapshot
    from huggingface_hub import snapshot_download

    download = plan_download(name, repo_id, revision)
    print(f"embedbench: downloading {_ref(repo_id, download.commit)}: {human_size(download.size)} "
          f"into {download.cache}", file=sys.stderr, flush=True)
    try:
        return Path(snapshot_download(repo_id, revision=download.commit, ignore_patterns=list(NOT_READ)))
    except hub_errors() as exc:
        raise refused_weights(name, repo_id, revision, refusal(exc)) from exc
    except OSError as exc:  # the disk filled up meanwhile, or the cache is not writable
        raise ModelError(f"{name}: downloading {_ref(repo_id, download.commit)} into {download.cache} failed: "
                         f"{one_line(exc)}; fix that and run again, {LOCAL_COPY}") from exc


def refused_weights(name: str, repo_id: str, revision: str, refused: HubRefusal) -> ModelError:
    """One line per reason, each naming what to do."""
    ref, get = _ref(repo_id, revision), f"hf download {repo_id} --revision {revision}"
    if refused.reason == OFFLINE:
        return ModelError(f"{name}: the weights {ref} are not in the local Hugging Face cache ({hub_cache()}) and "
                          f"{refused.why}; download them where the hub is reachable ({get}) {LOCAL_COPY}")
    if refused.reason == ACCESS:
        return ModelError(f"{name}: the hub refuses access to {repo_id} ({refused.why}); accept its terms on the "
                          f"hub and set HF_TOKEN to a token that may read it (or run `hf auth login`), {LOCAL_COPY}")
    if refused.reason == REVISION:
        return ModelError(f"{name}: the hub has no revision {revision} of {repo_id} ({refused.why}); the pin names "
                          f"a commit the repo does not hold, {LOCAL_COPY}")
    if refused.reason == REPO:
        return ModelError(f"{name}: the hub has no repo {repo_id} ({refused.why}); if it is private set HF_TOKEN, "
                          f"{LOCAL_COPY}")
    return ModelError(f"{name}: cannot get the weights {ref} from the hub: {refused.why}; try again, download "
                      f"them with `{get}`, {LOCAL_COPY}")


def _ref(repo_id: str, revision: str) -> str:
    """`org/name@964a2aa`: a commit shortened as git shows it, a branch as given."""
    short = revision[:7] if len(revision) == 40 else revision
    return f"{repo_id}@{short}"


def _missing_bytes(repo_id: str, siblings: list, cache: Path) -> int:
    """Bytes of the files a download fetches (NOT_READ left out) whose blob is not in the cache yet.

    The cache stores a file once, as blobs/<etag>: an LFS file's sha256, else its git blob id.
    """
    from huggingface_hub.utils import filter_repo_objects

    blobs = cache / f"models--{repo_id.replace('/', '--')}" / "blobs"
    wanted = filter_repo_objects(siblings, ignore_patterns=list(NOT_READ), key=lambda s: s.rfilename)
    return sum(s.size or 0 for s in wanted if not (blobs / (s.lfs.sha256 if s.lfs else s.blob_id or "-")).is_file())


def _existing(path: Path) -> Path:
    """The path, or its nearest existing parent (the cache folder may not exist before the first download)."""
    path = path.expanduser().absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path
