"""Results arranged as report rows: one row per model x revision x variant x precision x dim, one
cell per task. Every report (tables, HTML, figures) reads this one arrangement.

Rules the arrangement enforces, so no report can break them:
* different revisions (or variants) of one model name are different rows;
* one cell holds one result; a task that was evaluated on different data (different
  provenance.dataset_hash) for the same model is split into separate rows (`data_tag`), newest
  data first, and those rows are flagged;
* suite averages only use rows that have every task the suite defines. A suite task with several
  results (a multilingual task, `language: mul` / `multilingual`, gives one result per language
  subset; a task may list several `eval_splits`) scores the plain mean of those results' main
  scores, as mteb's leaderboard scores a task over its splits x subsets.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from embedbench.errors import EmbedbenchError
from embedbench.suites import TaskSpec
from embedbench.report.rows import PRECISION_ORDER, ModelKey, Row, TaskKey, build_rows, pages_per_gb, task_key
from embedbench.report.stats import bootstrap_ci
from embedbench.results import Result, read_per_query

# Suite-task languages meaning "one result per language subset".
MULTILINGUAL = frozenset({"mul", "multilingual"})

__all__ = ["PRECISION_ORDER", "Grid", "ModelKey", "Row", "SuiteInfo", "TaskKey", "pages_per_gb", "task_key"]


@dataclass
class SuiteInfo:
    name: str
    tasks: list[TaskKey]
    types: dict[TaskKey, str]
    from_yaml: bool
    splits: dict[TaskKey, tuple[str, ...]] = field(default_factory=dict)

    def members(self, task: TaskKey, cells: Iterable[TaskKey]) -> list[TaskKey]:
        """The result keys that make up one suite task: the key itself, or for a multilingual /
        multi-split task every result of that task name in its languages and splits."""
        splits = self.splits.get(task, (task.split,))
        multi = task.language in MULTILINGUAL
        return sorted(c for c in cells if c == task or (
            c.suite == task.suite and c.task == task.task and c.split in splits and c.size == task.size and multi))

    @property
    def type_names(self) -> list[str]:
        return sorted(set(self.types.values()))


def _suite_info(name: str, observed: list[TaskKey]) -> SuiteInfo:
    try:
        from embedbench.suites import load_suite

        suite = load_suite(name)
    except (EmbedbenchError, OSError, ValueError, ImportError):
        return SuiteInfo(name, observed, {t: "all" for t in observed}, from_yaml=False)
    keys = [TaskKey(name, t.name, t.split, t.language, _default_size(t)) for t in suite.tasks]
    splits = {k: tuple(t.options.get("eval_splits") or [t.split]) for k, t in zip(keys, suite.tasks)}
    return SuiteInfo(name, keys, {k: t.type for k, t in zip(keys, suite.tasks)}, from_yaml=True,
                     splits=splits)


def _default_size(task: TaskSpec) -> int:
    """The corpus size a sized (synthetic) suite task runs at, as its loader resolves it; 0 otherwise."""
    if not task.loader.startswith("synthetic-"):
        return 0
    from embedbench.synthetic.tasks import default_corpus_size

    return default_corpus_size(task)


class Grid:
    def __init__(self, results: Sequence[Result], results_dir: Path | None = None) -> None:
        self.results_dir = results_dir
        self.tasks: list[TaskKey] = sorted({task_key(r) for r in results})
        observed = defaultdict(list)
        for t in self.tasks:
            observed[t.suite].append(t)
        self.suites = {name: _suite_info(name, tasks) for name, tasks in sorted(observed.items())}
        self.rows = build_rows(results)
        self._labels = _task_labels(self.tasks + [t for s in self.suites.values() for t in s.tasks])
        self._ci: dict[int, tuple[float, float] | None] = {}

    def task_label(self, task: TaskKey) -> str:
        return self._labels[task]

    def suite_mean(self, row: Row, suite: str, by_type: bool = False) -> tuple[float | None, str]:
        """(mean main score over the suite's tasks, "") or (None, why it is blank)."""
        info = self.suites[suite]
        scores: dict[TaskKey, float] = {}
        unmeasured = []
        for t in info.tasks:
            values = [row.cells[m].main_score for m in info.members(t, row.cells)]
            if None in values:
                unmeasured.append(t)
            elif values:
                scores[t] = _mean(values)
        if unmeasured:  # a mean without them would be over other tasks than the other rows' means
            return None, (f"{', '.join(self.task_label(t) for t in unmeasured)}: main score not measured "
                          "(its cutoff is past the two-stage rescore depth)")
        missing = [t for t in info.tasks if t not in scores]
        if missing:
            return None, f"no result for {', '.join(self.task_label(t) for t in missing)}"
        if not by_type:
            return _mean([scores[t] for t in info.tasks]), ""
        per_type = defaultdict(list)
        for t in info.tasks:
            per_type[info.types[t]].append(scores[t])
        return _mean([_mean(v) for v in per_type.values()]), ""

    def ci(self, result: Result) -> tuple[float, float] | None:
        """95% bootstrap CI of the main score over queries, from the result's per-query file."""
        if id(result) not in self._ci:
            self._ci[id(result)] = self._compute_ci(result)
        return self._ci[id(result)]

    def _compute_ci(self, result: Result) -> tuple[float, float] | None:
        if self.results_dir is None or result.main_score is None:
            return None
        try:
            values = read_per_query(self.results_dir, result).get(result.main_score_name) or {}
        except (EmbedbenchError, OSError, ValueError):
            return None
        finite = [v for v in values.values() if isinstance(v, (int, float)) and math.isfinite(v)]
        return bootstrap_ci(finite) if finite else None


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def _task_labels(tasks: list[TaskKey]) -> dict[TaskKey, str]:
    unique = sorted(set(tasks))
    by_name = defaultdict(list)
    for t in unique:
        by_name[t.task].append(t)
    labels = {}
    for name, group in by_name.items():
        for t in group:
            if len(group) == 1:
                labels[t] = name
            elif len({g.suite for g in group}) == len(group):
                labels[t] = f"{t.suite}/{name}"
            elif len({(g.suite, g.split, g.language) for g in group}) == len(group):
                labels[t] = f"{t.suite}/{name} ({t.language}, {t.split})"
            else:
                labels[t] = f"{t.suite}/{name} ({t.language}, {t.split}, n={t.size:,})"
    return labels
