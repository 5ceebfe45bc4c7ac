"""Report rows: one per model x revision x variant x precision x dim (x data version), one cell
per task, each cell one Result. See grid.py for the rules this arrangement enforces."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from embedbench.results import Result

PRECISION_ORDER = {"fp32": 0, "fp16": 1, "binary+fp32": 2, "binary+int8": 3, "int8": 4, "int8:posthoc": 5,
                   "binary": 6, "binary:posthoc": 7}


# Variant keys that describe the task's data rather than the model (a synthetic suite's corpus
# size): they go into the TaskKey, so a row (one model variant) holds every size as its own cell.
TASK_VARIANT_KEYS = ("corpus_size",)
INDEX_KEY = "index"  # a faiss index's spec in a result's variant (absent: exact search)


@dataclass(frozen=True, order=True)
class TaskKey:
    suite: str
    task: str
    split: str
    language: str
    size: int = 0  # the corpus_size of a sized (synthetic) task; 0 for every other task


@dataclass(frozen=True, order=True)
class ModelKey:
    model: str
    revision: str
    variant: str
    data_tag: int = 0  # 0: the newest data for every task; n > 0: the n-th older dataset of a conflicting task


@dataclass
class Row:
    key: ModelKey
    precision: str
    dim: int
    cells: dict[TaskKey, Result] = field(default_factory=dict)
    flags: list[str] = field(default_factory=list)
    model_label: str = ""  # model, with revision / variant / data tag where they tell rows apart
    label: str = ""        # model_label · precision · dim

    @property
    def first(self) -> Result:
        return next(iter(self.cells.values()))

    @property
    def quantization(self) -> str:
        return self.first.quantization

    @property
    def bytes_per_vector(self) -> int:
        return self.first.bytes_per_vector

    @property
    def pages_per_gb(self) -> int | None:
        return pages_per_gb(self.first)

    @property
    def index(self) -> str:
        """The search index the row's results ranked with: ``exact``, or a faiss index's canonical spec."""
        return index_of(self.first)

    @property
    def base_variant(self) -> str:
        """The row's variant without its index: the exact search's rows of the same settings have it."""
        return base_variant(self.key.variant)

    def score(self, task: TaskKey) -> float | None:
        result = self.cells.get(task)
        return result.main_score if result is not None else None

    def absent(self, task: TaskKey) -> bool:
        """A result is there but its main score is not: a two-stage search shallower than the metric's
        cutoff (Recall@100 at --rescore-depth 50) measures nothing there, which is not a score of 0."""
        result = self.cells.get(task)
        return result is not None and result.main_score is None


def pages_per_gb(result: Result) -> int | None:
    """Vectors per GiB: the result's own `pages_per_gb` where it records one, else 2**30 // bytes."""
    own = getattr(result, "pages_per_gb", None)
    if own is not None:
        return int(own)
    return 2**30 // result.bytes_per_vector if result.bytes_per_vector > 0 else None


def index_of(result: Result) -> str:
    """``exact`` (no index in the variant: today's identity), or the faiss index's canonical spec."""
    return str(result.variant.get(INDEX_KEY, "exact"))


def base_variant(variant: str) -> str:
    """A variant label without its ``index=...`` entry (index specs hold no commas)."""
    return ",".join(part for part in variant.split(",") if part and not part.startswith(f"{INDEX_KEY}="))


def task_key(result: Result) -> TaskKey:
    return TaskKey(result.suite, result.task, result.split, result.language,
                   int(result.variant.get("corpus_size", 0)))


def model_variant(result: Result) -> str:
    """The result's variant label without the task-data keys (TASK_VARIANT_KEYS)."""
    return result.variant_label(exclude=TASK_VARIANT_KEYS)


def _newest(a: Result, b: Result) -> Result:
    return a if a.provenance.created_at >= b.provenance.created_at else b


def build_rows(results: Sequence[Result]) -> list[Row]:
    rank = _data_ranks(results)
    rows: dict[tuple, Row] = {}
    for r in results:
        tk = task_key(r)
        key = ModelKey(r.model, r.revision, model_variant(r), rank[_cell_key(r)][r.provenance.dataset_hash])
        row = rows.setdefault((key, r.precision, r.dim), Row(key, r.precision, r.dim))
        row.cells[tk] = _newest(row.cells[tk], r) if tk in row.cells else r
    _label_rows(rows)
    _flag_different_data(rows)
    return sorted(rows.values(), key=_row_order)


def _data_ranks(results: Sequence[Result]) -> dict[tuple, dict[str, int]]:
    """Same model/precision/dim/task on different data (possible when results come from several
    folders): rank the dataset hashes newest first; rank n > 0 goes to a separate "older data" row."""
    hashes: dict[tuple, dict[str, str]] = defaultdict(dict)
    for r in results:
        k = _cell_key(r)
        h = r.provenance.dataset_hash
        hashes[k][h] = max(hashes[k].get(h, ""), r.provenance.created_at)
    return {k: {h: i for i, h in enumerate(sorted(v, key=lambda h: (v[h], h), reverse=True))} for k, v in hashes.items()}


def _label_rows(rows: dict[tuple, Row]) -> None:
    """Model labels name the revision only where a model has rows at several."""
    revisions = _revisions(rows)
    for (key, _, _), row in rows.items():
        row.model_label = model_label(key, multi_revision=len(revisions[key.model]) > 1)
        row.label = f"{row.model_label} · {row.precision} · {row.dim}d"


def _revisions(rows: dict[tuple, Row]) -> dict[str, set[str]]:
    revisions = defaultdict(set)
    for key, _, _ in rows:
        revisions[key.model].add(key.revision)
    return revisions


def _flag_different_data(rows: dict[tuple, Row]) -> None:
    """Flag a task evaluated on different data within one model (same text on every row it touches)."""
    uses: dict[tuple, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for (key, prec, dim), row in sorted(rows.items(), key=lambda kv: _row_order(kv[1])):
        for tk, r in row.cells.items():
            uses[(key.model, key.revision, key.variant, tk)][r.provenance.dataset_hash[:12]].append(f"{prec} {dim}d")
    revisions = _revisions(rows)
    for (key, _, _), row in rows.items():
        base = model_label(ModelKey(key.model, key.revision, key.variant), len(revisions[key.model]) > 1)
        for tk in row.cells:
            used = uses[(key.model, key.revision, key.variant, tk)]
            if len(used) > 1:
                where = "; ".join(f"dataset {h}: {', '.join(v)}" for h, v in sorted(used.items()))
                row.flags.append(f"{base}: {tk.suite}/{tk.task} was evaluated on different data ({where}); "
                                 "results on different data are never compared, averaged into one cell or "
                                 "subtracted")


def _cell_key(r: Result) -> tuple:
    return (r.model, r.revision, model_variant(r), r.precision, r.dim, task_key(r))


def model_label(key: ModelKey, multi_revision: bool = True) -> str:
    label = key.model
    if multi_revision:
        label += f"@{key.revision[:10]}"
    if key.variant:
        label += f" [{key.variant}]"
    if key.data_tag:
        label += f" (older data #{key.data_tag})"
    return label


def _row_order(row: Row) -> tuple:
    return (row.key, PRECISION_ORDER.get(row.precision, 99), row.precision, -row.dim)
