"""Load SQuAD v1.1 / XQuAD-R JSON as paragraph retrieval (mteb's XQuADRetrieval setup).

- corpus: one document per distinct paragraph ``context``; the text is the context alone,
  with no title (as mteb's XQuAD retrieval, so scores are comparable). The document id is
  ``"<article index>-<paragraph index>"`` (0-based) of the paragraph's first occurrence,
  which is the same across the parallel XQuAD-R language files.
- Duplicate contexts: when two paragraphs have the same context text, only the first is kept
  and the questions of every copy point to it.
- queries: each question, id = the question ``id``; relevant (grade 1) = its paragraph.
- ``extra["answers"]``: ``{question id: [answer texts]}`` for RAG QA scoring.
- ``extra["language"]``: the file name stem when it is two letters (``en.json`` -> ``"en"``);
  documents and queries get the same ``language``.

Malformed input raises :class:`~embedbench.errors.DataError` naming the file and the
article / paragraph / question it concerns.
"""

from __future__ import annotations

import json
from pathlib import Path

from embedbench.data.types import Document, Query, RetrievalData
from embedbench.errors import DataError

__all__ = ["load_squad"]


def _language(path: Path) -> str | None:
    stem = path.stem
    return stem.lower() if len(stem) == 2 and stem.isalpha() else None


def _nonempty_str(value: object) -> bool:
    return isinstance(value, str) and bool(value.strip())


def load_squad(path: Path) -> RetrievalData:
    """Read one SQuAD-layout JSON file (``{"data": [{"title", "paragraphs": [...]}]}``)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "file not found")
    try:
        root = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(path, f"malformed JSON ({exc.msg})", exc.lineno) from None
    except UnicodeDecodeError as exc:
        raise DataError(path, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    if not isinstance(root, dict) or not isinstance(root.get("data"), list):
        raise DataError(path, 'expected a JSON object with a "data" list (SQuAD v1.1 layout)')

    language = _language(path)
    corpus: dict[str, Document] = {}
    by_context: dict[str, str] = {}
    queries: dict[str, Query] = {}
    qrels: dict[str, dict[str, int]] = {}
    answers: dict[str, list[str]] = {}

    for ai, article in enumerate(root["data"]):
        if not isinstance(article, dict) or not isinstance(article.get("paragraphs"), list):
            raise DataError(path, f'article {ai} has no "paragraphs" list')
        for pi, para in enumerate(article["paragraphs"]):
            where = f"article {ai} ({article.get('title', '')!s}), paragraph {pi}"
            if not isinstance(para, dict):
                raise DataError(path, f"{where} is not a JSON object")
            context = para.get("context")
            if not _nonempty_str(context):
                raise DataError(path, f"{where}: missing, empty or non-string 'context'")
            assert isinstance(context, str)
            did = by_context.get(context)
            if did is None:
                did = f"{ai}-{pi}"
                by_context[context] = did
                corpus[did] = Document(text=context, language=language)
            qas = para.get("qas", [])
            if not isinstance(qas, list):
                raise DataError(path, f"{where}: 'qas' is not a list")
            for qi, qa in enumerate(qas):
                if not isinstance(qa, dict):
                    raise DataError(path, f"{where}, question {qi} is not a JSON object")
                raw_id = qa.get("id")
                if isinstance(raw_id, bool) or not isinstance(raw_id, (str, int)) or not str(raw_id).strip():
                    raise DataError(path, f"{where}, question {qi}: missing or invalid 'id' {raw_id!r}")
                qid = str(raw_id)
                if qid in queries:
                    raise DataError(path, f"duplicate question id {qid!r} ({where})")
                question = qa.get("question")
                if not _nonempty_str(question):
                    raise DataError(path, f"question {qid!r}: missing, empty or non-string 'question'")
                assert isinstance(question, str)
                texts: list[str] = []
                for ans in qa.get("answers", []) or []:
                    if not isinstance(ans, dict) or not isinstance(ans.get("text"), str):
                        raise DataError(path, f"question {qid!r}: an answer has no string 'text'")
                    texts.append(ans["text"])
                queries[qid] = Query(text=question, language=language)
                qrels[qid] = {did: 1}
                answers[qid] = texts

    extra: dict[str, object] = {"answers": answers}
    if language is not None:
        extra["language"] = language
    return RetrievalData(corpus=corpus, queries=queries, qrels=qrels, source=f"squad:{path}", extra=extra)
