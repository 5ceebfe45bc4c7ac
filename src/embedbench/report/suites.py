"""Which tasks make up each suite, as the results recorded it: the suite means' task lists and types.

Read from results only, never from today's suite files or data loaders, so the same results give
the same report whatever happened to ``suites/`` since they were made:

* a suite's tasks are the ``suite_tasks`` its results recorded (the newest result's list, should the
  suite have changed between runs); results written before that field give the suite the tasks
  observed among its results instead;
* a sized (synthetic) task counts at the corpus size its suite gives it (``corpus_size``, recorded
  beside the size the result ran at, ``variant.corpus_size``); without that record every observed
  size is a task of its own;
* a task's type is the ``task_type`` its results recorded; the mean over types needs every task's.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from embedbench.report.rows import TaskKey, task_key
from embedbench.results import Result


@dataclass(frozen=True, order=True)
class SuiteTask:
    """One task of a suite: its name and, for a sized (synthetic) task, the corpus size it counts at."""

    suite: str
    task: str
    size: int = 0

    @property
    def label(self) -> str:
        return f"{self.task} (n={self.size:,})" if self.size else self.task


@dataclass
class SuiteInfo:
    name: str
    tasks: list[SuiteTask]
    types: dict[SuiteTask, str] = field(default_factory=dict)  # only the tasks whose results recorded one

    def members(self, task: SuiteTask, cells: Iterable[TaskKey]) -> list[TaskKey]:
        """The result keys that make up one suite task: every result of its name (each language subset
        of a multilingual task, each of its eval splits) at the task's corpus size."""
        return sorted(c for c in cells if (c.suite, c.task, c.size) == (task.suite, task.task, task.size))

    @property
    def type_names(self) -> list[str]:
        """The suite's task types; none unless every task's results recorded its type."""
        return sorted(set(self.types.values())) if len(self.types) == len(self.tasks) else []


def suite_infos(results: Sequence[Result]) -> dict[str, SuiteInfo]:
    """Each suite the results come from, by name."""
    by_suite: dict[str, list[Result]] = defaultdict(list)
    for r in results:
        by_suite[r.suite].append(r)
    return {name: _suite_info(name, mine) for name, mine in sorted(by_suite.items())}


def _suite_info(name: str, results: list[Result]) -> SuiteInfo:
    tasks = [SuiteTask(name, task, size) for task in _task_names(results) for size in _sizes(task, results)]
    recorded_types = {r.task: r.task_type for r in sorted(results, key=_age) if r.task_type}  # newest wins
    return SuiteInfo(name, tasks, {t: recorded_types[t.task] for t in tasks if t.task in recorded_types})


def _age(result: Result) -> tuple[str, str]:
    return (result.provenance.created_at, result.identity_hash())


def _task_names(results: list[Result]) -> list[str]:
    """The suite's task names as its newest result recorded them; else those among its results."""
    recorded = [r for r in results if r.suite_tasks]
    if not recorded:
        return sorted({r.task for r in results})
    newest = max(recorded, key=lambda r: (*_age(r), r.suite_tasks))
    return list(dict.fromkeys(newest.suite_tasks or []))


def _sizes(task: str, results: list[Result]) -> list[int]:
    """The corpus sizes a suite task counts at: the one its suite gives it, as recorded; else each size
    observed among its results; 0 for a task that is not sized (or has no result at all)."""
    mine = [r for r in results if r.task == task]
    recorded = {r.corpus_size for r in mine if r.corpus_size is not None}
    return sorted(recorded or {task_key(r).size for r in mine} or {0})
