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

Pairing
-------
Results pair on (suite, task, split, language, precision, dim, variant) -- the identity without
model and revision. Every variant setting the runner writes takes part (a ToolRet result with
``instruction=with`` pairs with ``instruction=with`` only, a ``context=late-chunking`` result with
``context=late-chunking``, a synthetic task's ``corpus_size=N`` with the same N, and so on for
``rescore_depth``, ``generator``, ``max_length``, ...), except ``limit_queries``, which is checked
separately with its own error. When both selectors pin ``precision``, ``dim`` or a ``variant.NAME``
to different values (``--baseline model=m,precision=fp32 --candidate model=m,precision=int8``), that
axis is what is being compared and leaves the pairing key too (with ``variant.NAME_revision``, the
revision of what NAME names, e.g. ``generator_revision`` when ``variant.generator`` is compared).
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from embedbench.errors import EmbedbenchError
from embedbench.gate.report import GateReport, GateSettings, Side, SuiteCheck, TaskComparison
from embedbench.gate.selectors import Selected, Selector, parse_selector, select
from embedbench.gate.stats import DEFAULT_RESAMPLES, DEFAULT_SEED, bootstrap_ci, holm, sign_flip_pvalue, task_rng
from embedbench.plans import EvalPlan, load_plan
from embedbench.results import load_per_query_file

MIN_RESAMPLES = 10_000
UNPAIRED_VARIANT_KEYS = frozenset({"limit_queries"})  # compared by _check_pair, with a clearer error
COMPARABLE_AXES = ("precision", "dim")
LEXICAL_PRECISION = "lexical"  # what the runner records for search-only models such as BM25

PairKey = tuple[object, ...]


@dataclass(frozen=True)
class _Pair:
    key: PairKey
    baseline: Selected
    candidate: Selected


def _free_axes(baseline: Selector, candidate: Selector) -> frozenset[str]:
    """Axes both selectors pin to different values: compared, not paired on."""
    free = set()
    for key in set(baseline.filters) & set(candidate.filters):
        comparable = key in COMPARABLE_AXES or key.startswith("variant.")
        if comparable and set(baseline.filters[key]) != set(candidate.filters[key]):
            free.update({key, f"{key}_revision"} if key.startswith("variant.") else {key})
    return frozenset(free)


def _pair_key(sel: Selected, free: frozenset[str]) -> PairKey:
    r = sel.result
    variant = tuple(sorted(
        (k, str(v)) for k, v in r.variant.items()
        if k not in UNPAIRED_VARIANT_KEYS and f"variant.{k}" not in free
    ))
    return (
        r.suite, r.task, r.split, r.language,
        None if "precision" in free else r.precision,
        None if "dim" in free else r.dim,
        variant,
    )


def _describe(key: PairKey) -> str:
    suite, task, split, language, precision, dim, variant = key
    parts = [str(split), str(language)]
    if precision is not None:
        parts.append(str(precision))
    if dim is not None:
        parts.append(f"dim {dim}")
    parts += [f"{k}={v}" for k, v in variant]  # type: ignore[union-attr]
    return f"{suite}/{task} ({', '.join(parts)})"


def _who(sel: Selected) -> str:
    r = sel.result
    extra = f", {r.variant_label()}" if r.variant else ""
    return f"{r.model}@{r.revision[:12]} [{sel.path}{extra}]"


def _listing(items: list[str], limit: int = 4) -> str:
    shown = "; ".join(items[:limit])
    return shown + (f"; ... ({len(items)} in all)" if len(items) > limit else "")


def _group(side: str, selected: list[Selected], free: frozenset[str]) -> dict[PairKey, Selected]:
    groups: dict[PairKey, list[Selected]] = defaultdict(list)
    for sel in selected:
        groups[_pair_key(sel, free)].append(sel)
    for key, members in sorted(groups.items(), key=lambda kv: repr(kv[0])):
        if len(members) > 1:
            raise EmbedbenchError(
                f"ambiguous {side}: {len(members)} results for {_describe(key)}: "
                f"{_listing([_who(m) for m in members], 3)}; narrow the selector (e.g. model=, revision=, "
                "variant.limit_queries=)"
            )
    return {key: members[0] for key, members in groups.items()}


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


