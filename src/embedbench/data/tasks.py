"""Task loaders: turn a suite task (TaskSpec) into one or more (language, split) retrieval datasets.

Each loader is named in LOADERS as "module:function" and imported on first use, so a suite that
needs mteb or datasets costs nothing to a run that doesn't. A loader has the signature
`load(spec: TaskSpec, ctx: LoadContext) -> list[TaskData]` and returns validated data; a task with
several language subsets (mteb's multilingual tasks) returns one TaskData per subset.

Each loader's `options:` are described by a pydantic model in OPTIONS (names and types; the loader
checks the values). `check_options` runs when a suite file is read, before any data is loaded, so a
misspelt option stops the run before anything is downloaded, encoded or written.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, ValidationError

from embedbench.data.types import RetrievalData
from embedbench.errors import EmbedbenchError

if TYPE_CHECKING:
    from embedbench.suites import TaskSpec

LOADERS: dict[str, str] = {
    "beir": "embedbench.data.tasks:load_file_task",
    "squad": "embedbench.data.tasks:load_file_task",
    "trec": "embedbench.data.tasks:load_file_task",
    "bfcl": "embedbench.data.bfcl:load_bfcl_task",
    "mteb": "embedbench.data.mteb_tasks:load_mteb_task",
    "toolret": "embedbench.data.toolret:load_toolret_task",
    "conteb": "embedbench.data.conteb:load_conteb_task",
    "kilt": "embedbench.data.kilt:load_kilt_task",
    "xquad-r": "embedbench.data.xquad:load_xquad_task",
    "codebase-contextual": "embedbench.data.codebase:load_codebase_task",
    "synthetic-q2q": "embedbench.synthetic.tasks:load_q2q_task",
    "synthetic-q2d": "embedbench.synthetic.tasks:load_q2d_task",
}

# Metric families a task may add to the standard ones (see embedbench.task_metrics).
EXTRA_METRICS = ("comprehensiveness", "answer_recall")


class NoOptions(BaseModel):
    """A loader that takes no options (everything comes from `path`)."""

    model_config = ConfigDict(extra="forbid")


class MtebOptions(NoOptions):
    task: str | None = None  # the mteb task name (required by the loader)
    revision: str | None = None
    eval_splits: list[str] | None = None
    hf_subsets: list[str] | None = None
    hub_path: str | None = None


class ToolRetOptions(NoOptions):
    category: str | None = None
    tasks: list[str] | None = None
    corpus: str | None = None
    tool_text: str | None = None
    queries_revision: str | None = None
    tools_revision: str | None = None
    hub_path: str | None = None
    instruction: str | None = None  # with | without | both (read by the runner)


class ConTEBOptions(NoOptions):
    repo: str | None = None
    revision: str | None = None
    documents_config: str | None = None
    queries_config: str | None = None
    hub_path: str | None = None


class KiltOptions(NoOptions):
    dataset: str | None = None
    subset: str | None = None
    max_passages: int | None = None
    max_queries: int | None = None
    queries: dict[str, Any] | None = None  # source overrides (embedbench.data.kilt.HubRef fields)
    corpus: dict[str, Any] | None = None
    triviaqa_questions: dict[str, Any] | None = None
    hub_mirror: str | None = None


class XquadOptions(NoOptions):
    mode: str | None = None
    languages: list[str] | str | None = None
    document: str | None = None
    unit: str | None = None
    query_language: str | None = None


class SyntheticOptions(NoOptions):
    seed: int | None = None
    languages: list[str] | str | None = None
    n_queries: int | None = None
    corpus_size: int | None = None
    by_language: bool | None = None


OPTIONS: dict[str, type[NoOptions]] = {
    "beir": NoOptions, "squad": NoOptions, "trec": NoOptions, "bfcl": NoOptions, "codebase-contextual": NoOptions,
    "mteb": MtebOptions, "toolret": ToolRetOptions, "conteb": ConTEBOptions, "kilt": KiltOptions,
    "xquad-r": XquadOptions, "synthetic-q2q": SyntheticOptions, "synthetic-q2d": SyntheticOptions,
}


def check_options(spec: "TaskSpec") -> None:
    """A task's options against its loader's schema: unknown names (listing the valid ones) and types."""
    schema = OPTIONS[spec.loader]
    try:
        schema.model_validate(spec.options)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = str(first["loc"][0]) if first["loc"] else "options"
        valid = ", ".join(schema.model_fields) or "none"
        if first["type"] == "extra_forbidden":
            raise EmbedbenchError(f"task {spec.name!r}: unknown option {key!r} for loader {spec.loader} "
                                  f"(valid: {valid})") from None
        raise EmbedbenchError(f"task {spec.name!r}: options.{key}: {first['msg']}") from None


@dataclass(frozen=True)
class LoadContext:
    data_dir: Path | None
    cache_dir: Path
    corpus_size: int | None = None  # synthetic suites: total documents (judged ones + distractors)


@dataclass(frozen=True)
class TaskData:
    """One subset of a task: what a single Result is computed over."""

    language: str
    split: str
    data: RetrievalData
    variant: dict[str, str | int | float] | None = None  # loader-level variant keys (e.g. corpus_size)


def default_data_dir() -> Path | None:
    value = os.environ.get("EMBEDBENCH_DATA_DIR")
    return Path(value) if value else None


def loader_for(name: str) -> Callable[["TaskSpec", LoadContext], list[TaskData]]:
    module, _, func = LOADERS[name].partition(":")
    return getattr(importlib.import_module(module), func)


def load_task_data(spec: "TaskSpec", ctx: LoadContext) -> list[TaskData]:
    return loader_for(spec.loader)(spec, ctx)


def load_file_task(spec: "TaskSpec", ctx: LoadContext) -> list[TaskData]:
    """beir:DIR, squad:FILE and trec:DIR tasks (paths relative to the data dir)."""
    from embedbench.data.formats import load_dataset_spec

    data: RetrievalData = load_dataset_spec(f"{spec.loader}:{spec.path}", ctx.data_dir)
    return [TaskData(spec.language, spec.split, data)]
