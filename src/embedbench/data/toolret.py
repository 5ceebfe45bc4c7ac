"""ToolRet tool retrieval (Shi et al., 2025; github.com/mangopy/tool-retrieval-benchmark) from its hub datasets.

Hub data (read through :mod:`embedbench.data.hub`, so a local mirror of the repos works the same):

- ``mangopy/ToolRet-Queries``: one config per source task (35, listed in :data:`TASK_CATEGORY`, as in
  the benchmark's ``toolret/config.py``), split ``queries``, columns ``id``, ``query``,
  ``instruction`` (per query), ``labels`` (a JSON string: ``[{"id", "doc", "relevance"}]``), ``category``;
- ``mangopy/ToolRet-Tools``: configs ``web`` / ``code`` / ``customized``, split ``tools``, columns
  ``id`` and ``documentation`` (a JSON string of the tool).

Mapping (one TaskData per task, i.e. per category):

- queries: every query of the category's source tasks (``options.tasks`` narrows them), query
  id = the row's ``id``; ``extra["instructions"]`` = {query id: its instruction} and
  ``extra["task"]`` = {query id: source task}. ``RetrievalData.instruction`` holds mteb's generic
  ToolRet prompt, for queries whose own instruction is empty;
- corpus: the tools of every category (``options.corpus: all``, ToolRet's own protocol), or of this
  category only (``corpus: category``; labels naming other categories' tools are then dropped and
  counted in ``extra["unresolved_labels"]``, and queries left with no relevant tool in
  ``extra["queries_without_relevant"]``); document id = the tool ``id``;
- tool text (``options.tool_text``): ``rendered`` (default) parses the documentation and renders
  name + description + parameters with :func:`embedbench.data.tools.render_tool`, adapting
  ToolRet's parameter shorthands (``{param: {type, description}}`` where a type containing
  "optional" marks an optional parameter, or a list of ``{name, type, description, required}``);
  a documentation without a name, or not JSON, is kept verbatim. ``raw`` keeps every documentation
  verbatim (the text ToolRet's own evaluation encodes);
- qrels: the labels' relevance grades (ints).

Options: ``category`` (required), ``tasks``, ``corpus``, ``tool_text``, ``queries_revision`` /
``tools_revision`` (hub commits), ``hub_path`` (a mirror root holding ``mangopy/ToolRet-Queries`` and
``mangopy/ToolRet-Tools``), ``instruction`` (the runner's with / without / both).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from embedbench.data.hub import load_hub_split, require_columns, resolve_source
from embedbench.data.spec import TaskSpec, reject_unknown_options
from embedbench.data.tasks import LoadContext, TaskData
from embedbench.data.tools import render_tool
from embedbench.data.types import Document, Query, RetrievalData
from embedbench.errors import DataError, EmbedbenchError


__all__ = ["CATEGORIES", "GENERIC_INSTRUCTION", "TASK_CATEGORY", "load_toolret_task", "tool_text"]

QUERIES_REPO = "mangopy/ToolRet-Queries"
TOOLS_REPO = "mangopy/ToolRet-Tools"
CATEGORIES = ("web", "code", "customized")
# mteb 2.26 ToolRetrieval's query prompt.
GENERIC_INSTRUCTION = "Given a user query, retrieve relevant tool documentation that can solve the query"
TASK_CATEGORY: dict[str, str] = {
    **{t: "code" for t in ("craft-math-algebra", "craft-tabmwp", "craft-vqa", "gorilla-huggingface",
                           "gorilla-pytorch", "gorilla-tensor", "toolink")},
    **{t: "web" for t in ("apibank", "apigen", "mnms", "reversechain", "rotbench", "t-eval-dialog", "t-eval-step",
                          "taskbench-daily", "toolace", "toolbench", "toolemu", "tooleyes", "toollens", "ultratool",
                          "autotools-food", "autotools-music", "autotools-weather", "restgpt-spotify",
                          "restgpt-tmdb")},
    **{t: "customized" for t in ("appbench", "gpt4tools", "gta", "taskbench-huggingface", "taskbench-multimedia",
                                 "metatool", "tool-be-honest", "toolalpaca", "toolbench-sam")},
}


def _param_schema(params: object) -> Mapping[str, Any] | None:
    """ToolRet's parameter shapes as a JSON schema (None when there is nothing to render)."""
    if isinstance(params, Mapping) and isinstance(params.get("properties"), Mapping):
        return params
    props: dict[str, dict[str, Any]] = {}
    required: list[str] = []
    items = params.items() if isinstance(params, Mapping) else (
        ((p.get("name"), p) for p in params if isinstance(p, Mapping)) if isinstance(params, list) else ())
    for name, spec in items:
        if not isinstance(name, str) or not name:
            continue
        spec = spec if isinstance(spec, Mapping) else {"type": spec}
        raw_type = spec.get("type")
        type_text = raw_type if isinstance(raw_type, str) else ""
        clean = type_text.replace(", optional", "").replace(",optional", "").strip()
        props[name] = {k: v for k, v in (("type", clean or raw_type), ("description", spec.get("description")))
                       if v not in (None, "")}
        flag = spec.get("required")
        if flag is True or (flag is None and "optional" not in type_text.lower()):
            required.append(name)
    return {"type": "object", "properties": props, "required": required} if props else None


