"""Load a retrieval task stored in the BEIR folder layout.

Layout (as written by the ``beir`` package and read by mteb)::

    DIR/corpus.jsonl        one JSON object a line: "_id", "text", optional "title"
    DIR/queries.jsonl       one JSON object a line: "_id", "text"
    DIR/qrels/<split>.tsv   tab separated "query-id  corpus-id  score", header line optional

Ids may be JSON strings or integers; they are kept as strings. Blank lines are
skipped. Every problem raises :class:`~embedbench.errors.DataError` naming the
file, the line number and the offending id. Queries without any qrels line are
dropped (mteb does the same); documents without judgements stay in the corpus.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from embedbench.data.records import Judgements, QrelsWords, add_unique
from embedbench.data.types import Document, Query, RetrievalData
from embedbench.errors import DataError

__all__ = ["load_beir"]

_WORDS = QrelsWords(query="query", query_id="query id", doc_id="document id", grade="score")


def _read_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(1-based line number, line) for each non-blank line of a UTF-8 text file."""
    if not path.is_file():
        raise DataError(path, "file not found")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(path, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    for lineno, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            yield lineno, line


def _coerce_id(value: object, path: Path, lineno: int, what: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise DataError(path, f"{what} {value!r} is not a string or integer", lineno)
    out = str(value)
    if not out.strip():
        raise DataError(path, f"{what} is empty", lineno)
    return out


def _read_jsonl(path: Path, required: tuple[str, ...]) -> Iterator[tuple[int, str, dict]]:
    """(line number, id, object) for each record; checks JSON, object type, required fields."""
    for lineno, line in _read_lines(path):
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(path, f"malformed JSON line ({exc.msg} at column {exc.colno})", lineno) from None
        if not isinstance(obj, dict):
            raise DataError(path, f"expected a JSON object, got {type(obj).__name__}", lineno)
        if "_id" not in obj:
            raise DataError(path, "record has no '_id' field", lineno)
        rid = _coerce_id(obj["_id"], path, lineno, "id")
        for name in required:
            if name not in obj:
                raise DataError(path, f"record {rid!r} has no {name!r} field", lineno)
        yield lineno, rid, obj


def _check_text(value: object, path: Path, lineno: int, rid: str, field: str, allow_empty: bool = False) -> str:
    if not isinstance(value, str):
        raise DataError(path, f"record {rid!r}: {field!r} is {type(value).__name__}, not a string", lineno)
    if not allow_empty and not value.strip():
        raise DataError(path, f"record {rid!r}: {field!r} is empty", lineno)
    return value


def _load_corpus(path: Path) -> dict[str, Document]:
    corpus: dict[str, Document] = {}
    first_line: dict[str, int] = {}
    for lineno, did, obj in _read_jsonl(path, ("text",)):
        title = obj.get("title", "")
        title = "" if title is None else _check_text(title, path, lineno, did, "title", allow_empty=True)
        text = _check_text(obj["text"], path, lineno, did, "text", allow_empty=bool(title.strip()))
        add_unique(corpus, first_line, did, Document(text=text, title=title), path, lineno, "document id")
    if not corpus:
        raise DataError(path, "the corpus file holds no documents")
    return corpus


def _load_queries(path: Path) -> dict[str, Query]:
    queries: dict[str, Query] = {}
    first_line: dict[str, int] = {}
    for lineno, qid, obj in _read_jsonl(path, ("text",)):
        query = Query(text=_check_text(obj["text"], path, lineno, qid, "text"))
        add_unique(queries, first_line, qid, query, path, lineno, "query id")
    return queries


def _load_qrels(
    path: Path, corpus: dict[str, Document], queries: dict[str, Query]
) -> dict[str, dict[str, int]]:
    judgements = Judgements(corpus, queries, path, _WORDS)
    qrels: dict[str, dict[str, int]] = {}
    for index, (lineno, line) in enumerate(_read_lines(path)):
        cols = line.rstrip("\r\n").split("\t")
        if index == 0 and cols[:1] == ["query-id"]:
            continue  # the header line
        if len(cols) != 3:
            raise DataError(path, f"expected 3 tab-separated columns (query-id, corpus-id, score), got {len(cols)}", lineno)
        qid, did, raw = (c.strip() for c in cols)
        judgements.add(qrels, qid, did, raw, lineno)
    return qrels


def load_beir(path: Path, split: str = "test") -> RetrievalData:
    """Read a BEIR folder; the qrels come from ``qrels/<split>.tsv``."""
    path = Path(path)
    if not path.is_dir():
        raise DataError(path, "BEIR dataset folder not found")
    qrels_path = path / "qrels" / f"{split}.tsv"
    if not qrels_path.is_file():
        have = sorted(p.stem for p in (path / "qrels").glob("*.tsv")) if (path / "qrels").is_dir() else []
        raise DataError(qrels_path, f"file not found (qrels splits present: {', '.join(have) or 'none'})")
    corpus = _load_corpus(path / "corpus.jsonl")
    queries = _load_queries(path / "queries.jsonl")
    qrels = _load_qrels(qrels_path, corpus, queries)
    queries = {qid: q for qid, q in queries.items() if qid in qrels}
    return RetrievalData(corpus=corpus, queries=queries, qrels=qrels, source=f"beir:{path}")
