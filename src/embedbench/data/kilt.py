"""BERGEN's RAG datasets from the Hugging Face hub: KILT Wikipedia in 100-word passages (BERGEN's
`kilt-100w`) with NQ, TriviaQA, HotpotQA (KILT versions), ASQA or PopQA questions and gold answers.

Each source is one `datasets.load_dataset` split (`HubRef` below; the mapping, repos and columns are
documented in suites/bergen.yaml). Passages: paragraphs holding "BULLET::::" dropped, "Section::::" ->
"Section:", the page's words cut into 100-word windows `"<title>. <words>"`, id `<wikipedia_id>-<n>`.
Qrels (grade 1): for KILT tasks the windows overlapping a provenance paragraph range of any output; for
ASQA / PopQA (no provenance) the windows of the linked pages (exact title) that hold a gold answer; a
page in the corpus with no such window counts whole. Queries without a usable answer, question text or
relevant passage in the loaded corpus are dropped and counted in `extra["dropped"]`.
Options: dataset (nq|triviaqa|hotpotqa|asqa|popqa); max_passages with subset gold (the evidence pages
plus distractors in corpus order up to max_passages) or prefix (the first max_passages passages);
max_queries (the first N usable queries); hub_mirror (a folder of repo copies as <owner>/<name>, like
$EMBEDBENCH_HUB_MIRROR; relative to the data dir); corpus / queries / triviaqa_questions (mappings
overriding a source's repo, config, split, revision or data_files).
"""

from __future__ import annotations

import ast
import json
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from embedbench.data.spec import TaskSpec, reject_unknown_options
from embedbench.data.tasks import LoadContext, TaskData
from embedbench.data.types import Document, Query, RetrievalData
from embedbench.errors import DataError, EmbedbenchError
from embedbench.scoring.answers import contains_answer, usable_golds


PASSAGE_WORDS = 100


@dataclass(frozen=True)
class HubRef:
    repo: str
    config: str | None
    split: str
    revision: str | None = None
    data_files: str | None = None  # a pattern inside the repo; "{split}" is filled in


CORPUS = HubRef("facebook/kilt_wikipedia", None, "full", "refs/convert/parquet", "2019-08-01/partial-full/*.parquet")
QUESTIONS = {
    "nq": HubRef("facebook/kilt_tasks", "nq", "validation"),
    "hotpotqa": HubRef("facebook/kilt_tasks", "hotpotqa", "validation"),
    "triviaqa": HubRef("facebook/kilt_tasks", "triviaqa_support_only", "validation"),
    "asqa": HubRef("din0s/asqa", None, "dev", "refs/convert/parquet", "default/{split}/*.parquet"),
    "popqa": HubRef("akariasai/PopQA", None, "test"),
}
TRIVIAQA_TEXT = HubRef("mandarjoshi/trivia_qa", "unfiltered.nocontext", "validation")
_COLUMNS = {"kilt": ["id", "input", "output"], "asqa": ["sample_id", "ambiguous_question", "qa_pairs", "wikipages"],
            "popqa": ["id", "question", "possible_answers", "s_wiki_title"]}


@dataclass
class _Question:
    qid: str
    text: str
    answers: list[str]
    provenance: list[tuple[str, int, int]] = field(default_factory=list)  # (wikipedia_id, first, last paragraph)
    titles: list[str] = field(default_factory=list)


