"""Suite definitions: YAML files in suites/, validated by pydantic models that forbid unknown keys."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from embedbench.errors import EmbedbenchError

# Metric names follow mteb's: family_at_k (ndcg_at_10, comprehensiveness_at_10, answer_recall_at_5), or a
# plain name for generation metrics (match, exact_match, f1).
_METRIC_NAME = re.compile(r"^[a-z][a-z0-9_]*?(_at_[0-9]+)?$")


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
        if not _METRIC_NAME.match(self.main_score):
            raise ValueError(f"main_score {self.main_score!r} is not a metric name like ndcg_at_10")
        unknown = sorted(set(self.metrics) - set(EXTRA_METRICS))
        if unknown:
            raise ValueError(f"unknown metrics {unknown} (known: {', '.join(EXTRA_METRICS)})")
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
        return Suite.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        kind = "unknown key" if first["type"] == "extra_forbidden" else first["msg"]
        raise EmbedbenchError(f"{path}: {where}: {kind}") from None
