"""Pairing a gate's baseline and candidate results, checking each pair, and reading its per-query scores.

Results pair on (suite, task, split, language, precision, dim, variant) -- the identity without
model and revision. Every variant setting the runner writes takes part (a ToolRet result with
``instruction=with`` pairs with ``instruction=with`` only, a ``context=late-chunking`` result with
``context=late-chunking``, a synthetic task's ``corpus_size=N`` with the same N, and so on for
``rescore_depth``, ``generator``, ``max_length``, ...), except ``limit_queries``, which is checked
separately with its own error. When both selectors pin ``precision``, ``dim`` or a ``variant.NAME``
to different values (``--baseline model=m,precision=fp32 --candidate model=m,precision=int8``), that
axis is what is being compared and leaves the pairing key too (with ``variant.NAME_revision``, the
revision of what NAME names, e.g. ``generator_revision`` when ``variant.generator`` is compared).

Every check here runs before any statistics, so bad input fails fast with one line saying why.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

from embedbench.errors import EmbedbenchError
from embedbench.gate.selectors import Selected, Selector
from embedbench.results import load_per_query_file

UNPAIRED_VARIANT_KEYS = frozenset({"limit_queries"})  # compared by check_pair, with a clearer error
COMPARABLE_AXES = ("precision", "dim")

PairKey = tuple[object, ...]


@dataclass(frozen=True)
class Pair:
    key: PairKey
    baseline: Selected
    candidate: Selected

    @property
    def label(self) -> str:
        return describe(self.key)


@dataclass(frozen=True)
class PairScores:
    """One pair's per-query scores of the gated metric, on the same query ids."""

    pair: Pair
    metric: str
    baseline: dict[str, float]
    candidate: dict[str, float]


def free_axes(baseline: Selector, candidate: Selector) -> frozenset[str]:
    """Axes both selectors pin to different values: compared, not paired on."""
    free = set()
    for key in set(baseline.filters) & set(candidate.filters):
        comparable = key in COMPARABLE_AXES or key.startswith("variant.")
        if comparable and set(baseline.filters[key]) != set(candidate.filters[key]):
            free.update({key, f"{key}_revision"} if key.startswith("variant.") else {key})
    return frozenset(free)


def pair_key(sel: Selected, free: frozenset[str]) -> PairKey:
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


def describe(key: PairKey) -> str:
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
        groups[pair_key(sel, free)].append(sel)
    for key, members in sorted(groups.items(), key=lambda kv: repr(kv[0])):
        if len(members) > 1:
            raise EmbedbenchError(
                f"ambiguous {side}: {len(members)} results for {describe(key)}: "
                f"{_listing([_who(m) for m in members], 3)}; narrow the selector (e.g. model=, revision=, "
                "variant.limit_queries=)"
            )
    return {key: members[0] for key, members in groups.items()}


def pair_results(b_sel: Selector, c_sel: Selector, b_all: list[Selected], c_all: list[Selected]) -> list[Pair]:
    """One pair per key, sorted; a key on one side only, or twice on one side, is an error."""
    free = free_axes(b_sel, c_sel)
    b_map, c_map = _group("baseline", b_all, free), _group("candidate", c_all, free)
    missing_c = sorted(describe(k) for k in b_map.keys() - c_map.keys())
    missing_b = sorted(describe(k) for k in c_map.keys() - b_map.keys())
    if missing_c or missing_b:
        parts = []
        if missing_c:
            parts.append(f"candidate lacks {len(missing_c)} baseline task(s): {_listing(missing_c)}")
        if missing_b:
            parts.append(f"baseline lacks {len(missing_b)} candidate task(s): {_listing(missing_b)}")
        raise EmbedbenchError("mismatched task sets: " + "; ".join(parts))
    return [Pair(k, b_map[k], c_map[k]) for k in sorted(b_map, key=repr)]


def check_pair(pair: Pair, metric_override: str | None) -> str:
    """Provenance and completeness checks; returns the metric to gate on."""
    b, c = pair.baseline.result, pair.candidate.result
    if b.provenance.dataset_hash != c.provenance.dataset_hash:
        raise EmbedbenchError(
            f"different data for {pair.label}: baseline dataset_hash {b.provenance.dataset_hash[:16]} vs candidate "
            f"{c.provenance.dataset_hash[:16]}; re-run both on the same data"
        )
    lb, lc = b.variant.get("limit_queries"), c.variant.get("limit_queries")
    if lb != lc:
        def run(x: object) -> str:
            return "all queries" if x is None else f"limit_queries={x}"
        raise EmbedbenchError(
            f"partial vs full run for {pair.label}: baseline on {run(lb)}, candidate on {run(lc)}; compare like with like"
        )
    if b.n_queries != c.n_queries:
        raise EmbedbenchError(
            f"partial vs full run for {pair.label}: baseline has {b.n_queries} queries, candidate {c.n_queries}"
        )
    if metric_override:
        return metric_override
    if b.main_score_name != c.main_score_name:
        raise EmbedbenchError(
            f"different main scores for {pair.label}: baseline {b.main_score_name}, candidate {c.main_score_name}; "
            "pick one with --metric or the plan's gate.main_metric"
        )
    return b.main_score_name


def read_scores(sel: Selected, metric: str, label: str, side: str) -> dict[str, float]:
    """One side's finite per-query scores of `metric`, from the per-query file its summary names."""
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


def read_pair_scores(pair: Pair, metric_override: str | None) -> PairScores:
    """Check `pair`, then read both sides' scores of the gated metric; both must cover the same queries."""
    metric = check_pair(pair, metric_override)
    bs = read_scores(pair.baseline, metric, pair.label, "baseline")
    cs = read_scores(pair.candidate, metric, pair.label, "candidate")
    if bs.keys() != cs.keys():
        only_b, only_c = sorted(bs.keys() - cs.keys()), sorted(cs.keys() - bs.keys())
        raise EmbedbenchError(
            f"different query ids for {pair.label}: {len(only_b)} only in baseline (e.g. {only_b[:3]}), "
            f"{len(only_c)} only in candidate (e.g. {only_c[:3]})"
        )
    if not bs:
        raise EmbedbenchError(f"no per-query {metric} scores for {pair.label}")
    return PairScores(pair, metric, bs, cs)
