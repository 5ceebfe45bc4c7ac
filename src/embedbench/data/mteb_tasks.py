"""mteb retrieval tasks as embedbench data: mteb's own task loaders, converted to `RetrievalData`.

`load_mteb_task` builds the task with ``mteb.get_task`` and calls its real ``load_data()`` (the
hub at the revision mteb pins, through ``datasets``), then turns every (hf_subset, split) of
mteb 2.x's layout ``{hf_subset: {split: {corpus, queries, relevant_docs, top_ranked}}}`` into one
TaskData. ``language`` is the hf_subset for multilingual tasks and the suite's ``language`` for
single-subset ones (mteb's subset ``"default"``).

Suite options (``loader: mteb``): ``task`` (the mteb name, required); ``revision`` (must equal
the installed mteb's pin, so a changed dataset is noticed); ``eval_splits`` and ``hf_subsets``
(default: all of the task's); ``hub_path`` (a local copy of the dataset repo, resolved as in
`embedbench.data.hub`, also via ``$EMBEDBENCH_HUB_MIRROR/<owner>/<name>``). A local copy is read
by the same ``load_data()``: only the task instance's ``metadata.dataset["path"]`` changes.

Kept from mteb because they change scores (recorded in ``RetrievalData.extra``):

- texts: a document is ``(title + " " + text).strip()`` when it has a title, else ``text.strip()``;
  a query is its text (conversations are flattened, a dataset ``instruction`` appended) as
  mteb's ``_retrieval_texts`` does. Model prompts / task instructions are not used.
- ``extra["ignore_identical_ids"]`` (ArguAna): mteb drops, after the top-1000 search and before
  scoring, any hit whose doc id equals the query id (no refill).
- ``extra["zero_relevance_queries"]``: queries mteb keeps although no judgement is > 0; pytrec_eval
  scores them 0 and mteb averages them in.
- ``extra["missing_corpus_ids"]``: qrels naming documents absent from the corpus (ArguAna has 5)
  are kept, as mteb keeps them; `RetrievalData.validate` would reject them, so the loader checks
  everything else itself. ``extra["top_ranked"]`` holds mteb's reranking candidates when a task
  has them (none of MTEB(Multilingual, v2)'s retrieval tasks does).
- Documents with empty text (TRECCOVID has some) cannot be represented and are dropped
  (``extra["dropped_empty_docs"]``); queries with empty text likewise (``dropped_empty_queries``).
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from typing import Any

from embedbench.data.hub import MIRROR_ENV, resolve_source
from embedbench.data.spec import TaskSpec, reject_unknown_options
from embedbench.data.tasks import LoadContext, TaskData
from embedbench.data.types import Document, Query, RetrievalData
from embedbench.errors import EmbedbenchError




def load_mteb_task(spec: TaskSpec, ctx: LoadContext) -> list[TaskData]:
    """One TaskData per (hf_subset, split) of the mteb task named in ``spec.options["task"]``."""
    task = build_task(spec, ctx)
    name, dataset = task.metadata.name, task.metadata.dataset
    local = dataset["path"] != _pinned_path(task)
    where = f"mteb:{name} {dataset['path'] if local else dataset['path'] + '@' + dataset['revision']}"
    with _quiet_datasets(fresh_cache=local):
        _load(task, where, local)
        out = []
        for subset in task.hf_subsets:
            for split in task.eval_splits:
                split_data = task.dataset.get(subset, {}).get(split)
                if split_data is None:
                    raise EmbedbenchError(f"{where}: mteb loaded no data for subset {subset!r} split {split!r}")
                data = to_retrieval_data(split_data, f"{where} {subset}/{split}",
                                         ignore_identical_ids=bool(task.ignore_identical_ids))
                language = subset if task.metadata.is_multilingual else spec.language
                out.append(TaskData(language=language, split=split, data=data))
    return out


def build_task(spec: TaskSpec, ctx: LoadContext) -> Any:
    """``mteb.get_task`` with the suite's splits / subsets, checked; a local copy swapped in if one is set."""
    reject_unknown_options(spec, "mteb")
    name = spec.options.get("task")
    if not isinstance(name, str) or not name:
        raise EmbedbenchError(f"task {spec.name!r}: loader mteb needs options.task (an mteb task name)")
    try:
        import mteb
    except ImportError:
        raise EmbedbenchError("the mteb suites need the `mteb` package (pip install 'mteb>=2')") from None
    try:
        meta = mteb.get_task(name).metadata
    except KeyError as exc:
        hint = str(exc).strip("'\"").removeprefix("KeyError: ")
        raise EmbedbenchError(f"task {spec.name!r}: unknown mteb task ({hint[:200]})") from None
    pinned = spec.options.get("revision")
    if pinned is not None and pinned != meta.dataset["revision"]:
        raise EmbedbenchError(f"task {spec.name!r}: the suite pins {meta.dataset['path']}@{pinned} but mteb "
                              f"{mteb.__version__} uses @{meta.dataset['revision']}; update the suite or mteb")
    splits = _subset_of(spec, "eval_splits", list(meta.eval_splits))
    subsets = _subset_of(spec, "hf_subsets", list(meta.hf_subsets_to_langscripts))
    task = mteb.get_task(name, eval_splits=splits, hf_subsets=subsets)
    source = resolve_source(meta.dataset["path"], meta.dataset["revision"],
                            hub_path=spec.options.get("hub_path"), data_dir=ctx.data_dir)
    if source.local is not None:
        # The class-level metadata is shared by every instance: give this one its own copy.
        task.metadata = meta.model_copy(deep=True)
        task.metadata.dataset["path"] = str(source.local)
    return task