def tool_text(documentation: object, mode: str = "rendered") -> tuple[str, bool]:
    """(text to encode, whether it was rendered) for one ToolRet ``documentation`` value."""
    raw = documentation if isinstance(documentation, str) else json.dumps(documentation, ensure_ascii=False)
    if mode == "raw":
        return raw, False
    try:
        doc = json.loads(documentation) if isinstance(documentation, str) else documentation
    except ValueError:
        return raw, False
    name = doc.get("name") if isinstance(doc, Mapping) else None
    if not isinstance(name, str) or not name.strip():
        return raw, False
    tool = {"name": name, "description": doc.get("description")}
    schema = _param_schema(doc.get("parameters"))
    if schema is not None:
        tool["parameters"] = schema
    return render_tool(tool), True


def _option(spec: TaskSpec, key: str, default: Any, allowed: tuple[str, ...] | None = None) -> Any:
    value = spec.options.get(key, default)
    if allowed is not None and value not in allowed:
        raise EmbedbenchError(f"task {spec.name!r}: options.{key} must be one of {', '.join(allowed)}, got {value!r}")
    return value


def load_toolret_task(spec: TaskSpec, ctx: LoadContext) -> list[TaskData]:
    reject_unknown_options(spec, "ToolRet")
    category = _option(spec, "category", None, CATEGORIES)
    tasks = spec.options.get("tasks") or [t for t, c in TASK_CATEGORY.items() if c == category]
    wrong = [t for t in tasks if TASK_CATEGORY.get(t) != category]
    if wrong:
        raise EmbedbenchError(f"task {spec.name!r}: options.tasks {wrong} are not ToolRet {category} tasks")
    corpus_mode = _option(spec, "corpus", "all", ("all", "category"))
    text_mode = _option(spec, "tool_text", "rendered", ("rendered", "raw"))
    hub_path = spec.options.get("hub_path")

    def split(repo: str, revision_key: str, config: str, name: str, columns: tuple[str, ...]):
        source = resolve_source(repo, spec.options.get(revision_key),
                                hub_path=f"{hub_path}/{repo}" if hub_path else None, data_dir=ctx.data_dir)
        ds = load_hub_split(source, config, name, ctx.cache_dir)
        require_columns(ds, columns, f"{source.label} {config}/{name}")
        return source, ds

    corpus: dict[str, Document] = {}
    rendered = 0
    for cat in (CATEGORIES if corpus_mode == "all" else (category,)):
        source, ds = split(TOOLS_REPO, "tools_revision", cat, "tools", ("id", "documentation"))
        for row in ds:
            text, was_rendered = tool_text(row["documentation"], text_mode)
            corpus[str(row["id"])] = Document(text=text)
            rendered += was_rendered

    queries: dict[str, Query] = {}
    qrels: dict[str, dict[str, int]] = {}
    instructions: dict[str, str] = {}
    task_of: dict[str, str] = {}
    unresolved = unjudged = 0
    for task in tasks:
        source, ds = split(QUERIES_REPO, "queries_revision", task, "queries", ("id", "query", "instruction", "labels"))
        where = f"{source.label} {task}/queries"
        for line, row in enumerate(ds, start=1):
            qid = str(row["id"])
            if qid in queries:
                raise DataError(where, f"duplicate query id {qid!r}", line)
            try:
                labels = json.loads(row["labels"]) if isinstance(row["labels"], str) else row["labels"]
                rels = {str(lab["id"]): int(lab["relevance"]) for lab in labels}
            except (ValueError, TypeError, KeyError) as exc:
                raise DataError(where, f"query {qid!r}: labels are not [{{id, relevance}}] ({exc})", line) from None
            missing = [d for d in rels if d not in corpus]
            if missing and corpus_mode == "all":
                raise DataError(where, f"query {qid!r} labels unknown tool {missing[0]!r}", line)
            unresolved += len(missing)
            rels = {d: r for d, r in rels.items() if d in corpus}
            if not any(r > 0 for r in rels.values()):
                unjudged += 1
                continue
            queries[qid] = Query(text=str(row["query"] or ""))
            qrels[qid] = rels
            instructions[qid] = str(row["instruction"] or "").strip()
            task_of[qid] = task

    variant = {k: v for k, v in (("corpus", corpus_mode), ("tool_text", text_mode))
               if v != {"corpus": "all", "tool_text": "rendered"}[k]}
    data = RetrievalData(
        corpus=corpus, queries=queries, qrels=qrels,
        source=f"{QUERIES_REPO}@{spec.options.get('queries_revision') or 'latest'} + "
               f"{TOOLS_REPO}@{spec.options.get('tools_revision') or 'latest'} ({category})",
        extra={"instructions": instructions, "task": task_of, "tools_rendered": rendered,
               "tools_verbatim": len(corpus) - rendered, "unresolved_labels": unresolved,
               "queries_without_relevant": unjudged},
        instruction=GENERIC_INSTRUCTION,
    ).validate()
    return [TaskData(spec.language, spec.split, data, variant or None)]
