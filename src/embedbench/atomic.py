"""The one way embedbench persists a file: temp file in the same folder, fsync, rename, fsync the folder.

A reader (or a run killed half-way) sees either the old file or the whole new one, never a part; the
folder fsync makes the rename itself survive a power cut. Temp names start with ``.tmp-`` so scanners
skip them, and a failed write removes its temp file.

``exclusive_lock`` is the matching inter-process lock (``fcntl.flock``) for the few places where
several writes must happen as one step (filling a cache namespace, replacing a result's files).
"""

from __future__ import annotations

import fcntl
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

# mkstemp creates files 0600; a written file gets the mode open() would give it (0666 minus the
# umask), so a cache or results folder shared between users stays readable by them.
_UMASK = os.umask(0)
os.umask(_UMASK)
_FILE_MODE = 0o666 & ~_UMASK


def atomic_write(path: Path | str, write: Callable[[BinaryIO], object]) -> Path:
    """Call ``write(f)`` on a temp file beside ``path``, then make it ``path`` atomically; returns ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), _FILE_MODE)
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
    return path


def atomic_write_bytes(path: Path | str, data: bytes) -> Path:
    return atomic_write(path, lambda f: f.write(data))


def atomic_write_text(path: Path | str, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def fsync_dir(folder: Path) -> None:
    """Persist a folder's entries (a rename into it); a no-op where folders cannot be opened (Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextmanager
def exclusive_lock(path: Path | str, *, wait: bool = True) -> Iterator[bool]:
    """Hold ``fcntl.flock(LOCK_EX)`` on ``path`` (a folder, or a lock file created on demand).

    Yields True while held. With ``wait=False`` it yields False at once when another process holds
    it. The lock is released when the block ends or the process dies (the kernel drops it), so a
    killed run never leaves a stale lock. If the lock file is removed or replaced while we waited
    (someone deleted the folder), the lock on the old inode protects nothing: take it again.
    """
    path = Path(path)
    while True:
        fd = _open_for_lock(path)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            except BlockingIOError:
                yield False
                return
            if _same_inode(fd, path):
                yield True
                return
        finally:
            os.close(fd)  # closing the only descriptor releases the lock


def is_locked(path: Path | str) -> bool:
    """Whether another process holds ``exclusive_lock(path)`` now (False when nothing is there)."""
    path = Path(path)
    if not path.exists():
        return False
    with exclusive_lock(path, wait=False) as held:
        return not held


def _open_for_lock(path: Path) -> int:
    if path.is_dir():
        return os.open(path, os.O_RDONLY)
    path.parent.mkdir(parents=True, exist_ok=True)
    return os.open(path, os.O_RDWR | os.O_CREAT, _FILE_MODE)


def _same_inode(fd: int, path: Path) -> bool:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (held.st_dev, held.st_ino)