def _read_scores(sel: Selected, metric: str, label: str, side: str) -> dict[str, float]:
    path = sel.per_query_path
    if not path.exists():
        raise EmbedbenchError(f"{path}: per-query scores are missing ({side} {label})")
    try:
        per_query = load_per_query_file(path)
    except (OSError, UnicodeDecodeError, ValueError, EOFError) as exc:
        raise EmbedbenchError(f"{path}: unreadable per-query scores ({exc})") from None
    if sel.result.metrics.get(metric, 0.0) is None:
        raise EmbedbenchError(f"{side} {label}: {metric} is not measured (past its rescoring depth "
                              f"{sel.result.variant.get('rescore_depth')}); gate on a metric within the depth (--metric)")
    if not isinstance(per_query, dict) or metric not in per_query or not isinstance(per_query[metric], dict):
        available = ", ".join(sorted(per_query)) if isinstance(per_query, dict) else "none"
        raise EmbedbenchError(f"{path}: no per-query {metric!r} scores ({side} {label}; available: {available})")
    scores = per_query[metric]
    bad = [q for q, v in scores.items() if not isinstance(v, (int, float)) or not math.isfinite(v)]
    if bad:
        raise EmbedbenchError(f"{path}: {metric} of query {bad[0]!r} is not a finite number")
    return {str(q): float(v) for q, v in scores.items()}


