"""The Anthropic cookbook's contextual-retrieval codebase set as a contextual (chunked) retrieval task.

Loader `codebase-contextual`, reading `contextual-codebase/` under the data dir (`spec.path` overrides):

- `codebase_chunks.json`: 90 source files -> `documents` {`doc_id`: chunk ids in `original_index`
  order}; the corpus holds the 737 chunks (id = `chunk_id`, text = `content`, no title).
- `evaluation_set.jsonl`: 248 queries (id `q<line number>`, 1-based); relevant (grade 1) = each
  `golden_chunk_uuids` pair [file `original_uuid`, chunk `original_index`] (1-7 per query).

The gold `answer`s are NOT set as `RetrievalData.answers`: they are free-form explanations (none of the
248 occurs verbatim in its golden chunks), so substring answer-recall would be ~0 for every model and
measure nothing. They are kept in `extra["reference_answers"]` for generation-based scoring.
The cookbook reports pass@k (share of golden chunks in the top k) - recall_at_k here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from embedbench.data.spec import TaskSpec
from embedbench.data.tasks import LoadContext, TaskData
from embedbench.data.types import Document, Query, RetrievalData
from embedbench.data.xquad import local_data_file
from embedbench.errors import DataError, EmbedbenchError


__all__ = ["load_codebase", "load_codebase_task"]

CHUNKS_FILE = "codebase_chunks.json"
QUERIES_FILE = "evaluation_set.jsonl"


def _chunks(path: Path) -> tuple[dict[str, Document], dict[str, list[str]], dict[tuple[str, int], str]]:
    try:
        files = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(path, f"malformed JSON ({exc.msg})", exc.lineno) from None
    if not isinstance(files, list):
        raise DataError(path, "expected a JSON list of files")
    corpus: dict[str, Document] = {}
    documents: dict[str, list[str]] = {}
    by_position: dict[tuple[str, int], str] = {}
    for fi, entry in enumerate(files):
        if not isinstance(entry, dict) or not isinstance(entry.get("chunks"), list):
            raise DataError(path, f"file {fi} is not an object with a 'chunks' list")
        doc_id, uuid = str(entry.get("doc_id", "")), str(entry.get("original_uuid", ""))
        if not doc_id or not uuid or doc_id in documents:
            raise DataError(path, f"file {fi}: missing or duplicate 'doc_id' / 'original_uuid' ({doc_id!r})")
        ordered: list[tuple[int, str]] = []
        for chunk in entry["chunks"]:
            cid, index, text = chunk.get("chunk_id"), chunk.get("original_index"), chunk.get("content")
            if not isinstance(cid, str) or not isinstance(index, int) or not isinstance(text, str) or not text.strip():
                raise DataError(path, f"{doc_id}: a chunk lacks a string 'chunk_id', int 'original_index' or text")
            if cid in corpus or (uuid, index) in by_position:
                raise DataError(path, f"{doc_id}: duplicate chunk {cid!r} / original_index {index}")
            corpus[cid] = Document(text=text, language="code")
            by_position[(uuid, index)] = cid
            ordered.append((index, cid))
        if not ordered:
            raise DataError(path, f"{doc_id} has no chunks")
        documents[doc_id] = [cid for _, cid in sorted(ordered)]
    return corpus, documents, by_position


_Evaluation = tuple[dict[str, Query], dict[str, dict[str, int]], dict[str, str]]


def _evaluation(path: Path, by_position: dict[tuple[str, int], str]) -> _Evaluation:
    queries: dict[str, Query] = {}
    qrels: dict[str, dict[str, int]] = {}
    answers: dict[str, str] = {}
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item: Any = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(path, f"malformed JSON ({exc.msg})", lineno) from None
        qid = f"q{lineno}"
        text, golden = item.get("query") if isinstance(item, dict) else None, item.get("golden_chunk_uuids")
        if not isinstance(text, str) or not text.strip() or not isinstance(golden, list) or not golden:
            raise DataError(path, "expected a non-empty 'query' and 'golden_chunk_uuids' list", lineno)
        rels: dict[str, int] = {}
        for pair in golden:
            cid = by_position.get(tuple(pair)) if isinstance(pair, list) and len(pair) == 2 else None
            if cid is None:
                raise DataError(path, f"golden chunk {pair!r} names no chunk of {CHUNKS_FILE}", lineno)
            rels[cid] = 1
        queries[qid] = Query(text=text, language="en")
        qrels[qid] = rels
        answers[qid] = str(item.get("answer", ""))
    return queries, qrels, answers


def load_codebase(folder: Path) -> RetrievalData:
    """Read the two files of `folder` into validated contextual retrieval data."""
    corpus, documents, by_position = _chunks(folder / CHUNKS_FILE)
    queries, qrels, answers = _evaluation(folder / QUERIES_FILE, by_position)
    return RetrievalData(corpus=corpus, queries=queries, qrels=qrels, source=f"codebase-contextual:{folder}",
                         extra={"reference_answers": answers}, documents=documents).validate()


def load_codebase_task(spec: TaskSpec, ctx: LoadContext) -> list[TaskData]:
    """The `codebase-contextual` loader: one English task over the code chunks."""
    if spec.options:
        raise EmbedbenchError(f"task {spec.name!r}: the codebase-contextual loader takes no options")
    folder = spec.path or "contextual-codebase"
    chunks = local_data_file(ctx.data_dir, folder, CHUNKS_FILE)
    local_data_file(ctx.data_dir, folder, QUERIES_FILE)
    return [TaskData(spec.language, spec.split, load_codebase(chunks.parent))]
