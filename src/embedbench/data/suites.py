"""Suite definitions: YAML files in suites/, validated by pydantic models that forbid unknown keys."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from embedbench.errors import EmbedbenchError
from embedbench.metrics import K_VALUES, METRIC_FAMILIES


def task_metric_names(spec: "TaskSpec", *, answers: bool = True, generator: bool = True) -> list[str]:
    """The metrics a task's results carry (mteb's names: family_at_k, or a plain generation metric).

    The ranking families at every k, the task's extra families (`metrics:`), and with a generator
    the generation metrics. `answer_recall` and the generation metrics need answers in the data;
    the defaults give every name the task can produce in some run, for checking a suite file.
    """
    from embedbench.rag.metrics import METRIC_NAMES

    families = [*METRIC_FAMILIES, *(m for m in spec.metrics if answers or m != "answer_recall")]
    names = [f"{family}_at_{k}" for family in families for k in K_VALUES]
    return names + (list(METRIC_NAMES) if answers and generator else [])


def main_score_error(spec: "TaskSpec", valid: list[str]) -> str:
    close = difflib.get_close_matches(spec.main_score, valid, n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]}?)" if close else ""
    return (f"task {spec.name!r}: main_score {spec.main_score!r} is not a metric this task produces{hint}; "
            f"valid: {', '.join(valid)}")


class TaskSpec(BaseModel):
    """One retrieval task: where its data comes from and which metric ranks models."""

    model_config = ConfigDict(extra="forbid")

    name: str
    loader: str = Field(description="which data loader reads it (embedbench.data.tasks.LOADERS)")
    path: str | None = Field(None, description="for file loaders: a path, relative paths under the data dir")
    split: str = "test"
    language: str = "en"
    type: str = "Retrieval"
    main_score: str = "ndcg_at_10"
    metrics: list[str] = Field(default_factory=list,
                               description="extra metric families: comprehensiveness, answer_recall")
    options: dict[str, Any] = Field(default_factory=dict, description="loader-specific settings")
    description: str = ""

    def model_post_init(self, _context: object) -> None:
        from embedbench.data.tasks import EXTRA_METRICS, LOADERS

        if self.loader not in LOADERS:
            raise ValueError(f"unknown loader {self.loader!r} (known: {', '.join(sorted(LOADERS))})")
        unknown = sorted(set(self.metrics) - set(EXTRA_METRICS))
        if unknown:
            raise ValueError(f"unknown metrics {unknown} (known: {', '.join(EXTRA_METRICS)})")
        valid = task_metric_names(self)
        if self.main_score not in valid:
            raise ValueError(main_score_error(self, valid))
        if self.loader in ("beir", "squad", "trec") and not self.path:
            raise ValueError(f"task {self.name!r}: loader {self.loader!r} needs a path")


class Suite(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    description: str = ""
    tasks: list[TaskSpec]

    def model_post_init(self, _context: object) -> None:
        names = [t.name for t in self.tasks]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate task names: {', '.join(dupes)}")
        if not self.tasks:
            raise ValueError("a suite needs at least one task")


def suites_dir() -> Path:
    """The project's suites/ folder (next to src/ in a checkout), or ./suites."""
    here = Path(__file__).resolve().parents[2] / "suites"
    return here if here.is_dir() else Path.cwd() / "suites"


def available_suites() -> dict[str, Path]:
    return {p.stem: p for p in sorted(suites_dir().glob("*.yaml"))}


def load_suite(name_or_file: str) -> Suite:
    """A suite by name (suites/NAME.yaml) or by file path; errors name the file and the key."""
    path = Path(name_or_file)
    if not (path.suffix in (".yaml", ".yml") and path.exists()):
        known = available_suites()
        if name_or_file not in known:
            import difflib

            close = difflib.get_close_matches(name_or_file, list(known), n=3, cutoff=0.5)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise EmbedbenchError(f"unknown suite {name_or_file!r}{hint} (known: {', '.join(known)})")
        path = known[name_or_file]
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise EmbedbenchError(f"{path}{line}: malformed YAML ({getattr(exc, 'problem', exc)})") from None
    if not isinstance(raw, dict):
        raise EmbedbenchError(f"{path}: a suite file must be a mapping with name and tasks")
    try:
        suite = Suite.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        kind = "unknown key" if first["type"] == "extra_forbidden" else first["msg"].removeprefix("Value error, ")
        raise EmbedbenchError(f"{path}: {where}: {kind}") from None
    from embedbench.data.tasks import check_options

    for i, task in enumerate(suite.tasks):
        try:
            check_options(task)
        except EmbedbenchError as exc:
            raise EmbedbenchError(f"{path}: tasks.{i}: {exc}") from None
    return suite
