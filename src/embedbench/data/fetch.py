"""Download a local suite's dataset from its pinned source into the data dir, all or nothing.

`fetch_dataset` downloads every file of a `DataSource` (`embedbench.data.sources`) into a hidden staging
folder inside the data dir (same filesystem), checks each file's size and sha256 as it arrives, unpacks
archives, and only then renames the staging folder to `<data dir>/<folder>` -- one atomic step. A
checksum mismatch, an HTTP error or an interrupted download removes the staging folder, so the data dir
never holds a partial dataset; a staging folder left by a killed fetch is removed by the next fetch
of that dataset. A present dataset is left alone unless `force` replaces it.

Mirrors: with `mirror` (or ``$EMBEDBENCH_DATA_MIRROR``) set, file `path` of dataset folder `folder` is
read from `<mirror>/<folder>/<path>` instead of its pinned URL -- a mirror is a copy of a data dir
served over http(s), or a local folder. The pinned checksums still apply.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import shutil
import sys
import tarfile
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
import zipfile
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from embedbench.atomic import exclusive_lock, fsync_dir, is_locked
from embedbench.data.sources import DataSource, SourceFile
from embedbench.data.suites import available_suites, load_suite
from embedbench.errors import EmbedbenchError

__all__ = ["MIRROR_ENV", "DatasetState", "FetchOutcome", "dataset_state", "default_mirror", "fetch_dataset",
           "file_url", "suites_by_folder"]

MIRROR_ENV = "EMBEDBENCH_DATA_MIRROR"
STAGING_PREFIX = ".fetch-"  # hidden: loaders and `data list` never see a staging folder
STALE_AFTER_S = 60  # an unlocked staging folder this old belongs to a killed fetch
TIMEOUT_S = 60  # per network read
CHUNK = 1 << 20
_STAGING_SUFFIX = re.compile(r"(old-)?[0-9a-f]{12}")


@dataclass(frozen=True)
class DatasetState:
    """Whether `source`'s files are in `folder` (`missing` lists the absent ones)."""

    source: DataSource
    folder: Path
    missing: tuple[str, ...]

    @property
    def present(self) -> bool:
        return not self.missing

    @property
    def status(self) -> str:
        if not self.missing:
            return "present"
        wanted = len(self.source.wanted())
        return "absent" if len(self.missing) == wanted else f"incomplete ({len(self.missing)} of {wanted} missing)"


@dataclass(frozen=True)
class FetchOutcome:
    folder: Path
    fetched: bool  # False: it was already present
    files: int = 0
    bytes: int = 0


def dataset_state(source: DataSource, data_dir: Path) -> DatasetState:
    folder = Path(data_dir).expanduser() / source.folder
    return DatasetState(source, folder, tuple(p for p in source.wanted() if not (folder / p).is_file()))


def default_mirror() -> str | None:
    """``$EMBEDBENCH_DATA_MIRROR`` when set (and non-empty), else None (the pinned URLs)."""
    return os.environ.get(MIRROR_ENV) or None


def file_url(source: DataSource, file: SourceFile, mirror: str | None = None) -> str:
    """Where `file` is downloaded from: its pinned URL, or `<mirror>/<folder>/<path>` (a folder mirror: file://)."""
    if not mirror:
        return file.url
    base = mirror if "://" in mirror else Path(mirror).expanduser().resolve().as_uri()
    return f"{base.rstrip('/')}/{urllib.parse.quote(f'{source.folder}/{file.path}')}"


def suites_by_folder() -> dict[str, list[str]]:
    """Data-dir folder -> the shipped suites with a task reading under it (a relative `path`), each suite read once."""
    using: dict[str, list[str]] = {}
    for name in available_suites():
        folders = {Path(t.path).parts[0] for t in load_suite(name).tasks if t.path and not Path(t.path).is_absolute()}
        for folder in sorted(folders):
            using.setdefault(folder, []).append(name)
    return using