def _check_pair(pair: _Pair, metric_override: str | None) -> str:
    """Provenance and completeness checks; returns the metric to gate on."""
    b, c = pair.baseline.result, pair.candidate.result
    label = _describe(pair.key)
    if b.provenance.dataset_hash != c.provenance.dataset_hash:
        raise EmbedbenchError(
            f"different data for {label}: baseline dataset_hash {b.provenance.dataset_hash[:16]} vs candidate "
            f"{c.provenance.dataset_hash[:16]}; re-run both on the same data"
        )
    lb, lc = b.variant.get("limit_queries"), c.variant.get("limit_queries")
    if lb != lc:
        def run(x: object) -> str:
            return "all queries" if x is None else f"limit_queries={x}"
        raise EmbedbenchError(
            f"partial vs full run for {label}: baseline on {run(lb)}, candidate on {run(lc)}; compare like with like"
        )
    if b.n_queries != c.n_queries:
        raise EmbedbenchError(
            f"partial vs full run for {label}: baseline has {b.n_queries} queries, candidate {c.n_queries}"
        )
    if metric_override:
        return metric_override
    if b.main_score_name != c.main_score_name:
        raise EmbedbenchError(
            f"different main scores for {label}: baseline {b.main_score_name}, candidate {c.main_score_name}; "
            "pick one with --metric or the plan's gate.main_metric"
        )
    return b.main_score_name


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
    if not 0.0 < settings.alpha < 1.0:
        raise EmbedbenchError(f"--alpha must be between 0 and 1, got {settings.alpha:g}")
    if settings.max_task_drop < 0:
        raise EmbedbenchError(f"--max-drop must not be negative, got {settings.max_task_drop:g}")
    if settings.max_suite_drop is not None and settings.max_suite_drop < 0:
        raise EmbedbenchError(f"--max-suite-drop must not be negative, got {settings.max_suite_drop:g}")
    if settings.min_queries < 1:
        raise EmbedbenchError(f"--min-queries must be at least 1, got {settings.min_queries}")
    if resamples < MIN_RESAMPLES:
        raise EmbedbenchError(f"resamples must be at least {MIN_RESAMPLES:,}, got {resamples:,}")

    results_dir = Path(results_dir)
    b_sel, c_sel = parse_selector(baseline), parse_selector(candidate)
    b_all = select(b_sel, results_dir, "baseline", exclude=tuple(d for d in [c_sel.directory] if d))
    c_all = select(c_sel, results_dir, "candidate", exclude=tuple(d for d in [b_sel.directory] if d))
    warnings: list[str] = []
    same = {s.path.resolve() for s in b_all} & {s.path.resolve() for s in c_all}
    if same:
        raise EmbedbenchError(
            f"baseline and candidate select the same result file(s), e.g. {sorted(same)[0]}; make the selectors disjoint"
        )
    if plan_obj is not None:
        b_in = [s for s in b_all if _in_plan(s, plan_obj)]
        c_in = [s for s in c_all if _in_plan(s, plan_obj)]
        for side, before, after in (("baseline", b_all, b_in), ("candidate", c_all, c_in)):
            if not after:
                raise EmbedbenchError(
                    f"{side}: none of its {len(before)} results is in plan {plan_obj.name!r} "
                    f"(suites {', '.join(plan_obj.suites)}; precisions {', '.join(plan_obj.precisions)})"
                )
            if len(after) < len(before):
                warnings.append(f"{len(before) - len(after)} {side} result(s) outside plan {plan_obj.name!r} left out")
        b_all, c_all = b_in, c_in

    free = _free_axes(b_sel, c_sel)
    b_map, c_map = _group("baseline", b_all, free), _group("candidate", c_all, free)
    missing_c = sorted(_describe(k) for k in b_map.keys() - c_map.keys())
    missing_b = sorted(_describe(k) for k in c_map.keys() - b_map.keys())
    if missing_c or missing_b:
        parts = []
        if missing_c:
            parts.append(f"candidate lacks {len(missing_c)} baseline task(s): {_listing(missing_c)}")
        if missing_b:
            parts.append(f"baseline lacks {len(missing_b)} candidate task(s): {_listing(missing_b)}")
        raise EmbedbenchError("mismatched task sets: " + "; ".join(parts))
    pairs = [_Pair(k, b_map[k], c_map[k]) for k in sorted(b_map, key=repr)]

    rows: list[dict] = []
    for pair in pairs:  # all checks before any statistics, so bad input fails fast
        metric_name = _check_pair(pair, settings.metric)
        label = _describe(pair.key)
        bs = _read_scores(pair.baseline, metric_name, label, "baseline")
        cs = _read_scores(pair.candidate, metric_name, label, "candidate")
        if bs.keys() != cs.keys():
            only_b, only_c = sorted(bs.keys() - cs.keys()), sorted(cs.keys() - bs.keys())
            raise EmbedbenchError(
                f"different query ids for {label}: {len(only_b)} only in baseline (e.g. {only_b[:3]}), "
                f"{len(only_c)} only in candidate (e.g. {only_c[:3]})"
            )
        if not bs:
            raise EmbedbenchError(f"no per-query {metric_name} scores for {label}")
        rows.append({"pair": pair, "metric": metric_name, "b": bs, "c": cs})

    # Monte Carlo p-values are at least 1/(B+1), so Holm's smallest adjusted p is m/(B+1): with many
    # tasks, raise B until that floor is at most alpha/20 (else a large gate could never fail).
    m = sum(1 for row in rows if len(row["b"]) >= settings.min_queries)
    flips = max(resamples, math.ceil(20 * m / settings.alpha))
    settings.resamples = flips
    comparisons: list[TaskComparison] = []
    for row in rows:
        pair: _Pair = row["pair"]
        b, c = pair.baseline.result, pair.candidate.result
        qids = sorted(row["b"])
        bv = np.array([row["b"][q] for q in qids])
        cv = np.array([row["c"][q] for q in qids])
        d = cv - bv
        label = _describe(pair.key) + f" [{row['metric']}]"
        rng = task_rng(seed, label)
        p = sign_flip_pvalue(d, flips, rng)
        low, high = bootstrap_ci(d, resamples, rng)
        for side, res, mean in (("baseline", b, bv.mean()), ("candidate", c, cv.mean())):
            if row["metric"] == res.main_score_name and abs(res.main_score - mean) > 1e-6:
                warnings.append(f"{_describe(pair.key)}: {side} main_score {res.main_score:.6f} differs from the "
                                f"mean of its per-query scores {mean:.6f}; the gate uses the per-query scores")
        comparisons.append(TaskComparison(
            suite=b.suite, task=b.task, split=b.split, language=b.language,
            baseline_precision=b.precision, candidate_precision=c.precision,
            baseline_dim=b.dim, candidate_dim=c.dim,
            variant=",".join(f"{k}={v}" for k, v in pair.key[6]),  # type: ignore[union-attr]
            metric=row["metric"], n_queries=len(qids),
            baseline=float(bv.mean()), candidate=float(cv.mean()), delta=float(d.mean()),
            ci_low=low, ci_high=high, p_value=p, p_holm=None,
            verdict="inconclusive" if len(qids) < settings.min_queries else "pass", reason="",
        ))
    return _decide(comparisons, settings, b_sel, c_sel, b_all, c_all, warnings)


