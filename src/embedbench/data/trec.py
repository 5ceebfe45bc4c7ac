"""Load an ad-hoc retrieval collection in classic TREC format from one folder (e.g. vaswani/).

File convention (names are matched case-insensitively; hidden files, README* and LICENSE*
are ignored):

- documents: the file whose name starts with ``doc`` (``doc-text.trec``), holding
  ``<DOC><DOCNO>id</DOCNO> text </DOC>`` blocks;
- topics: the file whose name contains ``quer`` or ``topic`` (``query-text.trec``,
  ``topics.txt``), holding ``<top><num>id</num><title>text</title></top>`` blocks;
- qrels: the file whose name starts with ``qrel`` (``qrels``), lines ``qid iter docno rel``.

A role no file name claims is given to the one remaining file whose content looks right
(``<DOC>`` / ``<top>`` near the start, or a first line of four columns ending in an integer).
Two candidates for one role is an error.

Parsing: a document's text is everything in its block outside ``<DOCNO>``, with any other
SGML tags removed and whitespace collapsed to single spaces. In topics, close tags may be
missing as in classic TREC topic files (``<num> Number: 051`` ... ``<title> Topic: ...``):
a field runs to the next tag, and a ``<top>`` block to ``</top>``, the next ``<top>`` or the end
of file. Only the title is used as the query; ``Number:`` / ``Topic:`` prefixes are dropped.
Problems raise :class:`~embedbench.errors.DataError` naming file, line and id. Topics with no
qrels line are dropped.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

from embedbench.data.records import Judgements, QrelsWords, add_unique
from embedbench.data.types import Document, Query, RetrievalData
from embedbench.errors import DataError

__all__ = ["find_trec_files", "load_trec"]

T = TypeVar("T")
_WORDS = QrelsWords(query="topic", query_id="topic", doc_id="document", grade="relevance")

_DOC_OPEN = re.compile(r"<DOC>", re.I)
_DOC_CLOSE = re.compile(r"</DOC>", re.I)
_DOCNO = re.compile(r"<DOCNO>(.*?)</DOCNO>", re.I | re.S)
_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9_-]*(?:\s[^<>]*)?>")
_TOP_OPEN = re.compile(r"<top>", re.I)
_TOP_END = re.compile(r"</top>|<top>", re.I)
_FIELD_TAG = re.compile(r"<(/?)([A-Za-z]+)[^<>]*>")
_QRELS_LINE = re.compile(r"^\s*\S+\s+\S+\s+\S+\s+-?\d+\s*$")
_ROLES = ("documents", "topics", "qrels")
_HINTS = {"documents": "doc-text.trec", "topics": "query-text.trec or topics.txt", "qrels": "qrels"}


class _Lines:
    """Offset -> 1-based line number, by bisecting the newline offsets."""

    def __init__(self, text: str) -> None:
        self._nl = [m.start() for m in re.finditer("\n", text)]

    def __call__(self, offset: int) -> int:
        return bisect.bisect_left(self._nl, offset) + 1


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return path.read_text(encoding="latin-1")  # old TREC collections are often Latin-1


def _name_role(name: str) -> str | None:
    low = name.lower()
    if low.startswith("qrel"):
        return "qrels"
    if low.startswith("doc"):
        return "documents"
    if "quer" in low or "topic" in low:
        return "topics"
    return None


def _content_role(path: Path) -> str | None:
    try:
        with path.open("r", encoding="utf-8", errors="replace") as fh:
            head = fh.read(65536)
    except OSError:
        return None
    if _DOC_OPEN.search(head):
        return "documents"
    if _TOP_OPEN.search(head):
        return "topics"
    first = next((line for line in head.splitlines() if line.strip()), "")
    return "qrels" if _QRELS_LINE.match(first) else None


def find_trec_files(folder: Path) -> dict[str, Path]:
    """Map "documents", "topics", "qrels" to files of ``folder`` by the module's convention."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(folder, "TREC collection folder not found")
    files = sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and not p.name.lower().startswith(("readme", "license"))
    )
    found: dict[str, list[Path]] = {role: [] for role in _ROLES}
    unclaimed: list[Path] = []
    for p in files:
        role = _name_role(p.name)
        (found[role] if role else unclaimed).append(p)
    for role in _ROLES:
        if not found[role]:
            found[role] = [p for p in unclaimed if _content_role(p) == role]
    out: dict[str, Path] = {}
    for role in _ROLES:
        if not found[role]:
            raise DataError(folder, f"no {role} file found (expected a name like {_HINTS[role]})")
        if len(found[role]) > 1:
            names = ", ".join(p.name for p in found[role])
            raise DataError(folder, f"more than one {role} file: {names}")
        out[role] = found[role][0]
    return out


