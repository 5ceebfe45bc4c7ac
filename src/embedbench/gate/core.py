"""Pair baseline and candidate results, test each task, and decide (reads results only, runs no model).

Statistical procedure
---------------------
For each paired task the gate takes the per-query scores of the gated metric (each task's main
score unless a plan or ``--metric`` overrides it) on the identical query set and forms
d_q = candidate_q - baseline_q.

1. p-value: one-sided paired sign-flip randomization test of H0 "the two scores of a query are
   exchangeable" against "candidate worse" (statistic: sum of d; 10,000 seeded random sign
   assignments -- more for large gates, see 3 -- or all 2**k assignments when
   the k non-zero differences allow no more than `resamples` of them: exact).
2. Interval: 95% percentile bootstrap CI of mean(d) (queries resampled with replacement, seeded).
3. Multiplicity: Holm step-down adjustment over the conclusive tasks of the gate (a task with
   fewer than ``min_queries`` queries is inconclusive: reported with a warning, never tested,
   never a failure, and not part of the Holm family). With m tested tasks the sign-flip resamples
   are raised to at least 20 * m / alpha, so the smallest attainable Holm p, m / (B + 1), stays
   below alpha / 20 (otherwise a gate over hundreds of tasks could never fail).
4. A task FAILS when its mean drop (baseline - candidate) > ``max_task_drop`` AND its Holm-adjusted
   p < ``alpha``: the drop must be both large enough to matter and unlikely to be noise.
5. Suite rule (only when ``max_suite_drop`` is set): for each suite at each (precision, dim,
   variant), the mean of its conclusive tasks' drops > ``max_suite_drop`` AND at least one of those
   tasks has a significant drop (Holm p < alpha and drop > 0) -> the suite FAILS.

Pairing (which baseline result is compared with which candidate result) is ``embedbench.gate.pairing``.
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path

import numpy as np

from embedbench.errors import EmbedbenchError
from embedbench.gate.pairing import PairScores, pair_results, read_pair_scores
from embedbench.gate.report import GateReport, GateSettings, Side, SuiteCheck, TaskComparison
from embedbench.gate.selectors import Selected, Selector, parse_selector, select
from embedbench.gate.stats import DEFAULT_RESAMPLES, DEFAULT_SEED, bootstrap_ci, holm, sign_flip_pvalue, task_rng
from embedbench.plans import EvalPlan, load_plan

MIN_RESAMPLES = 10_000
LEXICAL_PRECISION = "lexical"  # what the runner records for search-only models such as BM25


def run_gate(
    baseline: str,
    candidate: str,
    *,
    plan: EvalPlan | str | Path | None = None,
    results_dir: str | Path = "results",
    max_drop: float | None = None,
    alpha: float | None = None,
    min_queries: int | None = None,
    max_suite_drop: float | None = None,
    metric: str | None = None,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
) -> GateReport:
    """Compare the candidate's results with the baseline's; see the module docstring for the procedure.

    Arguments left None take the plan's `gate:` values (or the defaults 0.01 / 0.05 / 30 without a
    plan). Bad input (selectors, missing or unpairable results) raises EmbedbenchError; a regression
    is a report with verdict FAIL and exit_code 1.
    """
    plan_obj = load_plan(plan) if isinstance(plan, (str, Path)) else plan
    settings = gate_settings(plan, plan_obj, metric=metric, max_drop=max_drop, max_suite_drop=max_suite_drop,
                             alpha=alpha, min_queries=min_queries, resamples=resamples, seed=seed)
    b_sel, c_sel = parse_selector(baseline), parse_selector(candidate)
    b_all, c_all, warnings = select_sides(b_sel, c_sel, Path(results_dir), plan_obj)
    pairs = pair_results(b_sel, c_sel, b_all, c_all)
    scored = [read_pair_scores(pair, settings.metric) for pair in pairs]  # all checks before any statistics
    settings.resamples = sign_flip_resamples(scored, settings)
    comparisons = [compare_pair(s, settings, warnings) for s in scored]
    tested = judge_tasks(comparisons, settings, warnings)
    suites = check_suites(tested, settings)
    failures = [f"{t.label()}: {t.metric} {t.reason}" for t in comparisons if t.verdict == "fail"]
    failures += [f"suite {c.suite} ({c.config}): mean task drop {c.mean_drop:.4f} > {c.max_suite_drop:g} "
                 "with a significant task drop" for c in suites if c.verdict == "fail"]
    return GateReport(
        verdict="FAIL" if failures else "PASS", exit_code=1 if failures else 0,
        baseline=_side(b_sel, b_all), candidate=_side(c_sel, c_all),
        settings=settings, tasks=comparisons, suites=suites, failures=failures, warnings=warnings,
    )


def gate_settings(plan: EvalPlan | str | Path | None, plan_obj: EvalPlan | None, *, metric: str | None,
                  max_drop: float | None, max_suite_drop: float | None, alpha: float | None,
                  min_queries: int | None, resamples: int, seed: int) -> GateSettings:
    """The thresholds in force: each argument given, else the plan's `gate:` value, else the default."""
    cfg = plan_obj.gate if plan_obj is not None else None
    settings = GateSettings(
        plan=(str(plan) if isinstance(plan, (str, Path)) else plan_obj.name) if plan_obj is not None else None,
        metric=metric if metric is not None else (cfg.main_metric if cfg else None),
        max_task_drop=max_drop if max_drop is not None else (cfg.max_task_drop if cfg else 0.01),
        max_suite_drop=max_suite_drop if max_suite_drop is not None else (cfg.max_suite_drop if cfg else None),
        alpha=alpha if alpha is not None else (cfg.alpha if cfg else 0.05),
        min_queries=min_queries if min_queries is not None else (cfg.min_queries if cfg else 30),
        resamples=resamples,
        bootstrap_resamples=resamples,
        seed=seed,
    )
    _check_settings(settings)
    return settings


