"""XQuAD-R (LAReQA) as five retrieval tasks over the parallel files `xquad-r/{ar,...,zh}.json`.

Loader `xquad-r`; `options.mode` picks the task, `options.languages` the files (default all 11).
Ids: paragraph `"<article>-<paragraph>"` and sentence `"<article>-<paragraph>-<sentence>"` (0-based
positions, identical across the parallel files); question ids are the files' own; pooled tasks prefix
every id with its language (`"de:3-1"`).

- `paragraph`: per language, corpus = its 240 paragraphs, queries = its 1,190 questions, relevant = the
  question's paragraph (mteb's XQuAD retrieval setup, via `embedbench.data.squad.load_squad`).
- `rag`: `paragraph` plus `answers` = the gold answer texts (for answer_recall_at_k).
- `contextual`: per language, chunks = the paragraphs' `sentences`, documents = paragraphs
  (`options.document: paragraph`) or articles (`article`), chunks in order; relevant = the sentence whose
  `sentence_breaks` span [start, end) holds `answer_start` (DataError if none does). A few answers run past
  that sentence because the splitter breaks at initials ("E.I. du Pont"); the sentence holding the start
  stays the target.
- `cross-lingual` (LAReQA's design): one pooled task. Queries = the questions in every language, corpus =
  the candidates of every language, and a question's relevant set is its answer in EVERY language (11
  relevant; LAReQA: "11 parallel correct answers"), so the same-language answer is no closer to the target
  than its translations. Candidates are paragraphs (`options.unit: paragraph`) or, exactly as LAReQA,
  answer sentences (`unit: sentence`, the sentence holding `answer_start` in each language).
- `q2q` (cross-lingual Query2Query): per query language L (`options.query_language`: a code, default
  `en`, or `all` for one task per language), queries = L's questions, corpus = the questions of every
  other language, relevant = the same question id in those languages. L's questions are not in the
  corpus, so a query can never retrieve itself.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from embedbench.data.sources import fetch_hint
from embedbench.data.squad import load_squad
from embedbench.data.spec import TaskSpec, reject_unknown_options
from embedbench.data.tasks import LoadContext, TaskData
from embedbench.data.types import Document, RetrievalData
from embedbench.errors import DataError, EmbedbenchError


__all__ = ["LANGUAGES", "MODES", "load_xquad_task", "local_data_file", "sentence_task"]

LANGUAGES = ("ar", "de", "el", "en", "es", "hi", "ru", "th", "tr", "vi", "zh")
MODES = ("paragraph", "rag", "contextual", "cross-lingual", "q2q")
POOLED = "multilingual"  # the language label of the pooled cross-lingual task


def local_data_file(data_dir: Path | None, folder: str, name: str) -> Path:
    """`data_dir/folder/name` (or `folder/name` for an absolute folder); one line if it is absent."""
    hint = f"set EMBEDBENCH_DATA_DIR or pass --data-dir (the folder holding {folder}/){fetch_hint(folder)}"
    base = Path(folder).expanduser()
    if not base.is_absolute():
        if data_dir is None:
            raise DataError(base / name, f"no data directory set; {hint}")
        base = Path(data_dir).expanduser() / base
    path = base / name
    if not path.is_file():
        raise DataError(path, f"file not found; {hint}")
    return path


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(path, f"malformed JSON ({exc.msg})", exc.lineno) from None


def sentence_task(path: Path, paragraphs: RetrievalData, document: str = "paragraph") -> RetrievalData:
    """One language's contextual task: sentence chunks, paragraph/article documents, answer sentences."""
    root = _read_json(path)
    language = paragraphs.extra.get("language")
    corpus: dict[str, Document] = {}
    documents: dict[str, list[str]] = {}
    qrels: dict[str, dict[str, int]] = {}
    for ai, article in enumerate(root["data"]):
        for pi, para in enumerate(article["paragraphs"]):
            where = f"paragraph {ai}-{pi}"
            sentences, breaks = para.get("sentences"), para.get("sentence_breaks")
            if not isinstance(sentences, list) or not isinstance(breaks, list) or len(sentences) != len(breaks):
                raise DataError(path, f"{where}: 'sentences' and 'sentence_breaks' must be lists of equal length")
            ids = [f"{ai}-{pi}-{si}" for si in range(len(sentences))]
            for cid, text, span in zip(ids, sentences, breaks):
                if not isinstance(text, str) or not text.strip():
                    raise DataError(path, f"{where}: sentence {cid} is empty or not a string")
                if not (isinstance(span, list) and len(span) == 2 and all(isinstance(x, int) for x in span)):
                    raise DataError(path, f"{where}: sentence break {span!r} is not [start, end]")
                corpus[cid] = Document(text=text, language=language)
            documents.setdefault(f"{ai}-{pi}" if document == "paragraph" else str(ai), []).extend(ids)
            for qa in para.get("qas", []):
                qid = str(qa["id"])
                rels: dict[str, int] = {}
                for ans in qa.get("answers", []):
                    start = ans.get("answer_start")
                    hit = next((cid for cid, (b, e) in zip(ids, breaks) if isinstance(start, int) and b <= start < e),
                               None)
                    if hit is None:
                        raise DataError(path, f"question {qid!r}: answer_start {start!r} is in no sentence of {where}")
                    rels[hit] = 1
                if not rels:
                    raise DataError(path, f"question {qid!r} has no answer, so no relevant sentence")
                qrels[qid] = rels
    return RetrievalData(corpus=corpus, queries=dict(paragraphs.queries), qrels=qrels,
                         source=f"xquad-r-contextual:{path}", extra={"language": language}, documents=documents)