def _blocks(text: str, path: Path, tag: str,
            block_end: Callable[[str, int, Path, int], tuple[int, int]]) -> Iterator[tuple[int, str]]:
    """(line, body) of each <tag> block; any text between blocks is an error.

    `block_end(text, body_start, path, line)` gives (where the body ends, where the next block may start).
    """
    opener = re.compile(f"<{tag}>", re.I)
    line_of = _Lines(text)
    pos = 0
    while True:
        m = opener.search(text, pos)
        gap = text[pos : m.start() if m else len(text)]
        if gap.strip():
            at = pos + len(gap) - len(gap.lstrip())
            raise DataError(path, f"text outside <{tag}>...</{tag}>: {gap.strip()[:40]!r}", line_of(at))
        if m is None:
            return
        line = line_of(m.start())
        body_end, pos = block_end(text, m.end(), path, line)
        yield line, text[m.end() : body_end]


def _records(path: Path, tag: str, block_end: Callable[[str, int, Path, int], tuple[int, int]],
             parse: Callable[[str, Path, int], tuple[str, T]], id_name: str) -> dict[str, T]:
    """id -> record of every <tag> block in the file (at least one; ids unique)."""
    records: dict[str, T] = {}
    first_line: dict[str, int] = {}
    for line, body in _blocks(_read(path), path, tag, block_end):
        rid, record = parse(body, path, line)
        add_unique(records, first_line, rid, record, path, line, id_name)
    if not records:
        raise DataError(path, f"no <{tag}> blocks found")
    return records


def _doc_end(text: str, start: int, path: Path, line: int) -> tuple[int, int]:
    """A document runs to its </DOC>, which must come before the next <DOC>."""
    end = _DOC_CLOSE.search(text, start)
    nxt = _DOC_OPEN.search(text, start)
    if end is None or (nxt is not None and nxt.start() < end.start()):
        raise DataError(path, "<DOC> without a matching </DOC>", line)
    return end.start(), end.end()


def _document(body: str, path: Path, line: int) -> tuple[str, Document]:
    """(DOCNO, document) of one <DOC> body: the text outside <DOCNO>, tags dropped, whitespace collapsed."""
    dm = _DOCNO.search(body)
    if dm is None:
        raise DataError(path, "<DOC> block has no <DOCNO>...</DOCNO>", line)
    did = dm.group(1).strip()
    if not did:
        raise DataError(path, "empty <DOCNO>", line)
    rest = _TAG.sub(" ", body[: dm.start()] + " " + body[dm.end() :])
    doc_text = " ".join(rest.split())
    if not doc_text:
        raise DataError(path, f"document {did!r} has no text", line)
    return did, Document(text=doc_text)


def _strip_prefix(value: str, prefix: str) -> str:
    value = " ".join(value.split())
    if value.lower().startswith(prefix.lower()):
        value = value[len(prefix) :].strip()
    return value


def _topic_end(text: str, start: int, _path: Path, _line: int) -> tuple[int, int]:
    """A topic runs to </top> (consumed), or to the next <top> or the end of the file (left for the next)."""
    end = _TOP_END.search(text, start)
    body_end = end.start() if end else len(text)
    return body_end, (end.end() if end and end.group(0).lower() == "</top>" else body_end)


def _topic(block: str, path: Path, line: int) -> tuple[str, Query]:
    """(number, query) of one <top> block: its title; fields run to the next tag (close tags may be missing)."""
    fields: dict[str, str] = {}
    tags = list(_FIELD_TAG.finditer(block))
    for i, tag in enumerate(tags):
        closing, name = tag.group(1), tag.group(2).lower()
        if closing or name in fields:
            continue
        stop = tags[i + 1].start() if i + 1 < len(tags) else len(block)
        fields[name] = block[tag.end() : stop]
    if "num" not in fields:
        raise DataError(path, "<top> block has no <num>", line)
    qid = _strip_prefix(fields["num"], "Number:")
    if not qid:
        raise DataError(path, "empty <num>", line)
    title = _strip_prefix(fields.get("title", ""), "Topic:")
    if not title:
        raise DataError(path, f"topic {qid!r} has no or an empty <title>", line)
    return qid, Query(text=title)


def _parse_qrels(
    path: Path, corpus: dict[str, Document], queries: dict[str, Query]
) -> dict[str, dict[str, int]]:
    judgements = Judgements(corpus, queries, path, _WORDS)
    qrels: dict[str, dict[str, int]] = {}
    for lineno, line in enumerate(_read(path).splitlines(), start=1):
        if not line.strip():
            continue
        cols = line.split()
        if len(cols) != 4:
            raise DataError(path, f"expected 4 columns (qid iter docno rel), got {len(cols)}", lineno)
        qid, _, did, raw = cols
        judgements.add(qrels, qid, did, raw, lineno)
    return qrels


def load_trec(path: Path) -> RetrievalData:
    """Read a TREC collection folder (documents, topics, qrels; see the module docstring)."""
    files = find_trec_files(Path(path))
    corpus = _records(files["documents"], "DOC", _doc_end, _document, "DOCNO")
    queries = _records(files["topics"], "top", _topic_end, _topic, "topic number")
    qrels = _parse_qrels(files["qrels"], corpus, queries)
    queries = {qid: q for qid, q in queries.items() if qid in qrels}
    return RetrievalData(corpus=corpus, queries=queries, qrels=qrels, source=f"trec:{path}")