def _decide(
    comparisons: list[TaskComparison], s: GateSettings, b_sel: Selector, c_sel: Selector,
    b_all: list[Selected], c_all: list[Selected], warnings: list[str],
) -> GateReport:
    tested = [t for t in comparisons if t.verdict != "inconclusive"]
    for t, adjusted in zip(tested, holm([t.p_value for t in tested])):
        t.p_holm = adjusted
    failures: list[str] = []
    for t in comparisons:
        if t.verdict == "inconclusive":
            t.reason = f"only {t.n_queries} queries (< min_queries {s.min_queries}): not gated"
            warnings.append(f"{t.label()}: inconclusive, {t.reason}")
            continue
        significant = t.p_holm is not None and t.p_holm < s.alpha
        if t.drop > s.max_task_drop and significant:
            t.verdict = "fail"
            t.reason = f"drop {t.drop:.4f} > {s.max_task_drop:g} and Holm p {t.p_holm:.4g} < {s.alpha:g}"
            failures.append(f"{t.label()}: {t.metric} {t.reason}")
        elif t.drop > s.max_task_drop:
            t.reason = f"drop {t.drop:.4f} > {s.max_task_drop:g} but not significant (Holm p {t.p_holm:.4g})"
            warnings.append(f"{t.label()}: {t.reason}; not a failure")
        elif significant and t.drop > 0:
            t.reason = f"significant drop {t.drop:.4f} within the allowed {s.max_task_drop:g}"
        else:
            t.reason = "within the allowed drop"
    if comparisons and not tested:
        warnings.append("every task is inconclusive (too few queries): the gate checked nothing")

    suites: list[SuiteCheck] = []
    if s.max_suite_drop is not None:
        groups: dict[tuple[str, str], list[TaskComparison]] = defaultdict(list)
        for t in tested:
            groups[(t.suite, t.setting())].append(t)
        for (suite, config), members in sorted(groups.items()):
            mean_drop = float(np.mean([t.drop for t in members]))
            significant = any(t.p_holm is not None and t.p_holm < s.alpha and t.drop > 0 for t in members)
            verdict = "fail" if mean_drop > s.max_suite_drop and significant else "pass"
            suites.append(SuiteCheck(suite=suite, config=config, tasks=[t.task for t in members],
                                     mean_drop=mean_drop, max_suite_drop=s.max_suite_drop,
                                     significant=significant, verdict=verdict))
            if verdict == "fail":
                failures.append(f"suite {suite} ({config}): mean task drop {mean_drop:.4f} > {s.max_suite_drop:g} "
                                "with a significant task drop")
    failed = bool(failures)
    return GateReport(
        verdict="FAIL" if failed else "PASS",
        exit_code=1 if failed else 0,
        baseline=_side(b_sel, b_all), candidate=_side(c_sel, c_all),
        settings=s, tasks=comparisons, suites=suites, failures=failures, warnings=warnings,
    )


def _side(selector: Selector, selected: list[Selected]) -> Side:
    models = sorted({f"{s.result.model}@{s.result.revision}" for s in selected})
    return Side(selector=selector.text, models=models, n_results=len(selected))
