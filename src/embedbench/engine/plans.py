"""Running eval plans: check everything a plan names, then evaluate it (model x suite) run by run."""

from __future__ import annotations

from typing import Any

from embedbench.data.suites import load_suite
from embedbench.encoders.loading import check_model_ref
from embedbench.engine.runner import evaluate
from embedbench.plans import EvalPlan, plan_runs
from embedbench.results import Result


def check_plan(plan: EvalPlan) -> None:
    """What a plan names that can be checked before its first run: every suite (keys, main scores,
    task options) and every model reference, so a typo in its last suite or model stops the plan
    before the first model's results are encoded or written."""
    for suite in plan.suites:
        load_suite(suite)
    for model in plan.all_models():
        check_model_ref(model.name)


def evaluate_plan(plan: EvalPlan, *, limit_queries: int | None = None, **settings: Any) -> list[Result]:
    """Check the plan whole, then `evaluate` each of its runs; `limit_queries` overrides the plan's.

    `settings` are the other `evaluate` arguments (results_dir, device, dtype, index, ...) shared by every
    run; a setting given there (the command line passes only the flags given, e.g. `--engine`) overrides
    the plan's own.
    """
    check_plan(plan)
    results = []
    for run in plan_runs(plan):
        if limit_queries is not None:
            run["limit_queries"] = limit_queries
        results.extend(evaluate(**{**run, **settings}))
    return results
