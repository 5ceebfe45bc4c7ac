"""Planning a run: which tasks, on which data, checked before anything is encoded or written.

`plan_tasks` turns --suite / --dataset references into loaded, validated task subsets. Every check
that can fail on bad input (a suite file, a dataset, a main score the run cannot compute, a model
name) runs here, so a typo in the last task stops the run before the first task's vectors exist.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from embedbench.data.spec import TaskSpec, task_metric_names
from embedbench.data.suites import load_suite
from embedbench.data.synthetic.tasks import default_corpus_size
from embedbench.data.tasks import LoadContext, TaskData, load_task_data
from embedbench.encoders.loading import check_model_ref
from embedbench.engine.progress import log, progress_bars
from embedbench.errors import EmbedbenchError
from embedbench.scoring.precision import PrecisionSpec

# Loaders whose corpus size is a run setting (--corpus-size).
SCALABLE_LOADERS = ("synthetic-q2q", "synthetic-q2d")
DATASET_FORMATS = ("beir", "squad", "trec")
DATASET_SUITE = "dataset"  # the suite name results of --dataset runs carry


@dataclass(frozen=True)
class TaskRef:
    """A task to run, as named: its suite (or "dataset") and, for a suite file, the suite's task names."""

    suite: str
    spec: TaskSpec
    suite_tasks: tuple[str, ...] | None = None


@dataclass(frozen=True)
class PlannedTask:
    """One loaded subset of a task (a language / split / corpus size): what one Result is computed over."""

    suite: str
    spec: TaskSpec
    subset: TaskData
    suite_tasks: tuple[str, ...] | None = None
    default_corpus_size: int | None = None  # a synthetic task's size without --corpus-size


def check_run_limits(limit_queries: int | None, rescore_depth: int, rag_k: int, generating: bool,
                     specs: Sequence[PrecisionSpec]) -> None:
    """The counting arguments of `evaluate`, before anything loads."""
    if limit_queries is not None and limit_queries < 1:
        raise EmbedbenchError("--limit-queries must be at least 1")
    if rescore_depth < 1:
        raise EmbedbenchError("--rescore-depth must be at least 1")
    if generating and rag_k > rescore_depth and any(s.rescore for s in specs):
        raise EmbedbenchError(f"--rag-k {rag_k} is more passages than a two-stage search returns "
                              f"(--rescore-depth {rescore_depth})")


def task_refs(suite: str | Sequence[str] | None, dataset: str | Sequence[str] | None) -> list[TaskRef]:
    """Every task of the named suites, then one task per --dataset; the default suite when neither is given."""
    suites = [suite] if isinstance(suite, str) else list(suite or [])
    datasets = [dataset] if isinstance(dataset, str) else list(dataset or [])
    if not suites and not datasets:
        suites = ["default"]
    refs = []
    for loaded in map(load_suite, suites):
        names = tuple(t.name for t in loaded.tasks)
        refs.extend(TaskRef(loaded.name, t, names) for t in loaded.tasks)
    return refs + [dataset_ref(spec) for spec in datasets]


def dataset_ref(spec: str) -> TaskRef:
    """`FORMAT:PATH` as a one-task reference, named after the file (its folder and stem) or the folder."""
    fmt, sep, path = spec.partition(":")
    if not sep or not path:
        raise EmbedbenchError(f"--dataset {spec!r}: expected FORMAT:PATH (beir:DIR, squad:FILE, trec:DIR)")
    if fmt not in DATASET_FORMATS:
        raise EmbedbenchError(f"--dataset {spec!r}: unknown format {fmt!r} (known: {', '.join(DATASET_FORMATS)})")
    p = Path(path)
    name = f"{p.parent.name}-{p.stem}" if p.suffix else p.name
    return TaskRef(DATASET_SUITE, TaskSpec(name=name or path, loader=fmt, path=path))


def plan_tasks(refs: list[TaskRef], data_dir: Path | None, cache_root: Path,
               corpus_sizes: Sequence[int] | None) -> list[PlannedTask]:
    """Load every task's data (each corpus size of a synthetic task apart); loaders validate what they read."""
    if corpus_sizes and not any(ref.spec.loader in SCALABLE_LOADERS for ref in refs):
        raise EmbedbenchError("--corpus-size applies to the synthetic suites only (synthetic-q2q, synthetic-q2d)")
    planned = []
    for ref in _loading(refs):
        scalable = ref.spec.loader in SCALABLE_LOADERS
        default_size = default_corpus_size(ref.spec) if scalable else None
        for size in list(corpus_sizes or [None]) if scalable else [None]:
            for subset in load_task_data(ref.spec, LoadContext(data_dir, cache_root, size)):
                planned.append(PlannedTask(ref.suite, ref.spec, subset, ref.suite_tasks, default_size))
        log.debug("loaded %s (%s)", ref.spec.name, ref.suite)
    return planned


def _loading(refs: list[TaskRef]) -> Iterator[TaskRef]:
    """The refs in order, under a "loading suite NAME: 3/5 tasks" bar per suite (hub data can take minutes)."""
    for suite, group in itertools.groupby(refs, key=lambda ref: ref.suite):
        tasks = list(group)
        with tqdm(total=len(tasks), desc=f"loading suite {suite}", unit="task", leave=False, dynamic_ncols=True,
                  disable=not progress_bars() or len(tasks) < 2) as bar:
            for ref in tasks:
                bar.set_postfix_str(ref.spec.name)
                yield ref
                bar.update()


def check_main_scores(planned: list[PlannedTask], generating: bool) -> None:
    """Each task's main score is among the metrics this run will compute for it (before encoding).

    A suite file's main_score was checked against every metric the task can produce; some need
    answers in the data (answer_recall) or a --generator as well (match, exact_match, f1).
    """
    for task in planned:
        spec, answers = task.spec, bool(task.subset.data.answers)
        if spec.main_score in task_metric_names(spec, answers=answers, generator=generating):
            continue
        if spec.main_score in task_metric_names(spec, answers=answers):
            raise EmbedbenchError(f"task {spec.name!r}: main_score {spec.main_score!r} is a generation metric; "
                                  "it needs --generator")
        raise EmbedbenchError(f"task {spec.name!r}: main_score {spec.main_score!r} needs reference answers, "
                              "and this task's data has none")


def plan_evaluation(model: object, suite: str | Sequence[str] | None, dataset: str | Sequence[str] | None,
                    data_dir: Path | None, cache_root: Path, corpus_sizes: Sequence[int] | None,
                    generating: bool) -> list[PlannedTask]:
    """Suites and datasets named, the model name checked, every task's data loaded and its main score
    checked: all before the model loads (which may download weights) and before anything is encoded."""
    refs = task_refs(suite, dataset)
    if isinstance(model, str):
        check_model_ref(model)
    planned = plan_tasks(refs, data_dir, cache_root, corpus_sizes)
    check_main_scores(planned, generating)
    return planned