def load_kilt_task(spec: TaskSpec, ctx: LoadContext) -> list[TaskData]:
    opts = dict(spec.options)
    reject_unknown_options(spec, "KILT")
    name = opts.get("dataset")
    if name not in QUESTIONS:
        raise EmbedbenchError(f"task {spec.name!r}: options.dataset must be one of {', '.join(QUESTIONS)}, "
                              f"got {name!r}")
    max_passages, max_queries = _positive(opts, "max_passages"), _positive(opts, "max_queries")
    subset = opts.get("subset", "gold")
    if subset not in ("gold", "prefix"):
        raise EmbedbenchError(f"task {spec.name!r}: options.subset must be gold or prefix, got {subset!r}")
    qref = _override(replace(QUESTIONS[name], split=spec.split), opts.get("queries"))
    cref = _override(CORPUS, opts.get("corpus"))
    dropped = {"no_question": 0, "no_answer": 0, "no_evidence_in_corpus": 0}
    questions = _questions(name, qref, ctx, opts, dropped)[: max_queries or None]
    corpus, pages, n_pages = _corpus(cref, ctx, opts, questions, max_passages, subset)
    qrels = _qrels(questions, corpus, pages, dropped)
    kept = [q for q in questions if q.qid in qrels]
    data = RetrievalData(
        corpus=corpus, queries={q.qid: Query(q.text, "en") for q in kept}, qrels=qrels,
        answers={q.qid: q.answers for q in kept},
        source=f"kilt:{name} {qref.repo}[{qref.config or 'default'}]/{qref.split} + {cref.repo} kilt-100w",
        extra={"dataset": name, "dropped": dropped, "pages_read": n_pages, "passages": len(corpus)})
    variant: dict[str, str | int | float] = {}
    if max_passages:
        variant.update(max_passages=max_passages, subset=subset)
    if max_queries:
        variant["max_queries"] = max_queries
    return [TaskData(spec.language, spec.split, data.validate(), variant or None)]


def _positive(opts: dict[str, Any], key: str) -> int | None:
    value = opts.get(key)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise EmbedbenchError(f"options.{key} must be a positive integer, got {value!r}")
    return value


def _override(ref: HubRef, override: object) -> HubRef:
    if override is None:
        return ref
    known = {f.name for f in fields(HubRef)}
    if not isinstance(override, dict) or set(override) - known:
        raise EmbedbenchError(f"a source override must be a mapping with keys among {', '.join(sorted(known))}")
    return replace(ref, **override)


def hub_load(ref: HubRef, ctx: LoadContext, opts: dict[str, Any], columns: list[str], *,
             streaming: bool | None = False) -> Any:
    """One split through datasets.load_dataset: the hub repo at its revision, or its local mirror folder
    (options.hub_mirror/<owner>/<name>, else $EMBEDBENCH_HUB_MIRROR/<owner>/<name> when present).
    streaming=None streams local folders and downloads hub repos (into <cache>/hf-datasets)."""
    import datasets

    from embedbench.data.hub import MIRROR_ENV, resolve_source

    if opts.get("hub_mirror"):
        root = Path(opts["hub_mirror"]).expanduser()
        root = root if root.is_absolute() else (ctx.data_dir or Path.cwd()) / root
        if not (root / ref.repo).is_dir():
            raise EmbedbenchError(f"hub_mirror {root} has no folder {ref.repo}")
        source = resolve_source(ref.repo, ref.revision, hub_path=root / ref.repo)
    else:
        source = resolve_source(ref.repo, ref.revision)
    local = source.local is not None
    stream = local if streaming is None else streaming
    kwargs: dict[str, Any] = {"split": ref.split, "streaming": stream}
    if ref.data_files:
        kwargs["data_files"] = {ref.split: ref.data_files.format(split=ref.split)}
    if not local and ref.revision:
        kwargs["revision"] = ref.revision
    where = f"{source.label} [{ref.config or 'default'}] split {ref.split!r}"
    try:
        with tempfile.TemporaryDirectory(prefix="embedbench-kilt-") as tmp:
            # A local folder is read without datasets' cache, which would serve it stale once changed in place.
            cache = tmp if local else str(ctx.cache_dir / "hf-datasets")
            ds = datasets.load_dataset(str(source.local) if local else ref.repo, ref.config, cache_dir=cache,
                                       keep_in_memory=local and not stream, **kwargs)
    except Exception as exc:  # datasets raises many kinds (FileNotFound, ValueError, ConnectionError...)
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        hint = "" if local else (f"; offline, put a copy of the repo at ${MIRROR_ENV}/{ref.repo} "
                                 "or under options.hub_mirror")
        raise EmbedbenchError(f"cannot load {where}: {type(exc).__name__}: {first}{hint}") from None
    missing = [c for c in columns if ds.column_names is not None and c not in ds.column_names]
    if missing:
        raise DataError(source.local or ref.repo,
                        f"split {ref.split!r} lacks columns {missing} (has {ds.column_names})")
    return ds.select_columns(columns)