def _check_settings(s: GateSettings) -> None:
    if not 0.0 < s.alpha < 1.0:
        raise EmbedbenchError(f"--alpha must be between 0 and 1, got {s.alpha:g}")
    if s.max_task_drop < 0:
        raise EmbedbenchError(f"--max-drop must not be negative, got {s.max_task_drop:g}")
    if s.max_suite_drop is not None and s.max_suite_drop < 0:
        raise EmbedbenchError(f"--max-suite-drop must not be negative, got {s.max_suite_drop:g}")
    if s.min_queries < 1:
        raise EmbedbenchError(f"--min-queries must be at least 1, got {s.min_queries}")
    if s.resamples < MIN_RESAMPLES:
        raise EmbedbenchError(f"resamples must be at least {MIN_RESAMPLES:,}, got {s.resamples:,}")


def select_sides(b_sel: Selector, c_sel: Selector, results_dir: Path,
                 plan: EvalPlan | None) -> tuple[list[Selected], list[Selected], list[str]]:
    """(baseline results, candidate results, warnings): disjoint, and inside the plan when there is one."""
    b_all = select(b_sel, results_dir, "baseline", exclude=tuple(d for d in [c_sel.directory] if d))
    c_all = select(c_sel, results_dir, "candidate", exclude=tuple(d for d in [b_sel.directory] if d))
    same = {s.path.resolve() for s in b_all} & {s.path.resolve() for s in c_all}
    if same:
        raise EmbedbenchError(
            f"baseline and candidate select the same result file(s), e.g. {sorted(same)[0]}; make the selectors disjoint"
        )
    warnings: list[str] = []
    if plan is not None:
        b_all = _keep_in_plan("baseline", b_all, plan, warnings)
        c_all = _keep_in_plan("candidate", c_all, plan, warnings)
    return b_all, c_all, warnings


def _keep_in_plan(side: str, selected: list[Selected], plan: EvalPlan, warnings: list[str]) -> list[Selected]:
    kept = [s for s in selected if _in_plan(s, plan)]
    if not kept:
        raise EmbedbenchError(
            f"{side}: none of its {len(selected)} results is in plan {plan.name!r} "
            f"(suites {', '.join(plan.suites)}; precisions {', '.join(plan.precisions)})"
        )
    if len(kept) < len(selected):
        warnings.append(f"{len(selected) - len(kept)} {side} result(s) outside plan {plan.name!r} left out")
    return kept


def _in_plan(sel: Selected, plan: EvalPlan) -> bool:
    r = sel.result
    suites = set(plan.suites) | {Path(s).stem for s in plan.suites}
    if r.suite not in suites:
        return False
    if r.precision not in plan.precisions and r.precision != LEXICAL_PRECISION:
        return False
    dims = [plan.dims_for(m) for m in plan.all_models()]
    if all(d is not None for d in dims) and r.dim not in {x for d in dims for x in d} and r.dim != 0:  # type: ignore[union-attr]
        return False
    return True


def sign_flip_resamples(scored: list[PairScores], s: GateSettings) -> int:
    """The requested sign-flip resamples B, raised for large gates. Monte Carlo p-values are at least
    1/(B+1), so Holm's smallest adjusted p is m/(B+1): with m tested tasks, raise B until that floor is
    at most alpha/20 (else a large gate could never fail)."""
    m = sum(1 for x in scored if len(x.baseline) >= s.min_queries)
    return max(s.resamples, math.ceil(20 * m / s.alpha))


