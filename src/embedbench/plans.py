"""Eval plans (evals/*.yaml): which models, suites, precisions and dims to run, and the gate's thresholds.

The project's evals/ folder ships inside the package as ``embedbench/evals`` (package data), so a plan
is found by name after ``pip install .`` too; ./evals/NAME.yaml in the working folder comes first.

A plan is validated by pydantic models that forbid unknown keys; every error is one line naming
the file and the key (or the file and line for malformed YAML). `plan_runs(plan)` expands a plan
into `embedbench.evaluate(...)` keyword arguments, one per (model, suite). This module is schema and
YAML only: the gate reads plans, so nothing here reaches the engine, encoders or data (what a plan
names, its suites and models, is checked by `embedbench.engine.plans.check_plan`).

    name: quantization-tradeoff
    models:                      # strings, or {name, dims} where a model needs its own MRL dims
      - minilm-l6
      - {name: pplx-embed-v1-0.6b, dims: [1024, 512, 256, 128]}
    baselines: [bm25]            # optional: evaluated too, listed apart for reports and gates
    suites: [default]
    precisions: [fp32, int8, binary]
    dims: [384, 128]             # optional: for models without their own dims (null: full size)
    limit_queries: null          # optional: a seeded sample of N queries per task
    engine: local                # optional: local | ray (`--engine` overrides it)
    gate: {max_task_drop: 0.01, max_suite_drop: 0.005, alpha: 0.05, min_queries: 30}
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from embedbench.errors import EmbedbenchError
from embedbench.scoring.precision import VALID_PRECISIONS, check_dims, parse_precisions


def _check_precision(spec: str) -> str:
    try:
        parse_precisions(spec)
    except EmbedbenchError:
        raise ValueError(f"unknown precision {spec!r} (known: {', '.join(VALID_PRECISIONS)})") from None
    return spec


def _check_dims(dims: list[int] | None) -> list[int] | None:
    """A plan's dims: null (the model's full size) or a non-empty list without repeats."""
    if dims is None:
        return None
    if not dims:
        raise ValueError("dims must not be empty (use null for the model's full size)")
    try:
        distinct = check_dims(dims)  # the rule `evaluate` applies too
    except EmbedbenchError as exc:  # pydantic reports ValueErrors with the key they belong to
        raise ValueError(str(exc)) from None
    if len(distinct) != len(dims):
        raise ValueError("dims must not repeat")
    return dims


def _split_csv(value: Any) -> Any:
    """Allow `precisions: fp32,int8` as well as a YAML list."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class ModelRef(BaseModel):
    """A model to evaluate: a preset or plugin name, or a local folder; optionally its own MRL dims."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    dims: list[int] | None = Field(None, description="MRL dims for this model (overrides the plan's dims)")

    @field_validator("dims")
    @classmethod
    def _dims(cls, value: list[int] | None) -> list[int] | None:
        return _check_dims(value)


class GateConfig(BaseModel):
    """Thresholds `embedbench gate --eval PLAN` applies (command-line flags override them)."""

    model_config = ConfigDict(extra="forbid")

    main_metric: str | None = Field(None, description="metric to gate on (default: each task's main score)")
    max_task_drop: float = Field(0.01, ge=0, description="allowed absolute drop of a task's score")
    max_suite_drop: float | None = Field(None, ge=0, description="allowed drop of a suite's task average")
    alpha: float = Field(0.05, gt=0, lt=1, description="family-wise error rate (Holm over the gate's tasks)")
    min_queries: int = Field(30, ge=1, description="tasks with fewer queries are inconclusive, never failures")


def _model_refs(value: Any) -> Any:
    if isinstance(value, list):
        return [{"name": v} if isinstance(v, str) else v for v in value]
    return value


class EvalPlan(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    description: str = ""
    models: list[ModelRef] = Field(min_length=1, description="the models under evaluation")
    baselines: list[ModelRef] = Field(default_factory=list, description="models evaluated to compare against")
    suites: list[str] = Field(default_factory=lambda: ["default"], min_length=1)
    precisions: list[str] = Field(default_factory=lambda: ["fp32"], min_length=1)
    dims: list[int] | None = None
    limit_queries: int | None = Field(None, ge=1)
    engine: Literal["local", "ray"] = Field("local", description="where it runs (`--engine` overrides it)")
    indexes: list[str] = Field(default_factory=lambda: ["exact"], min_length=1,
                               description="search index specs (`--index`): exact and faiss indexes")
    corpus_sizes: dict[str, list[int]] = Field(default_factory=dict,
                                               description="per suite: its synthetic tasks' corpus sizes (`--corpus-size`)")
    gate: GateConfig = Field(default_factory=GateConfig)

    @field_validator("models", "baselines", mode="before")
    @classmethod
    def _models(cls, value: Any) -> Any:
        return _model_refs(value)

    @field_validator("precisions", "suites", "indexes", mode="before")
    @classmethod
    def _csv(cls, value: Any) -> Any:
        return _split_csv(value)

    @field_validator("indexes")
    @classmethod
    def _indexes(cls, value: list[str]) -> list[str]:
        from embedbench.scoring.index import parse_index_specs

        try:
            parse_index_specs(value)
        except EmbedbenchError as exc:
            raise ValueError(str(exc)) from None
        return value

    @field_validator("precisions")
    @classmethod
    def _precisions(cls, value: list[str]) -> list[str]:
        for spec in value:
            _check_precision(spec)
        if len(set(value)) != len(value):
            raise ValueError("precisions must not repeat")
        return value

    @field_validator("dims")
    @classmethod
    def _global_dims(cls, value: list[int] | None) -> list[int] | None:
        return _check_dims(value)

    @model_validator(mode="after")
    def _unique_models(self) -> EvalPlan:
        names = [m.name for m in [*self.models, *self.baselines]]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"models listed twice: {', '.join(dupes)}")
        if len(set(self.suites)) != len(self.suites):
            raise ValueError("suites must not repeat")
        return self

    def all_models(self) -> list[ModelRef]:
        """Models under evaluation first, then baselines."""
        return [*self.models, *self.baselines]

    def dims_for(self, model: ModelRef) -> list[int] | None:
        return model.dims if model.dims is not None else self.dims


def evals_dir() -> Path:
    """The shipped plans: the package's data folder (the checkout's evals/ in an editable install)."""
    return Path(str(resources.files("embedbench") / "evals")).resolve()


def available_plans() -> dict[str, Path]:
    """Plan files by name: the shipped ones, then ./evals/*.yaml, which win on a shared name."""
    found = {p.stem: p for folder in (evals_dir(), Path.cwd() / "evals") for p in sorted(folder.glob("*.yaml"))}
    return dict(sorted(found.items()))


def _resolve(name_or_file: str | Path) -> Path:
    path = Path(name_or_file)
    if path.exists():
        if not path.is_file():
            raise EmbedbenchError(f"{path}: not a plan file")
        return path
    known = available_plans()
    if str(name_or_file) in known:
        return known[str(name_or_file)]
    import difflib

    close = difflib.get_close_matches(path.stem, list(known), n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise EmbedbenchError(f"{path}: no such eval plan{hint} (known: {', '.join(known) or 'none'})")


def load_plan(path: str | Path) -> EvalPlan:
    """Read and validate a plan file (or a plan name under evals/); errors are one line naming file and key."""
    path = _resolve(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise EmbedbenchError(f"{path}{line}: malformed YAML ({problem})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise EmbedbenchError(f"{path}: cannot read plan ({exc})") from None
    if not isinstance(raw, dict):
        raise EmbedbenchError(f"{path}: a plan file must be a mapping with name, models, suites and precisions")
    try:
        return EvalPlan.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        if first["type"] == "extra_forbidden":
            kind = "unknown key"
        elif first["type"] == "missing":
            kind = "required key is missing"
        else:
            kind = first["msg"].removeprefix("Value error, ")
        raise EmbedbenchError(f"{path}: {where}: {kind}") from None


def plan_runs(plan: EvalPlan) -> list[dict[str, Any]]:
    """`embedbench.evaluate(**kwargs)` arguments, one per (model, suite): models first, then baselines."""
    return [
        {
            "model": model.name,
            "suite": suite,
            "precisions": list(plan.precisions),
            "dims": list(dims) if (dims := plan.dims_for(model)) is not None else None,
            "limit_queries": plan.limit_queries,
            "engine": plan.engine,
            "index": list(plan.indexes),
            "corpus_sizes": plan.corpus_sizes.get(suite),
        }
        for model in plan.all_models()
        for suite in plan.suites
    ]
