"""ConTEB contextual retrieval (Conti et al., 2025; github.com/illuin-tech/conteb) from its hub datasets.

Each ConTEB dataset is a hub repo (``illuin-conteb/<name>``, read through :mod:`embedbench.data.hub`,
so a local mirror works the same) with two configs in one split (``test`` where the dataset has
one, else ``validation``, else ``train``, as the ConTEB collection page says):

- ``documents``: ``chunk_id`` (``<doc id>_<position>``: the original document and the chunk's
  position in it) and ``chunk`` (its text); other columns (``og_chunk``) are ignored;
- ``queries``: ``query`` and ``chunk_id`` (the chunk that answers it; ConTEB's formatter also
  accepts a list ``chunk_ids``), sometimes ``answer``.

Mapping:

- corpus: the chunks (document id = ``chunk_id``), title empty;
- documents: {doc id: chunk ids in position order} (the id is split at its last ``_``; positions
  are integers), documents in sorted id order as ConTEB groups them; a contextual model encodes
  each document's chunks together, others chunk by chunk;
- queries: one per row, id ``q<row number>`` (the split has no id column); qrels {chunk id: 1};
- answers: {query id: [answer]} when the split has a non-empty ``answer`` column;
- chunks whose text is empty are dropped (``extra["empty_chunks"]``) with the queries that point
  at them (``extra["queries_dropped"]``); a query naming a chunk that is not in the split is an error.

Options: ``repo`` (required, e.g. ``illuin-conteb/football``), ``revision`` (hub commit),
``documents_config`` / ``queries_config`` (default ``documents`` / ``queries``), ``hub_path``
(a local folder laid out like the repo).
"""

from __future__ import annotations

from embedbench.data.hub import load_hub_split, require_columns, resolve_source
from embedbench.data.spec import TaskSpec, reject_unknown_options
from embedbench.data.tasks import LoadContext, TaskData
from embedbench.data.types import Document, Query, RetrievalData
from embedbench.errors import DataError, EmbedbenchError


__all__ = ["load_conteb_task", "split_chunk_id"]



def split_chunk_id(chunk_id: str) -> tuple[str, int] | None:
    """``"<doc>_<position>"`` -> (doc, position); None when the id has no integer position."""
    doc, sep, pos = chunk_id.rpartition("_")
    if not sep or not doc or not pos.isdigit():
        return None
    return doc, int(pos)


def load_conteb_task(spec: TaskSpec, ctx: LoadContext) -> list[TaskData]:
    reject_unknown_options(spec, "ConTEB")
    repo = spec.options.get("repo")
    if not isinstance(repo, str):
        raise EmbedbenchError(f"task {spec.name!r}: options.repo (the ConTEB hub dataset, e.g. illuin-conteb/football) "
                              "is required")
    source = resolve_source(repo, spec.options.get("revision"), hub_path=spec.options.get("hub_path"),
                            data_dir=ctx.data_dir)
    doc_cfg = spec.options.get("documents_config", "documents")
    query_cfg = spec.options.get("queries_config", "queries")

    docs_ds = load_hub_split(source, doc_cfg, spec.split, ctx.cache_dir)
    where = f"{source.label} {doc_cfg}/{spec.split}"
    require_columns(docs_ds, ("chunk_id", "chunk"), where)
    corpus: dict[str, Document] = {}
    positions: dict[str, dict[int, str]] = {}
    empty: set[str] = set()
    for line, (cid, text) in enumerate(zip(docs_ds["chunk_id"], docs_ds["chunk"]), start=1):
        cid = str(cid)
        parsed = split_chunk_id(cid)
        if parsed is None:
            raise DataError(where, f"chunk id {cid!r} is not <doc id>_<position>", line)
        doc, pos = parsed
        if cid in corpus or cid in empty or pos in positions.get(doc, {}):
            raise DataError(where, f"duplicate chunk {cid!r}", line)
        if not isinstance(text, str) or not text.strip():
            empty.add(cid)
            continue
        corpus[cid] = Document(text=text)
        positions.setdefault(doc, {})[pos] = cid
    documents = {doc: [by_pos[p] for p in sorted(by_pos)] for doc, by_pos in sorted(positions.items())}

    q_ds = load_hub_split(source, query_cfg, spec.split, ctx.cache_dir)
    q_where = f"{source.label} {query_cfg}/{spec.split}"
    target = "chunk_ids" if "chunk_ids" in q_ds.column_names and "chunk_id" not in q_ds.column_names else "chunk_id"
    require_columns(q_ds, ("query", target), q_where)
    has_answers = "answer" in q_ds.column_names
    queries: dict[str, Query] = {}
    qrels: dict[str, dict[str, int]] = {}
    answers: dict[str, list[str]] = {}
    dropped = 0
    for line, row in enumerate(q_ds, start=1):
        targets = [str(c) for c in (row[target] if target == "chunk_ids" else [row[target]])]
        unknown_chunks = [c for c in targets if c not in corpus and c not in empty]
        if unknown_chunks or not targets:
            raise DataError(q_where, f"query names unknown chunk {(unknown_chunks or [None])[0]!r}", line)
        kept = [c for c in targets if c in corpus]
        if not kept:
            dropped += 1
            continue
        qid = f"q{line - 1}"
        queries[qid] = Query(text=str(row["query"] or ""))
        qrels[qid] = {c: 1 for c in kept}
        answer = row["answer"] if has_answers else None
        if isinstance(answer, str) and answer.strip():
            answers[qid] = [answer]

    data = RetrievalData(
        corpus=corpus, queries=queries, qrels=qrels,
        source=f"{source.label} {doc_cfg}+{query_cfg}/{spec.split}",
        extra={"empty_chunks": len(empty), "queries_dropped": dropped},
        documents=documents,
        answers=answers or None,
    ).validate()
    return [TaskData(spec.language, spec.split, data)]
