"""Results arranged as report rows: one row per model x revision x variant x precision x dim, one
cell per task. Every report (tables, HTML, figures) reads this one arrangement.

Rules the arrangement enforces, so no report can break them:
* different revisions (or variants) of one model name are different rows;
* one cell holds one result; a task that was evaluated on different data (different
  provenance.dataset_hash) for the same model is split into separate rows (`data_tag`), newest
  data first, and those rows are flagged;
* suite averages only use rows that have every task of the suite, as its results recorded it
  (report/suites.py). A suite task with several results (a multilingual task gives one result per
  language subset; a task may list several `eval_splits`) scores the plain mean of those results'
  main scores, as mteb's leaderboard scores a task over its splits x subsets.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from embedbench.errors import EmbedbenchError
from embedbench.report.rows import PRECISION_ORDER, ModelKey, Row, TaskKey, build_rows, pages_per_gb, task_key
from embedbench.report.suites import SuiteInfo, SuiteTask, suite_infos
from embedbench.results import Result, read_per_query
from embedbench.scoring.stats import bootstrap_ci

__all__ = ["PRECISION_ORDER", "Grid", "ModelKey", "Row", "SuiteInfo", "SuiteTask", "TaskKey", "pages_per_gb",
           "task_key"]


class Grid:
    def __init__(self, results: Sequence[Result], results_dir: Path | None = None) -> None:
        self.results_dir = results_dir
        self.tasks: list[TaskKey] = sorted({task_key(r) for r in results})
        self.suites: dict[str, SuiteInfo] = suite_infos(results)
        self.rows = build_rows(results)
        self._labels = _task_labels(self.tasks)
        self._ci: dict[int, tuple[float, float] | None] = {}

    def task_label(self, task: TaskKey) -> str:
        return self._labels[task]

    def suite_mean(self, row: Row, suite: str, by_type: bool = False) -> tuple[float | None, str]:
        """(mean main score over the suite's tasks, "") or (None, why it is blank)."""
        info = self.suites[suite]
        scores, unmeasured = _task_scores(info, row)
        if unmeasured:  # a mean without them would be over other tasks than the other rows' means
            return None, (f"{', '.join(t.label for t in unmeasured)}: main score not measured "
                          "(its cutoff is past the two-stage rescore depth)")
        missing = [t for t in info.tasks if t not in scores]
        if missing:
            return None, f"no result for {', '.join(t.label for t in missing)}"
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


def _task_scores(info: SuiteInfo, row: Row) -> tuple[dict[SuiteTask, float], list[SuiteTask]]:
    """({suite task: the mean main score of its results in the row}, the tasks with an unmeasured result)."""
    scores: dict[SuiteTask, float] = {}
    unmeasured = []
    for t in info.tasks:
        values = [row.cells[m].main_score for m in info.members(t, row.cells)]
        if None in values:
            unmeasured.append(t)
        elif values:
            scores[t] = _mean(values)  # type: ignore[arg-type]
    return scores, unmeasured


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