def _subset_of(spec: TaskSpec, key: str, known: list[str]) -> list[str]:
    wanted = spec.options.get(key)
    if wanted is None:
        return known
    if not isinstance(wanted, list) or not wanted or not all(isinstance(w, str) for w in wanted):
        raise EmbedbenchError(f"task {spec.name!r}: options.{key} must be a non-empty list of names")
    missing = [w for w in wanted if w not in known]
    if missing:
        raise EmbedbenchError(f"task {spec.name!r}: mteb task has no {key} {missing[:5]} (has {known[:8]}...)")
    return wanted


def _pinned_path(task: Any) -> str:
    return type(task).metadata.dataset["path"]


@contextlib.contextmanager
def _quiet_datasets(fresh_cache: bool) -> Iterator[None]:
    """No progress bars; for a local copy, a throwaway datasets cache (a folder's cache key ignores mtimes)."""
    import datasets

    bars = datasets.utils.logging.is_progress_bar_enabled()
    datasets.utils.logging.disable_progress_bar()
    old_cache = datasets.config.HF_DATASETS_CACHE
    with tempfile.TemporaryDirectory(prefix="embedbench-mteb-") as tmp:
        if fresh_cache:
            datasets.config.HF_DATASETS_CACHE = tmp
        try:
            yield
        finally:
            datasets.config.HF_DATASETS_CACHE = old_cache
            if bars:
                datasets.utils.logging.enable_progress_bar()


def _load(task: Any, where: str, local: bool) -> None:
    """mteb's own ``load_data()`` (+ its v1 -> v2 layout conversion); failures become one line."""
    try:
        task.load_data()
        task.convert_v1_dataset_format_to_v2(num_proc=None)
    except Exception as exc:  # noqa: BLE001 - mteb / datasets / hub raise many kinds
        lines = str(exc).strip().splitlines()
        why = f"{type(exc).__name__}: {lines[0][:200]}" if lines else type(exc).__name__
        if local:
            raise EmbedbenchError(f"{where}: cannot read the local copy ({why})") from None
        repo = type(task).metadata.dataset["path"]
        raise EmbedbenchError(
            f"{where}: cannot load this dataset revision ({why}); offline, fill the Hugging Face datasets "
            f"cache with it once online (e.g. an mteb run) and set HF_DATASETS_OFFLINE=1, or put a copy of "
            f"the repo at ${MIRROR_ENV}/{repo} or in the task's options.hub_path"
        ) from None


def query_text(row: dict[str, Any]) -> str:
    """A query as mteb 2.x feeds it to the model: conversations flattened, instruction appended."""
    text = row["text"]
    if isinstance(text, list) and text:
        if isinstance(text[0], str):
            text = "; ".join(text)
        else:
            text = "; ".join(f"{turn['role']}: {turn['content']}" for turn in text)
        return f"{row['instruction']} {text}" if row.get("instruction") is not None else text
    if not isinstance(text, str):
        raise EmbedbenchError(f"query {row.get('id')!r} has a text of type {type(text).__name__}")
    return f"{text} {row['instruction']}" if row.get("instruction") is not None else text


def to_document(row: dict[str, Any]) -> Document:
    """A corpus row whose `full_text` is exactly the text mteb encodes."""
    title = row.get("title") or ""
    text = row.get("text") or ""
    return Document(text=text if title else text.strip(), title=title)


def to_retrieval_data(split_data: dict[str, Any], source: str, *, ignore_identical_ids: bool) -> RetrievalData:
    """One mteb ``RetrievalSplitData`` as RetrievalData (qrels kept as mteb scores them; see module doc)."""
    corpus: dict[str, Document] = {}
    empty_docs = 0
    for row in split_data["corpus"]:
        doc = to_document(row)
        if doc.full_text.strip():
            corpus[str(row["id"])] = doc
        else:
            empty_docs += 1
    queries: dict[str, Query] = {}
    empty_queries = 0
    for row in split_data["queries"]:
        text = query_text(row)
        if text.strip():
            queries[str(row["id"])] = Query(text=text)
        else:
            empty_queries += 1
    # mteb scores the queries that are both in the queries set and in qrels with >= 1 judgement.
    qrels = {str(q): {str(d): int(s) for d, s in rels.items()}
             for q, rels in split_data["relevant_docs"].items() if rels and str(q) in queries}
    queries = {q: queries[q] for q in queries if q in qrels}
    extra: dict[str, object] = {}
    if ignore_identical_ids:
        extra["ignore_identical_ids"] = True
    zero = sorted(q for q, rels in qrels.items() if not any(s > 0 for s in rels.values()))
    if zero:
        extra["zero_relevance_queries"] = zero
    missing = sorted({d for rels in qrels.values() for d in rels if d not in corpus})
    if missing:
        extra["missing_corpus_ids"] = missing
    if empty_docs:
        extra["dropped_empty_docs"] = empty_docs
    if empty_queries:
        extra["dropped_empty_queries"] = empty_queries
    top_ranked = split_data.get("top_ranked")
    if top_ranked:
        extra["top_ranked"] = {str(q): [str(d) for d in docs] for q, docs in top_ranked.items() if str(q) in qrels}
    data = RetrievalData(corpus=corpus, queries=queries, qrels=qrels, source=source, extra=extra)
    # Everything but the missing documents must pass the standard checks.
    RetrievalData(corpus=corpus, queries=queries, source=source,
                  qrels={q: {d: s for d, s in rels.items() if d in corpus} for q, rels in qrels.items()}).validate()
    return data