def compare_pair(scored: PairScores, s: GateSettings, warnings: list[str]) -> TaskComparison:
    """One task's paired test: mean difference, its bootstrap CI and the sign-flip p-value (not yet judged)."""
    pair, b, c = scored.pair, scored.pair.baseline.result, scored.pair.candidate.result
    qids = sorted(scored.baseline)
    bv = np.array([scored.baseline[q] for q in qids])
    cv = np.array([scored.candidate[q] for q in qids])
    d = cv - bv
    rng = task_rng(s.seed, f"{pair.label} [{scored.metric}]")
    p = sign_flip_pvalue(d, s.resamples, rng)
    low, high = bootstrap_ci(d, s.bootstrap_resamples, rng)
    for side, res, mean in (("baseline", b, bv.mean()), ("candidate", c, cv.mean())):
        if scored.metric == res.main_score_name and abs(res.main_score - mean) > 1e-6:
            warnings.append(f"{pair.label}: {side} main_score {res.main_score:.6f} differs from the "
                            f"mean of its per-query scores {mean:.6f}; the gate uses the per-query scores")
    return TaskComparison(
        suite=b.suite, task=b.task, split=b.split, language=b.language,
        baseline_precision=b.precision, candidate_precision=c.precision,
        baseline_dim=b.dim, candidate_dim=c.dim,
        variant=",".join(f"{k}={v}" for k, v in pair.key[6]),  # type: ignore[union-attr]
        metric=scored.metric, n_queries=len(qids),
        baseline=float(bv.mean()), candidate=float(cv.mean()), delta=float(d.mean()),
        ci_low=low, ci_high=high, p_value=p, p_holm=None,
        verdict="inconclusive" if len(qids) < s.min_queries else "pass", reason="",
    )


def judge_tasks(comparisons: list[TaskComparison], s: GateSettings, warnings: list[str]) -> list[TaskComparison]:
    """Holm-adjust the conclusive tasks' p-values and give every task its verdict and reason; returns
    the tested (conclusive) tasks."""
    tested = [t for t in comparisons if t.verdict != "inconclusive"]
    for t, adjusted in zip(tested, holm([t.p_value for t in tested])):
        t.p_holm = adjusted
    for t in comparisons:
        _judge_task(t, s, warnings)
    if comparisons and not tested:
        warnings.append("every task is inconclusive (too few queries): the gate checked nothing")
    return tested


def _judge_task(t: TaskComparison, s: GateSettings, warnings: list[str]) -> None:
    if t.verdict == "inconclusive":
        t.reason = f"only {t.n_queries} queries (< min_queries {s.min_queries}): not gated"
        warnings.append(f"{t.label()}: inconclusive, {t.reason}")
        return
    significant = t.p_holm is not None and t.p_holm < s.alpha
    if t.drop > s.max_task_drop and significant:
        t.verdict = "fail"
        t.reason = f"drop {t.drop:.4f} > {s.max_task_drop:g} and Holm p {t.p_holm:.4g} < {s.alpha:g}"
    elif t.drop > s.max_task_drop:
        t.reason = f"drop {t.drop:.4f} > {s.max_task_drop:g} but not significant (Holm p {t.p_holm:.4g})"
        warnings.append(f"{t.label()}: {t.reason}; not a failure")
    elif significant and t.drop > 0:
        t.reason = f"significant drop {t.drop:.4f} within the allowed {s.max_task_drop:g}"
    else:
        t.reason = "within the allowed drop"


def check_suites(tested: list[TaskComparison], s: GateSettings) -> list[SuiteCheck]:
    """The suite rule, when max_suite_drop is set: per suite and setting, the mean drop of its tested
    tasks over the allowed drop, with at least one significant task drop, fails the suite."""
    if s.max_suite_drop is None:
        return []
    groups: dict[tuple[str, str], list[TaskComparison]] = defaultdict(list)
    for t in tested:
        groups[(t.suite, t.setting())].append(t)
    checks = []
    for (suite, config), members in sorted(groups.items()):
        mean_drop = float(np.mean([t.drop for t in members]))
        significant = any(t.p_holm is not None and t.p_holm < s.alpha and t.drop > 0 for t in members)
        checks.append(SuiteCheck(suite=suite, config=config, tasks=[t.task for t in members],
                                 mean_drop=mean_drop, max_suite_drop=s.max_suite_drop, significant=significant,
                                 verdict="fail" if mean_drop > s.max_suite_drop and significant else "pass"))
    return checks


def _side(selector: Selector, selected: list[Selected]) -> Side:
    models = sorted({f"{s.result.model}@{s.result.revision}" for s in selected})
    return Side(selector=selector.text, models=models, n_results=len(selected))