def _records(value: Any) -> list[dict[str, Any]]:
    """A list of structs, whether stored as a list of dicts or (datasets' Sequence) a dict of lists."""
    if isinstance(value, dict):
        return [dict(zip(value, row)) for row in zip(*value.values())]
    return list(value or [])


def _unique(items: Iterable[Any]) -> list[str]:
    out: list[str] = []
    for item in items:
        if isinstance(item, str) and item.strip() and item not in out:
            out.append(item)
    return out


def _answer_list(raw: Any, where: str) -> list[str]:
    """PopQA's possible_answers: a JSON list in a string (BERGEN evals it; a Python literal also passes)."""
    value = raw
    for parse in (json.loads, ast.literal_eval) if isinstance(raw, str) else ():
        try:
            value = parse(raw)
            break
        except (ValueError, SyntaxError):
            continue
    if not isinstance(value, list):
        raise DataError(where, f"possible_answers is not a list: {str(raw)[:80]!r}")
    return value


def _parse(name: str, row: dict[str, Any], where: str) -> _Question:
    if name == "asqa":
        pairs = _records(row["qa_pairs"])
        return _Question(str(row["sample_id"]), row["ambiguous_question"] or "",
                         _unique(a for qa in pairs for a in qa.get("short_answers") or []),
                         titles=_unique([qa.get("wikipage") for qa in pairs] +
                                        [w.get("title") for w in _records(row["wikipages"])]))
    if name == "popqa":
        return _Question(str(row["id"]), row["question"] or "", _unique(_answer_list(row["possible_answers"], where)),
                         titles=_unique([row["s_wiki_title"]]))
    outputs = _records(row["output"])
    provenance = [(str(p["wikipedia_id"]), int(p["start_paragraph_id"]), int(p["end_paragraph_id"]))
                  for o in outputs for p in _records(o.get("provenance"))]
    return _Question(str(row["id"]), row["input"] or "", _unique(o.get("answer") for o in outputs), provenance)


def _questions(name: str, ref: HubRef, ctx: LoadContext, opts: dict[str, Any],
               dropped: dict[str, int]) -> list[_Question]:
    kind = name if name in ("asqa", "popqa") else "kilt"
    rows = hub_load(ref, ctx, opts, _COLUMNS[kind])
    questions = [_parse(name, row, f"{ref.repo}/{ref.split}") for row in rows]
    if name == "triviaqa":
        tref = _override(replace(TRIVIAQA_TEXT, split=ref.split), opts.get("triviaqa_questions"))
        text = {str(r["question_id"]): r["question"] for r in hub_load(tref, ctx, opts, ["question_id", "question"])}
        for q in questions:
            q.text = text.get(q.qid) or q.text
    out = []
    for q in questions:
        if not q.text.strip():
            dropped["no_question"] += 1
        elif not usable_golds(q.answers):
            dropped["no_answer"] += 1
        else:
            out.append(q)
    return out


