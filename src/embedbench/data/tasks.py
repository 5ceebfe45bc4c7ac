"""Task loaders: turn a suite task (TaskSpec) into one or more (language, split) retrieval datasets.

Each loader is named in LOADERS as "module:function" and imported on first use, so a suite that
needs mteb or datasets costs nothing to a run that doesn't. A loader has the signature
`load(spec: TaskSpec, ctx: LoadContext) -> list[TaskData]` and returns validated data; a task with
several language subsets (mteb's multilingual tasks) returns one TaskData per subset.

What a task is (TaskSpec) and each loader's options schema live in `embedbench.data.spec`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from embedbench.data.spec import FILE_LOADERS, TaskSpec
from embedbench.data.types import RetrievalData

LOADERS: dict[str, str] = {
    **dict.fromkeys(FILE_LOADERS, "embedbench.data.tasks:load_file_task"),
    "bfcl": "embedbench.data.bfcl:load_bfcl_task",
    "mteb": "embedbench.data.mteb_tasks:load_mteb_task",
    "toolret": "embedbench.data.toolret:load_toolret_task",
    "conteb": "embedbench.data.conteb:load_conteb_task",
    "kilt": "embedbench.data.kilt:load_kilt_task",
    "xquad-r": "embedbench.data.xquad:load_xquad_task",
    "codebase-contextual": "embedbench.data.codebase:load_codebase_task",
    "synthetic-q2q": "embedbench.data.synthetic.tasks:load_q2q_task",
    "synthetic-q2d": "embedbench.data.synthetic.tasks:load_q2d_task",
}


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


def loader_for(name: str) -> Callable[[TaskSpec, LoadContext], list[TaskData]]:
    module, _, func = LOADERS[name].partition(":")
    return getattr(importlib.import_module(module), func)


def load_task_data(spec: TaskSpec, ctx: LoadContext) -> list[TaskData]:
    return loader_for(spec.loader)(spec, ctx)


def load_file_task(spec: TaskSpec, ctx: LoadContext) -> list[TaskData]:
    """beir:DIR, squad:FILE and trec:DIR tasks (paths relative to the data dir)."""
    from embedbench.data.formats import load_dataset_spec

    data: RetrievalData = load_dataset_spec(f"{spec.loader}:{spec.path}", ctx.data_dir)
    return [TaskData(spec.language, spec.split, data)]