def fetch_dataset(source: DataSource, data_dir: Path, *, mirror: str | None = None, force: bool = False,
                  progress: bool = True) -> FetchOutcome:
    """Put `source`'s files into `<data_dir>/<source.folder>`: downloaded, verified, renamed into place.

    Already present: nothing is downloaded (`fetched` False) unless `force`. A folder that exists but
    lacks files is never overwritten without `force` (it may hold the user's own files).
    """
    data_dir = Path(data_dir).expanduser()
    state = dataset_state(source, data_dir)
    if state.present and not force:
        return FetchOutcome(state.folder, fetched=False)
    if (state.folder.exists() or state.folder.is_symlink()) and not force:
        raise EmbedbenchError(f"{state.folder} exists but lacks {_names(state.missing)}; move it away or pass "
                              f"--force to replace it")
    created = not data_dir.exists()
    data_dir.mkdir(parents=True, exist_ok=True)
    _remove_stale_staging(data_dir, source.folder)
    staging = data_dir / f"{STAGING_PREFIX}{source.folder}-{uuid.uuid4().hex[:12]}"
    staging.mkdir()
    try:
        with exclusive_lock(staging):
            total = sum(_fetch_file(source, f, staging, mirror, progress) for f in source.files)
            _replace(staging, state.folder, data_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if created:
            _remove_if_empty(data_dir)
        raise
    return FetchOutcome(state.folder, fetched=True, files=len(source.wanted()), bytes=total)


def _names(paths: tuple[str, ...], shown: int = 3) -> str:
    more = f" and {len(paths) - shown} more" if len(paths) > shown else ""
    return ", ".join(paths[:shown]) + more


def _fetch_file(source: DataSource, file: SourceFile, staging: Path, mirror: str | None, progress: bool) -> int:
    """Download one file into the staging folder (unpacking an archive); returns the bytes downloaded."""
    url = file_url(source, file, mirror)
    target = staging / file.path
    target.parent.mkdir(parents=True, exist_ok=True)
    got, digest = _download(url, target, file.size, f"{source.name}/{file.path}", progress)
    if got < file.size:
        raise EmbedbenchError(f"{url}: the download ended early ({got} of {file.size} bytes); "
                              f"nothing written to the data dir")
    if (got, digest) != (file.size, file.sha256):
        raise EmbedbenchError(f"{url}: checksum mismatch (got {got} bytes, sha256 {digest}; pinned {file.size} "
                              f"bytes, sha256 {file.sha256}); refused, nothing written to the data dir")
    if file.extract:
        _extract(target, staging, url)
        target.unlink()
        missing = [m for m in file.members if not (staging / m).is_file()]
        if missing:
            raise EmbedbenchError(f"{url}: the archive lacks {_names(tuple(missing))}; nothing written to the data dir")
    return got


def _download(url: str, target: Path, size: int, label: str, progress: bool) -> tuple[int, str]:
    """Stream `url` into `target` (fsynced); returns (bytes, sha256). Stops past `size` + 1 bytes."""
    sha = hashlib.sha256()
    got = 0
    try:
        # A fresh opener reads the proxy variables (http(s)_proxy, no_proxy) as they are now.
        with urllib.request.build_opener().open(url, timeout=TIMEOUT_S) as response, target.open("wb") as out, \
                tqdm(total=size, desc=label, unit="B", unit_scale=True, unit_divisor=1024, file=sys.stderr,
                     disable=None if progress else True, dynamic_ncols=True) as bar:
            while got <= size and (chunk := response.read(CHUNK)):
                sha.update(chunk)
                out.write(chunk)
                got += len(chunk)
                bar.update(len(chunk))
            out.flush()
            os.fsync(out.fileno())
    except urllib.error.HTTPError as exc:
        raise EmbedbenchError(f"{url}: HTTP {exc.code} {exc.reason}; nothing written to the data dir") from None
    except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
        reason = getattr(exc, "reason", None) or str(exc) or type(exc).__name__
        raise EmbedbenchError(f"{url}: download failed ({reason}); nothing written to the data dir") from None
    return got, sha.hexdigest()


def _extract(archive: Path, into: Path, url: str) -> None:
    """Unpack a zip or tar archive; members may not leave `into` (zipfile drops such parts, tar's data filter refuses)."""
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as z:
                z.extractall(into)
        else:
            with tarfile.open(archive) as t:
                t.extractall(into, filter="data")
    except (tarfile.TarError, zipfile.BadZipFile, OSError) as exc:
        raise EmbedbenchError(f"{url}: cannot unpack the archive ({exc}); nothing written to the data dir") from None


def _replace(staging: Path, folder: Path, data_dir: Path) -> None:
    """Rename the finished staging folder to `folder`, moving an old one aside first and deleting it after."""
    old = None
    if folder.exists() or folder.is_symlink():
        old = data_dir / f"{STAGING_PREFIX}{folder.name}-old-{uuid.uuid4().hex[:12]}"
        os.rename(folder, old)
    os.rename(staging, folder)
    fsync_dir(data_dir)
    if old is not None:
        old.unlink() if old.is_symlink() else shutil.rmtree(old, ignore_errors=True)


def _remove_stale_staging(data_dir: Path, folder: str) -> None:
    """Delete staging (and moved-aside) folders of `folder` that no running fetch holds and that are not fresh."""
    for path in data_dir.glob(f"{STAGING_PREFIX}{folder}-*"):
        if not _STAGING_SUFFIX.fullmatch(path.name[len(STAGING_PREFIX) + len(folder) + 1:]):
            continue  # another dataset's folder whose name starts with ours
        try:
            stale = time.time() - path.lstat().st_mtime > STALE_AFTER_S
        except FileNotFoundError:
            continue
        if stale and path.is_dir() and not path.is_symlink() and not is_locked(path):
            shutil.rmtree(path, ignore_errors=True)


def _remove_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:
        pass
