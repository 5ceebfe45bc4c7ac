"""BFCL tool retrieval: the Berkeley Function Calling Leaderboard data as a retrieval task.

The data ships inside the PyPI wheel ``bfcl-eval==2026.3.23`` (Apache-2.0). The package is
never installed (it pins old numpy / faiss): :func:`ensure_bfcl_wheel` downloads the wheel
with ``pip download --no-deps`` into ``<cache_dir>/wheels`` and :func:`load_bfcl` reads the
JSON-lines files straight from the zip.

Mapping:

- items: the ten single-turn categories in :data:`BFCL_CATEGORIES`, each from
  ``bfcl_eval/data/BFCL_v4_<category>.json`` with its ground truth in
  ``bfcl_eval/data/possible_answer/``. Left out: ``multi_turn_*`` (multi-turn), ``irrelevance``,
  ``live_irrelevance``, ``live_relevance`` and ``format_sensitivity`` (no possible answers),
  and ``memory`` / ``web_search`` (agentic: no offered functions; their answers are texts);
- query: the user message(s) of the item's first turn joined with a newline (system
  messages, present in 49 live items, are left out); query id = the item id;
- corpus: every distinct tool definition offered by any item, deduplicated by
  ``(name, description)`` (the first definition in category / file order wins when the
  parameters differ), rendered with :func:`embedbench.data.tools.render_tool`;
  document id = ``"<name>@<8 hex of sha256(name NUL description)>"``;
- relevant (grade 1): the tools the item offers whose names appear in its ground truth
  (a list of ``{function_name: {argument: [values]}}``; names may be dotted).
  Items whose ground-truth names match none of the offered tools are dropped and counted in
  ``extra["dropped"]`` ({category: count}); ``extra["category"]`` is {query id: category}.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

from embedbench.data.locations import default_cache_dir
from embedbench.data.spec import TaskSpec
from embedbench.data.tasks import LoadContext, TaskData
from embedbench.data.tools import render_tool
from embedbench.data.types import Document, Query, RetrievalData
from embedbench.errors import DataError, EmbedbenchError

__all__ = ["BFCL_CATEGORIES", "BFCL_REQUIREMENT", "BFCL_VERSION", "ensure_bfcl_wheel", "load_bfcl"]

BFCL_VERSION = "2026.3.23"
BFCL_REQUIREMENT = f"bfcl-eval=={BFCL_VERSION}"
BFCL_CATEGORIES: tuple[str, ...] = (
    "simple_python",
    "simple_java",
    "simple_javascript",
    "multiple",
    "parallel",
    "parallel_multiple",
    "live_simple",
    "live_multiple",
    "live_parallel",
    "live_parallel_multiple",
)
_WHEEL_GLOB = f"bfcl_eval-{BFCL_VERSION}-*.whl"
_DATA = "bfcl_eval/data"


def _find_wheel(folder: Path) -> Path | None:
    for p in sorted(folder.glob(_WHEEL_GLOB)) if folder.is_dir() else []:
        if zipfile.is_zipfile(p):
            return p
    return None


def ensure_bfcl_wheel(cache_dir: Path) -> Path:
    """The path of the ``bfcl-eval`` wheel in ``cache_dir/wheels``, downloading it when absent."""
    wheels = Path(cache_dir) / "wheels"
    found = _find_wheel(wheels)
    if found is not None:
        return found
    fetch = f"python -m pip download --no-deps {BFCL_REQUIREMENT} -d {wheels}"
    reason = ""
    try:
        wheels.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=wheels, prefix=".download-") as tmp:
            cmd = [
                sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                "--disable-pip-version-check", "--quiet", BFCL_REQUIREMENT, "-d", tmp,
            ]  # fmt: skip
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
            got = _find_wheel(Path(tmp))
            if proc.returncode == 0 and got is not None:
                target = wheels / got.name
                os.replace(got, target)
                return target
            lines = [ln.strip() for ln in (proc.stderr or proc.stdout or "").splitlines() if ln.strip()]
            reason = lines[-1][:200] if lines else f"pip exited with status {proc.returncode}"
    except (OSError, subprocess.SubprocessError) as exc:
        reason = f"{type(exc).__name__}: {exc}"[:200]
    raise EmbedbenchError(
        f"the BFCL data wheel ({BFCL_REQUIREMENT}) is not in {wheels} and pip could not download it "
        f"({reason}); fetch it with: {fetch}"
    )


def _jsonl(zf: zipfile.ZipFile, wheel: Path, member: str) -> Iterator[tuple[str, int, dict]]:
    """(location, line number, object) for each non-blank JSON line of a zip member."""
    where = f"{wheel}!{member}"
    try:
        raw = zf.read(member)
    except KeyError:
        raise DataError(where, "missing from the wheel") from None
    for lineno, line in enumerate(raw.decode("utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(where, f"malformed JSON line ({exc.msg})", lineno) from None
        if not isinstance(obj, dict) or not isinstance(obj.get("id"), str) or not obj["id"]:
            raise DataError(where, "expected a JSON object with a string 'id'", lineno)
        yield where, lineno, obj


def _doc_id(name: str, description: str) -> str:
    digest = hashlib.sha256(f"{name}\0{description}".encode()).hexdigest()[:8]
    return f"{name}@{digest}"


def _query_text(item: dict, where: str, lineno: int) -> str:
    turns = item.get("question")
    if not isinstance(turns, list) or not turns or not isinstance(turns[0], list):
        raise DataError(where, f"item {item['id']!r}: 'question' is not a list of turns", lineno)
    parts = [
        m["content"].strip()
        for m in turns[0]
        if isinstance(m, dict) and m.get("role") == "user" and isinstance(m.get("content"), str)
    ]
    text = "\n".join(p for p in parts if p)
    if not text:
        raise DataError(where, f"item {item['id']!r}: the first turn has no user message", lineno)
    return text


def load_bfcl(wheel: Path) -> RetrievalData:
    """Read the BFCL tool-retrieval task from a ``bfcl-eval`` wheel (see the module docstring)."""
    wheel = Path(wheel)
    if not wheel.is_file():
        raise DataError(wheel, "file not found")
    corpus: dict[str, Document] = {}
    by_key: dict[tuple[str, str], str] = {}
    queries: dict[str, Query] = {}
    qrels: dict[str, dict[str, int]] = {}
    category: dict[str, str] = {}
    dropped: dict[str, int] = {}
    try:
        zf = zipfile.ZipFile(wheel)
    except (zipfile.BadZipFile, OSError) as exc:
        raise DataError(wheel, f"not a readable wheel ({exc})") from None
    with zf:
        for cat in BFCL_CATEGORIES:
            answers: dict[str, list] = {}
            for where, lineno, obj in _jsonl(zf, wheel, f"{_DATA}/possible_answer/BFCL_v4_{cat}.json"):
                gt = obj.get("ground_truth")
                if not isinstance(gt, list) or not all(isinstance(g, dict) for g in gt):
                    raise DataError(where, f"item {obj['id']!r}: 'ground_truth' is not a list of objects", lineno)
                if obj["id"] in answers:
                    raise DataError(where, f"duplicate id {obj['id']!r}", lineno)
                answers[obj["id"]] = gt
            dropped[cat] = 0
            for where, lineno, item in _jsonl(zf, wheel, f"{_DATA}/BFCL_v4_{cat}.json"):
                qid = item["id"]
                if qid in category:
                    raise DataError(where, f"duplicate item id {qid!r}", lineno)
                if qid not in answers:
                    raise DataError(where, f"item {qid!r} has no possible answer", lineno)
                text = _query_text(item, where, lineno)
                functions = item.get("function")
                if not isinstance(functions, list) or not functions:
                    raise DataError(where, f"item {qid!r} offers no 'function' list", lineno)
                truth = {name for call in answers[qid] for name in call}
                relevant: dict[str, int] = {}
                for fn in functions:
                    if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
                        raise DataError(where, f"item {qid!r}: a function has no string 'name'", lineno)
                    key = (fn["name"], str(fn.get("description") or ""))
                    did = by_key.get(key)
                    if did is None:
                        did = _doc_id(*key)
                        if did in corpus:
                            raise DataError(where, f"document id collision {did!r}", lineno)
                        try:
                            corpus[did] = Document(text=render_tool(fn))
                        except EmbedbenchError as exc:
                            raise DataError(where, f"item {qid!r}: {exc}", lineno) from None
                        by_key[key] = did
                    if fn["name"] in truth:
                        relevant[did] = 1
                if not relevant:
                    dropped[cat] += 1
                    category[qid] = cat  # remembered only to catch duplicate ids
                    continue
                queries[qid] = Query(text=text)
                qrels[qid] = relevant
                category[qid] = cat
    category = {qid: c for qid, c in category.items() if qid in queries}
    return RetrievalData(
        corpus=corpus,
        queries=queries,
        qrels=qrels,
        source=f"bfcl:{wheel.name}",
        extra={"category": category, "dropped": dropped},
    )


def load_bfcl_task(spec: TaskSpec, ctx: LoadContext) -> list[TaskData]:
    """The suite loader (embedbench.data.tasks): BFCL from the wheel in the data cache."""
    data = load_bfcl(ensure_bfcl_wheel(ctx.cache_dir)).validate()
    return [TaskData(spec.language, spec.split, data)]


if __name__ == "__main__":  # `make setup` prefetches the wheel so the default run works offline afterwards
    print(ensure_bfcl_wheel(default_cache_dir()))