def _pool(parts: dict[str, RetrievalData], source: str) -> RetrievalData:
    """All languages in one task: a question's relevant set is its answer in every language."""
    corpus = {f"{lang}:{did}": doc for lang, data in parts.items() for did, doc in data.corpus.items()}
    queries = {f"{lang}:{qid}": q for lang, data in parts.items() for qid, q in data.queries.items()}
    qrels: dict[str, dict[str, int]] = {}
    for lang, data in parts.items():
        for qid in data.queries:
            qrels[f"{lang}:{qid}"] = {f"{other}:{did}": 1 for other, odata in parts.items()
                                      for did, rel in odata.qrels[qid].items() if rel > 0}
    return RetrievalData(corpus=corpus, queries=queries, qrels=qrels, source=source,
                         extra={"languages": list(parts)})


def _q2q(parts: dict[str, RetrievalData], query_language: str, source: str) -> RetrievalData:
    """Queries in one language; corpus = the same questions in every other language."""
    corpus = {f"{lang}:{qid}": Document(text=q.text, language=lang)
              for lang, data in parts.items() if lang != query_language for qid, q in data.queries.items()}
    queries = {f"{query_language}:{qid}": q for qid, q in parts[query_language].queries.items()}
    qrels = {f"{query_language}:{qid}": {f"{lang}:{qid}": 1 for lang in parts if lang != query_language}
             for qid in parts[query_language].queries}
    return RetrievalData(corpus=corpus, queries=queries, qrels=qrels, source=source,
                         extra={"query_language": query_language})


def _languages(spec: TaskSpec) -> list[str]:
    langs = spec.options.get("languages", list(LANGUAGES))
    if isinstance(langs, str):
        langs = [langs]
    if not isinstance(langs, list) or not langs or not all(isinstance(x, str) and x for x in langs):
        raise EmbedbenchError(f"task {spec.name!r}: options.languages must be a list of language codes")
    return list(dict.fromkeys(langs))


def _choice(spec: TaskSpec, key: str, allowed: tuple[str, ...], default: str) -> str:
    value = spec.options.get(key, default)
    if value not in allowed:
        raise EmbedbenchError(f"task {spec.name!r}: options.{key} must be one of {', '.join(allowed)}, got {value!r}")
    return str(value)


def _query_languages(spec: TaskSpec, langs: list[str]) -> list[str]:
    if len(langs) < 2:
        raise EmbedbenchError(f"task {spec.name!r}: q2q needs at least two languages in options.languages")
    wanted = spec.options.get("query_language", "en")
    if wanted != "all" and wanted not in langs:
        raise EmbedbenchError(f"task {spec.name!r}: options.query_language {wanted!r} is not 'all' or one of "
                              f"options.languages ({', '.join(langs)})")
    return list(langs) if wanted == "all" else [wanted]


def _check_parallel(parts: dict[str, RetrievalData], folder: str) -> None:
    first, ids = next(iter(parts.items()))[0], set(next(iter(parts.values())).queries)
    for lang, data in parts.items():
        if set(data.queries) != ids:
            raise EmbedbenchError(f"{folder}: {lang}.json and {first}.json do not hold the same question ids "
                                  f"(the cross-lingual modes need parallel files)")


def load_xquad_task(spec: TaskSpec, ctx: LoadContext) -> list[TaskData]:
    """The `xquad-r` loader (see the module docstring for the modes)."""
    reject_unknown_options(spec)
    mode = _choice(spec, "mode", MODES, "paragraph")
    document = _choice(spec, "document", ("paragraph", "article"), "paragraph")
    unit = _choice(spec, "unit", ("paragraph", "sentence"), "paragraph")
    langs, folder = _languages(spec), spec.path or "xquad-r"
    query_langs = _query_languages(spec, langs) if mode == "q2q" else []
    paths = {lang: local_data_file(ctx.data_dir, folder, f"{lang}.json") for lang in langs}
    parts = {lang: load_squad(path) for lang, path in paths.items()}
    if mode in ("paragraph", "rag"):
        out = []
        for lang, data in parts.items():
            if mode == "rag":
                data.answers = dict(data.extra["answers"])  # type: ignore[arg-type]
            out.append(TaskData(lang, spec.split, data.validate()))
        return out
    if mode == "contextual":
        return [TaskData(lang, spec.split, sentence_task(paths[lang], data, document).validate(),
                         {"document": document}) for lang, data in parts.items()]
    _check_parallel(parts, folder)
    if mode == "cross-lingual":
        if unit == "sentence":
            parts = {lang: sentence_task(paths[lang], data) for lang, data in parts.items()}
        pooled = _pool(parts, f"xquad-r-cross-lingual:{folder}")
        return [TaskData(POOLED, spec.split, pooled.validate(), {"unit": unit})]
    return [TaskData(q, spec.split, _q2q(parts, q, f"xquad-r-q2q:{folder}").validate()) for q in query_langs]
