"""What a suite task is: the TaskSpec model, the loaders' option schemas and the metrics a task produces.

This module sits below both users of a TaskSpec: `embedbench.data.suites` reads suite YAML into
TaskSpecs, and `embedbench.data.tasks` (with the loaders it names) turns a TaskSpec into data.
Neither imports the other.

Each loader's `options:` are described by a pydantic model in OPTIONS (names and types; the loader
checks the values). `check_options` runs when a suite file is read, before any data is loaded, so a
misspelt option stops the run before anything is downloaded, encoded or written.
"""

from __future__ import annotations

import difflib
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from embedbench.errors import EmbedbenchError
from embedbench.scoring.metrics import K_VALUES, METRIC_FAMILIES

# Metric families a task may add to the standard ones (see embedbench.scoring.task_metrics).
EXTRA_METRICS = ("comprehensiveness", "answer_recall")
FILE_LOADERS = ("beir", "squad", "trec")  # loaders that read `path` and take no options


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


# Every loader by name (embedbench.data.tasks.LOADERS says where its code is) and its options.
OPTIONS: dict[str, type[NoOptions]] = {
    **dict.fromkeys(FILE_LOADERS, NoOptions), "bfcl": NoOptions, "codebase-contextual": NoOptions,
    "mteb": MtebOptions, "toolret": ToolRetOptions, "conteb": ConTEBOptions, "kilt": KiltOptions,
    "xquad-r": XquadOptions, "synthetic-q2q": SyntheticOptions, "synthetic-q2d": SyntheticOptions,
}


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
        if self.loader not in OPTIONS:
            raise ValueError(f"unknown loader {self.loader!r} (known: {', '.join(sorted(OPTIONS))})")
        unknown = sorted(set(self.metrics) - set(EXTRA_METRICS))
        if unknown:
            raise ValueError(f"unknown metrics {unknown} (known: {', '.join(EXTRA_METRICS)})")
        valid = task_metric_names(self)
        if self.main_score not in valid:
            raise ValueError(main_score_error(self, valid))
        if self.loader in FILE_LOADERS and not self.path:
            raise ValueError(f"task {self.name!r}: loader {self.loader!r} needs a path")


def task_metric_names(spec: TaskSpec, *, answers: bool = True, generator: bool = True) -> list[str]:
    """The metrics a task's results carry (mteb's names: family_at_k, or a plain generation metric).

    The ranking families at every k, the task's extra families (`metrics:`), and with a generator
    the generation metrics. `answer_recall` and the generation metrics need answers in the data;
    the defaults give every name the task can produce in some run, for checking a suite file.
    """
    # Imported here: the rag package brings its generators along, and only this list is needed.
    from embedbench.rag.metrics import METRIC_NAMES

    families = [*METRIC_FAMILIES, *(m for m in spec.metrics if answers or m != "answer_recall")]
    names = [f"{family}_at_{k}" for family in families for k in K_VALUES]
    return names + (list(METRIC_NAMES) if answers and generator else [])


def main_score_error(spec: TaskSpec, valid: list[str]) -> str:
    close = difflib.get_close_matches(spec.main_score, valid, n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]}?)" if close else ""
    return (f"task {spec.name!r}: main_score {spec.main_score!r} is not a metric this task produces{hint}; "
            f"valid: {', '.join(valid)}")


def check_options(spec: TaskSpec) -> None:
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


def reject_unknown_options(spec: TaskSpec, label: str = "") -> None:
    """A loader's own check of option names, for a TaskSpec built in code (no suite file checked it);
    `label` names the loader in the error ("unknown ConTEB options [...]")."""
    known = list(OPTIONS[spec.loader].model_fields)
    unknown = sorted(set(spec.options) - set(known))
    if unknown:
        what = f"{label} options" if label else "options"
        raise EmbedbenchError(f"task {spec.name!r}: unknown {what} {unknown} (known: {', '.join(known)})")
