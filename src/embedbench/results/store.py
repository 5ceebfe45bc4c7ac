"""Result files: where they live, writing them safely, and the one reader every layer uses.

One JSON summary per result identity (`embedbench.results.model.Result`) plus a per-query file
beside it; re-running an identity replaces its files. Layout (schema 2)::

    <results>/<model>/<task>/<identity hash>.json                         the summary
    <results>/<model>/<task>/<identity hash>.<content hash>.queries.json.gz  its per-query scores (gzip JSON)

The per-query file is named after its own content and written first; the summary, which names it
(``per_query_file``), is written last. Both go through ``embedbench.atomic``, so a reader, or a run
killed between the two writes, always finds a summary together with the per-query file it was
written with. Schema-1 files (per-query file ``<identity hash>.queries.json``) are still read.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import os
import re
from contextlib import ExitStack
from pathlib import Path

from pydantic import ValidationError

from embedbench.atomic import atomic_write_bytes, atomic_write_text, exclusive_lock
from embedbench.errors import EmbedbenchError
from embedbench.results.model import GZIP_SUFFIX, PER_QUERY_SUFFIX, SCHEMA_VERSION, Result

log = logging.getLogger(__name__)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")[:80] or "_"


def result_path(results_dir: Path, result: Result) -> Path:
    return results_dir / _slug(result.model) / _slug(result.task) / f"{result.identity_hash()}.json"


def per_query_path(summary_path: Path, result: Result) -> Path:
    """The per-query file that belongs to the summary at ``summary_path``."""
    if result.per_query_file is not None:
        return summary_path.with_name(result.per_query_file)
    return summary_path.with_name(summary_path.stem + PER_QUERY_SUFFIX)  # schema 1


def check_results_dir(path: Path) -> None:
    """Refuse a results folder that is a file, or that cannot be created or written, before anything runs.

    Creates nothing, so bad input still leaves the disk untouched.
    """
    path = Path(path)
    if path.exists():
        if not path.is_dir():
            raise EmbedbenchError(f"--results-dir {path} is a file, not a folder")
        if not os.access(path, os.W_OK | os.X_OK):
            raise EmbedbenchError(f"--results-dir {path} is not writable")
        return
    parent = next(p for p in path.absolute().parents if p.exists())
    if not parent.is_dir():
        raise EmbedbenchError(f"--results-dir {path} cannot be created: {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise EmbedbenchError(f"--results-dir {path} cannot be created: {parent} is not writable")


def write_result(results_dir: Path, result: Result, per_query: dict[str, dict[str, float | None]]) -> Path:
    """Write the per-query file, then the summary naming it, then drop the identity's older per-query files.

    A lock on the task folder keeps two runs writing the same identity from removing each other's
    per-query file between their two writes. Where the file system refuses to lock a folder (NFS),
    older per-query files are left in place: unreferenced, they are only clutter.
    """
    path = result_path(results_dir, result)
    body = json.dumps(per_query, sort_keys=True).encode()
    name = f"{path.stem}.{hashlib.sha256(body).hexdigest()[:12]}{PER_QUERY_SUFFIX}{GZIP_SUFFIX}"
    summary = result.model_copy(update={"per_query_file": name, "schema_version": SCHEMA_VERSION})
    path.parent.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        try:
            locked = stack.enter_context(exclusive_lock(path.parent))
        except OSError:
            locked = False
        # gzip: a 2,500-query task's 35 metrics are 2.7 MB as JSON, 0.4 MB compressed (baselines are committed).
        atomic_write_bytes(path.with_name(name), gzip.compress(body, mtime=0))
        atomic_write_text(path, summary.model_dump_json(indent=2))
        for old in path.parent.glob(f"{path.stem}*{PER_QUERY_SUFFIX}*") if locked else ():
            if old.name != name and _per_query_of(old.name, path.stem):
                old.unlink(missing_ok=True)
    return path


def _per_query_of(name: str, stem: str) -> bool:
    """Whether ``name`` is a per-query file of identity ``stem`` (schema 1 or 2)."""
    middle = name[len(stem):].removesuffix(GZIP_SUFFIX).removesuffix(PER_QUERY_SUFFIX)
    return middle == "" or re.fullmatch(r"\.[0-9a-f]{12}", middle) is not None


def _is_summary(path: Path) -> bool:
    return not path.name.endswith(PER_QUERY_SUFFIX) and not path.name.startswith(".")


def load_per_query_file(path: Path) -> dict[str, dict[str, float | None]]:
    """A per-query file's scores ({metric: {query id: value}}), gzip-compressed (schema 2) or plain (schema 1)."""
    data = path.read_bytes()
    return json.loads(gzip.decompress(data) if path.name.endswith(GZIP_SUFFIX) else data)


def scan_results(root: Path, *, strict: bool = False) -> list[tuple[Path, Result]]:
    """Every result summary under ``root`` with its path, sorted by identity.

    A file that cannot be read or is not a result is skipped with one warning line naming it, or,
    with ``strict`` (the gate: a verdict must not quietly leave a result out), raises
    EmbedbenchError naming it. A ``root`` that is not a folder raises in both modes.
    """
    root = Path(root)
    if not root.is_dir():
        what = "is a file, not a folder" if root.exists() else "does not exist"
        raise EmbedbenchError(f"results folder {root} {what}")
    found = []
    for path in sorted(p for p in root.rglob("*.json") if _is_summary(p)):
        try:
            found.append((path, Result.model_validate_json(path.read_bytes())))
        except (ValidationError, OSError) as exc:
            if strict:
                raise EmbedbenchError(f"{path}: {_why(exc)}") from None
            log.warning("embedbench: warning: skipping %s: %s", path, _why(exc))
    return sorted(found, key=lambda item: (json.dumps(item[1].identity(), sort_keys=True), str(item[0])))


def _why(exc: Exception) -> str:
    """One line saying why a summary file could not be used."""
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        return f"not an embedbench result ({where + ': ' if where else ''}{first['msg']})"
    return f"cannot read it ({getattr(exc, 'strerror', None) or exc})"


def read_results(results_dir: Path) -> list[Result]:
    """Every result under ``results_dir``, sorted by identity (unreadable files skipped with a warning)."""
    return [result for _path, result in scan_results(results_dir)]


def read_per_query(results_dir: Path, result: Result) -> dict[str, dict[str, float | None]]:
    """The per-query scores stored for ``result``'s identity under ``results_dir``.

    The file is the one ``result`` names or, for a result as evaluate() returned it (which does not
    know the name) or one rewritten since it was read, the one the stored summary names now.
    """
    path = result_path(results_dir, result)
    named: Result | None = result if result.per_query_file is not None else None
    missing: set[Path] = set()
    for _attempt in range(5):  # each retry follows a rewrite that removed the file we were about to read
        per_query = per_query_path(path, named or _stored_summary(path) or result)
        try:
            return load_per_query_file(per_query)
        except FileNotFoundError:
            if per_query in missing:
                break
            missing.add(per_query)
            named = None
        except (OSError, ValueError) as exc:
            raise EmbedbenchError(f"{per_query}: per-query scores are unreadable ({exc})") from None
    raise EmbedbenchError(f"{per_query}: per-query scores are missing")


def _stored_summary(path: Path) -> Result | None:
    try:
        return Result.model_validate_json(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValidationError) as exc:
        raise EmbedbenchError(f"{path}: {_why(exc)}") from None