def chunk_page(title: str, paragraphs: list[str], words: int = PASSAGE_WORDS) -> list[tuple[str, int, int]]:
    """BERGEN's kilt-100w windows of one page: (text, first paragraph index, last paragraph index)."""
    tokens: list[str] = []
    owner: list[int] = []
    for j, paragraph in enumerate(paragraphs):
        if "BULLET::::" in paragraph:
            continue
        ws = paragraph.replace("Section::::", "Section:").split()
        tokens.extend(ws)
        owner.extend([j] * len(ws))
    return [(f"{title}. " + " ".join(tokens[i:i + words]), owner[i], owner[min(i + words, len(tokens)) - 1])
            for i in range(0, len(tokens), words)]


def _pages(ref: HubRef, ctx: LoadContext, opts: dict[str, Any],
           streaming: bool) -> Iterator[tuple[str, str, list[str]]]:
    ds = hub_load(ref, ctx, opts, ["wikipedia_id", "wikipedia_title", "text"], streaming=True if streaming else None)
    for batch in ds.iter(batch_size=1000):
        for wid, title, text in zip(batch["wikipedia_id"], batch["wikipedia_title"], batch["text"]):
            # hub parquet: {"paragraph": [...]}; KILT's own kilt_knowledgesource.json: a list of strings
            paragraphs = text["paragraph"] if isinstance(text, dict) else [
                t["paragraph"] if isinstance(t, dict) else t for t in text or []]
            yield str(wid), title or "", list(paragraphs or [])


def _corpus(ref: HubRef, ctx: LoadContext, opts: dict[str, Any], questions: list[_Question], max_passages: int | None,
            subset: str) -> tuple[dict[str, Document], dict[str, list[tuple[str, int, int]]], int]:
    """The passages, the gold pages' passage spans (by wikipedia_id and by title) and the pages read."""
    from tqdm import tqdm

    gold_ids = {w for q in questions for w, _, _ in q.provenance}
    gold_titles = {t for q in questions for t in q.titles}
    corpus: dict[str, Document] = {}
    spans: dict[str, list[tuple[str, int, int]]] = {}
    extra: list[tuple[str, str]] = []
    prefix = max_passages is not None and subset == "prefix"
    n_pages = 0
    for wid, title, paragraphs in tqdm(_pages(ref, ctx, opts, streaming=prefix), desc="kilt-100w pages", unit="page"):
        if prefix and len(corpus) >= max_passages:
            break
        n_pages += 1
        gold = wid in gold_ids or title in gold_titles
        keep = gold or prefix or max_passages is None  # else a distractor (gold subset with max_passages)
        if not keep and len(extra) >= max_passages:
            continue
        for n, (text, first, last) in enumerate(chunk_page(title, paragraphs)):
            pid = f"{wid}-{n}"
            if not keep:
                extra.append((pid, text))
                continue
            if prefix and len(corpus) >= max_passages:
                break
            corpus[pid] = Document(text)
            if gold:
                for key in (f"id:{wid}", f"title:{title}"):
                    spans.setdefault(key, []).append((pid, first, last))
    room = max(0, (max_passages or 0) - len(corpus))
    corpus.update((pid, Document(text)) for pid, text in extra[:room])
    if not corpus:
        raise DataError(ref.repo, "no passage was read from the corpus")
    return corpus, spans, n_pages


def _qrels(questions: list[_Question], corpus: dict[str, Document], spans: dict[str, list[tuple[str, int, int]]],
           dropped: dict[str, int]) -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = {}
    for q in questions:
        relevant: set[str] = set()
        for wid, first, last in q.provenance:
            page = spans.get(f"id:{wid}", [])
            hits = {pid for pid, a, b in page if a <= last and b >= first}
            relevant |= hits or {pid for pid, _, _ in page}
        golds = usable_golds(q.answers)
        for title in q.titles:
            page = spans.get(f"title:{title}", [])
            hits = {pid for pid, _, _ in page if contains_answer(corpus[pid].text, golds)}
            relevant |= hits or {pid for pid, _, _ in page}
        if relevant:
            qrels[q.qid] = {pid: 1 for pid in sorted(relevant)}
        else:
            dropped["no_evidence_in_corpus"] += 1
    return qrels
