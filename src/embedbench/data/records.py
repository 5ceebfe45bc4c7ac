"""The checks every file format makes while it reads a dataset record by record (BEIR, TREC).

Ids are unique (a repeat names the line of the first one), and each relevance judgement is an
integer grade for a query and a document that exist, given once. Errors are DataErrors naming the
file and line, in the format's own words (BEIR says "query id" and "score", TREC "topic" and "relevance").
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from embedbench.data.types import Document, Query
from embedbench.errors import DataError

T = TypeVar("T")


def add_unique(records: dict[str, T], first_line: dict[str, int], rid: str, value: T,
               path: Path, line: int, what: str) -> None:
    """records[rid] = value; a second `rid` is an error naming `what` ("document id", "DOCNO") and line."""
    if rid in records:
        raise DataError(path, f"duplicate {what} {rid!r} (first on line {first_line[rid]})", line)
    records[rid] = value
    first_line[rid] = line


@dataclass(frozen=True)
class QrelsWords:
    """How a format names the parts of a judgement in its error messages."""

    query: str  # "query" / "topic"
    query_id: str  # "query id" / "topic"
    doc_id: str  # "document id" / "document"
    grade: str  # "score" / "relevance"


@dataclass(frozen=True)
class Judgements:
    """Builds qrels (query id -> document id -> grade) against a format's corpus and queries."""

    corpus: dict[str, Document]
    queries: dict[str, Query]
    path: Path
    words: QrelsWords

    def add(self, qrels: dict[str, dict[str, int]], qid: str, did: str, raw: str, line: int) -> None:
        w = self.words
        try:
            grade = int(raw)
        except ValueError:
            raise DataError(self.path, f"{w.grade} {raw!r} for {w.query} {qid!r}, document {did!r} is not an integer",
                            line) from None
        if qid not in self.queries:
            raise DataError(self.path, f"unknown {w.query_id} {qid!r}", line)
        if did not in self.corpus:
            raise DataError(self.path, f"unknown {w.doc_id} {did!r} ({w.query} {qid!r})", line)
        rels = qrels.setdefault(qid, {})
        if did in rels:
            raise DataError(self.path, f"duplicate judgement for {w.query} {qid!r}, document {did!r}", line)
        rels[did] = grade
