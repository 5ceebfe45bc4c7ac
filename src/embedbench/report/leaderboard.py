"""The leaderboard: one row per model x revision x variant x precision x dim; columns are suite
averages (over tasks, and over task types where a suite has several) and per-task main scores with
a 95% bootstrap CI over queries. Published reference numbers live in their own table.

A score whose task is in the model's training data (the result's `zero_shot` is False) is marked †,
one whose training status is unknown (`zero_shot` None, e.g. a result written before it was recorded)
?; a mean says how many of the tasks it averages are either ("(1/18 †)")."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from embedbench.atomic import atomic_write_text
from embedbench.report import fmt
from embedbench.report.fmt import ABSENT, ABSENT_NOTE
from embedbench.report.grid import Grid, Row, TaskKey
from embedbench.report.reference import COLUMNS as REF_COLUMNS
from embedbench.report.reference import NOTES, REPORTED, SOURCE, reference_records
from embedbench.results import Result

_TIE = 1e-12
IN_TRAINING, UNKNOWN_TRAINING, OTHER_DATA = "†", "?", "‡"
TRAINING_NOTE = (f"{IN_TRAINING} = the task's data is in the model's training data (not zero-shot: the model "
                 "was trained on this dataset or a version of it, as mteb's model registry or the model card "
                 f"says); after a mean, (n/N {IN_TRAINING}) = n of the N tasks it averages are")
UNKNOWN_NOTE = (f"{UNKNOWN_TRAINING} = not known whether the task is in the model's training data (a model "
                "neither mteb's registry nor embedbench's presets describe, or a result written before embedbench "
                f"recorded it); after a mean, (n/N {UNKNOWN_TRAINING}) = n of the N tasks it averages")
OTHER_DATA_NOTE = (f"{OTHER_DATA} = evaluated on a different dataset (dataset hash) than most results in its "
                   "column; not ranked")


@dataclass(frozen=True)
class Training:
    """Which of a cell's tasks are in the model's training data (labels, with the training dataset)."""

    tasks: int = 0
    trained: tuple[str, ...] = ()
    unknown: tuple[str, ...] = ()

    def mark(self, kind: str) -> str:
        """The mark after a score: † or ? after a task's, (2/18 †) after a mean's; none when all are zero-shot."""
        if kind == "task":
            return f" {IN_TRAINING}" if self.trained else f" {UNKNOWN_TRAINING}" if self.unknown else ""
        parts = [f"{len(names)}/{self.tasks} {sign}" for names, sign in
                 ((self.trained, IN_TRAINING), (self.unknown, UNKNOWN_TRAINING)) if names]
        return f" ({', '.join(parts)})" if parts else ""

    def describe(self) -> str:
        """The same in words, for a tooltip."""
        lines = [f"{len(self.trained)} of {self.tasks} task(s) in the model's training data"
                 + (f": {', '.join(self.trained)}" if self.trained else "")]
        if self.unknown:
            lines.append(f"{len(self.unknown)} of {self.tasks} task(s) with unknown training data: "
                         f"{', '.join(self.unknown)}")
        return "\n".join(lines)


def task_training(label: str, results: list[Result]) -> Training:
    """A task (all its language / split results) is in the training data if any result says so;
    unknown if any result does not know (one written before `zero_shot` was recorded)."""
    overlap = sorted({d for r in results for d in r.training_overlap})
    if any(r.zero_shot is False for r in results):
        return Training(1, (f"{label} ({', '.join(overlap)})",))
    if any(r.zero_shot is None for r in results):
        return Training(1, unknown=(label,))
    return Training(1)


def mean_training(grid: Grid, row: Row, suite: str) -> Training:
    info = grid.suites[suite]
    each = [task_training(t.label, [row.cells[m] for m in info.members(t, row.cells)]) for t in info.tasks]
    return Training(len(each), tuple(n for t in each for n in t.trained), tuple(n for t in each for n in t.unknown))


@dataclass(frozen=True)
class Column:
    key: str    # CSV column name, unique
    label: str  # header text
    suite: str
    kind: str   # "mean" | "type_mean" | "task"
    task: TaskKey | None = None


@dataclass
class Cell:
    value: float | None
    ci: tuple[float, float] | None = None
    best: bool = False
    note: str = ""  # why a blank average is blank
    other_data: bool = False  # a task score on another dataset than the column's main one (never "best")
    results: list[Result] = field(default_factory=list)
    absent: bool = False  # a result is there, its main score was not measured (shown as ABSENT)
    training: Training = Training()  # which of its tasks are in the model's training data


@dataclass
class LeaderRow:
    row: Row
    cells: dict[str, Cell]


@dataclass
class Leaderboard:
    grid: Grid
    columns: list[Column]
    rows: list[LeaderRow]

    def footnotes(self) -> list[str]:
        notes: list[str] = []
        for lr in self.rows:
            for col in self.columns:
                note = lr.cells[col.key].note
                if note and note not in notes:
                    notes.append(note)
            for flag in lr.row.flags:
                if flag not in notes:
                    notes.append(flag)
        return notes


def columns_for(grid: Grid) -> list[Column]:
    cols = []
    for name, info in grid.suites.items():
        cols.append(Column(f"{name}:mean", f"{name} mean", name, "mean"))
        if len(info.type_names) > 1:
            cols.append(Column(f"{name}:mean_by_type", f"{name} mean over types", name, "type_mean"))
    for task in grid.tasks:
        label = grid.task_label(task)
        cols.append(Column(label if label not in {c.key for c in cols} else f"{task.suite}/{label}",
                           label, task.suite, "task", task))
    return cols


def build_leaderboard(grid: Grid) -> Leaderboard:
    columns = columns_for(grid)
    rows = []
    for row in grid.rows:
        cells = {}
        for col in columns:
            if col.kind == "task":
                result = row.cells.get(col.task)
                cells[col.key] = (Cell(result.main_score, grid.ci(result), results=[result],
                                       absent=result.main_score is None,
                                       training=task_training(col.label, [result])) if result else Cell(None))
            else:
                value, why = grid.suite_mean(row, col.suite, by_type=col.kind == "type_mean")
                in_suite = [r for t, r in sorted(row.cells.items()) if t.suite == col.suite]
                note = (f"{col.label} is blank where a row lacks one of the suite's "
                        f"{len(grid.suites[col.suite].tasks)} tasks ({row.label}: {why})") if in_suite and why else ""
                cells[col.key] = (Cell(value, results=in_suite, training=mean_training(grid, row, col.suite))
                                  if value is not None else Cell(None, note=note))
        rows.append(LeaderRow(row, cells))
    _mark_best(columns, rows)
    return Leaderboard(grid, columns, rows)


def _mark_best(columns: list[Column], rows: list[LeaderRow]) -> None:
    """Best per column among measured rows. In a task column only results on the column's main
    dataset (the hash most results used; ties: the newest) compete."""
    for col in columns:
        cells = [lr.cells[col.key] for lr in rows if lr.cells[col.key].value is not None]
        if col.kind == "task" and cells:
            count: dict[str, list] = defaultdict(lambda: [0, ""])
            for c in cells:
                p = c.results[0].provenance
                count[p.dataset_hash][0] += 1
                count[p.dataset_hash][1] = max(count[p.dataset_hash][1], p.created_at)
            main = max(count, key=lambda h: (count[h][0], count[h][1], h))
            for c in cells:
                c.other_data = c.results[0].provenance.dataset_hash != main
            cells = [c for c in cells if not c.other_data]
        top = max((c.value for c in cells), default=None)
        for c in cells:
            c.best = c.value >= top - _TIE


def leaderboard_frame(lb: Leaderboard) -> pd.DataFrame:
    records = []
    for lr in lb.rows:
        row = lr.row
        rec: dict[str, object] = {
            "model": row.key.model, "revision": row.key.revision, "variant": row.key.variant,
            "precision": row.precision, "quantization": row.quantization, "dim": row.dim,
            "bytes_per_vector": row.bytes_per_vector, "pages_per_gb": row.pages_per_gb,
            "data_flag": "; ".join(row.flags),
        }
        for col in lb.columns:
            cell = lr.cells[col.key]
            rec[col.key] = ABSENT if cell.absent else cell.value
            if col.kind == "task":
                rec[f"{col.key}:ci_low"] = cell.ci[0] if cell.ci else None
                rec[f"{col.key}:ci_high"] = cell.ci[1] if cell.ci else None
                rec[f"{col.key}:dataset_hash"] = cell.results[0].provenance.dataset_hash if cell.results else None
            rec[f"{col.key}:best"] = cell.best
            if col.kind == "task":
                rec[f"{col.key}:other_data"] = cell.other_data
                rec[f"{col.key}:zero_shot"] = cell.results[0].zero_shot if cell.results else None
            else:
                known = cell.value is not None
                rec[f"{col.key}:tasks_in_training"] = len(cell.training.trained) if known else None
                rec[f"{col.key}:tasks_training_unknown"] = len(cell.training.unknown) if known else None
        records.append(rec)
    return pd.DataFrame(records)


def leaderboard_markdown(lb: Leaderboard) -> str:
    notes = lb.footnotes()
    header = ["model", "revision", "precision", "dim", "bytes/vector", *[c.label for c in lb.columns]]
    body = [_markdown_row(lr, lb.columns, notes) for lr in lb.rows]
    out = ["# Leaderboard", "",
           "Measured by embedbench. Main score per task (0-1; the metric each suite names, e.g. nDCG@10); "
           "suite means are over the suite's tasks and only for rows that have all of them. **Bold** = best in "
           "its column among measured rows (task columns: among results on the dataset most results used). Different "
           "revisions and different datasets are never averaged together. 95% bootstrap CIs over queries are "
           "in leaderboard.csv and leaderboard.html.", "",
           fmt.md_table(header, body, ["---"] * 4 + ["---:"] * (len(header) - 4)), ""]
    for note in legend(lb):
        out += [f"{note}.", ""]
    if notes:
        out += ["Notes:", ""] + [f"{i}. {fmt.md_cell(n)}" for i, n in enumerate(notes, 1)] + [""]
    out += [reference_markdown()]
    return "\n".join(out)


def _markdown_row(lr: LeaderRow, columns: list[Column], notes: list[str]) -> list[str]:
    row = lr.row
    marks = ", ".join(str(notes.index(f) + 1) for f in dict.fromkeys(row.flags))
    label = fmt.md_cell(row.model_label) + (f" ⚠ [{marks}]" if marks else "")
    return [label, fmt.md_cell(row.key.revision[:12]), fmt.md_cell(row.precision), fmt.vector_size(row.dim),
            fmt.vector_size(row.bytes_per_vector),
            *[_markdown_cell(lr.cells[col.key], col.kind, notes) for col in columns]]


def legend(lb: Leaderboard) -> list[str]:
    """What the marks the leaderboard uses mean (only the marks it uses)."""
    cells = [c for lr in lb.rows for c in lr.cells.values()]
    return [note for used, note in ((any(c.other_data for c in cells), OTHER_DATA_NOTE),
                                    (any(c.training.trained for c in cells), TRAINING_NOTE),
                                    (any(c.training.unknown for c in cells), UNKNOWN_NOTE),
                                    (any(c.absent for c in cells), ABSENT_NOTE)) if used]


def _markdown_cell(cell: Cell, kind: str, notes: list[str]) -> str:
    """A score (bold: best; ‡: other data; †: in training data; ?: unknown; –: not measured), or
    "n/a [note]" for a blank average."""
    if cell.note:
        return f"n/a [{notes.index(cell.note) + 1}]"
    text = ABSENT if cell.absent else fmt.score(cell.value)
    if cell.best:
        text = f"**{text}**"
    if cell.other_data:
        text += f" {OTHER_DATA}"
    return text + cell.training.mark(kind) if text and not cell.absent else text  # nothing measured: no mark


def reference_markdown() -> str:
    header = ["benchmark", "metric", "model", "precision", "value (%)", "note"]
    body = [[fmt.md_cell(r.benchmark), r.metric, fmt.md_cell(r.model), r.precision, f"{r.value:.2f}",
             fmt.md_cell(r.note)] for r in REPORTED]
    return "\n".join(["## Reported by authors (not measured here)", "",
                      "Company-reported numbers, shown for reference only: not comparable row-for-row with the "
                      "measured table (different corpora and settings), never averaged, never marked best.", "",
                      fmt.md_table(header, body, ["---"] * 4 + ["---:", "---"]), "",
                      *[f"- {n}" for n in NOTES], f"- Source: {SOURCE}", ""])


def write_leaderboard(lb: Leaderboard, out_dir: Path) -> list[Path]:
    md, csv, ref = out_dir / "leaderboard.md", out_dir / "leaderboard.csv", out_dir / "reference.csv"
    atomic_write_text(md, leaderboard_markdown(lb))
    atomic_write_text(csv, leaderboard_frame(lb).to_csv(index=False))
    atomic_write_text(ref, pd.DataFrame(reference_records(), columns=REF_COLUMNS).assign(
        reported_by="authors", source=SOURCE).to_csv(index=False))
    return [md, csv, ref]
