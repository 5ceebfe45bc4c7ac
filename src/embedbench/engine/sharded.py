"""Every (dim, precision) of a task searched over the corpus a shard at a time, in one pass per step.

Two passes over the shards at most: the first, only when a precision calibrates int8 codes on the
corpus, takes each shard's per-dimension min / max (merged: the same ranges as the whole corpus in
memory); the second transforms each shard to every requested precision and dim and searches it.
A shard's work is a pure function of (job, shard), so the executor may run shards anywhere (this
process, Ray tasks); the driver merges the parts with a total order, so results do not depend on
where or in which order shards ran, and equal the in-memory search (scoring/shards.py).

What a query costs is measured in the same pass: each shard's batched search is timed apart from
its precision transform, and a seeded sample of queries (engine/timing.py) is searched one at a
time; a query's single-query latency is its time summed over the shards (the driver's merge is
left out). The timings never touch the rankings.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from embedbench.engine.stream import DocumentStore
from embedbench.engine.timing import time_each
from embedbench.scoring.precision import ColumnRange, Encoded, PrecisionSpec, apply_precision
from embedbench.scoring.shards import ShardedSearch, docs_slice

OVERLAP_K = 10  # two-stage specs: how much of the exact second-stage top 10 the re-ranked list kept

Plan = tuple[int | None, PrecisionSpec]  # (dim, precision)


@dataclass(frozen=True)
class ShardJob:
    """What every shard's search needs besides its documents; picklable."""

    queries: np.ndarray  # float32 query vectors
    plans: tuple[Plan, ...]
    native: dict[str, Callable[[np.ndarray], np.ndarray]]
    rescore_depth: int
    k: int
    span: ColumnRange | None  # the corpus's column ranges, when a plan calibrates int8 on it
    block: int  # documents per float-search block: executors.SEARCH_BLOCK, read when the job is made
    latency: np.ndarray | None = None  # query positions searched one at a time per shard (None: not timed)

    def encoded(self, plan: Plan, docs: np.ndarray) -> Encoded:
        dim, spec = plan
        return apply_precision(spec, self.queries, docs, dim, self.native, self.rescore_depth, corpus_range=self.span)

    def query_side(self, plan: Plan) -> Encoded:
        """The plan's stored queries: the same from every shard, as int8 calibration comes from ``span``
        (so the one-row stand-in corpus only shapes an unused document side)."""
        return self.encoded(plan, self.queries[:1])


def needs_span(plans: tuple[Plan, ...], native: dict) -> bool:
    """Whether some plan calibrates int8 codes on the corpus (post-hoc int8, alone or as a second stage)."""
    return any(_calibrates(p, native) for p in plans)


def _calibrates(plan: Plan, native: dict) -> bool:
    spec = plan[1]
    return "int8" in spec.stages and (spec.force_posthoc or "int8" not in native)


def shard_span(store: DocumentStore, start: int, stop: int) -> ColumnRange:
    """One shard's per-dimension min / max at full dimension (truncation commutes with it)."""
    return ColumnRange.of(store.read(start, stop))


def search_shard(job: ShardJob, store: DocumentStore, start: int, stop: int) -> list[tuple]:
    """Per plan: (the shard's part of the top-k, of the exact second stage (two-stage plans), seconds of
    transform + search, seconds of the batched search alone, single-query seconds of ``job.latency``)."""
    docs = store.read(start, stop)
    parts = []
    for plan in job.plans:
        t0 = time.perf_counter()
        enc = job.encoded(plan, docs)
        warm_up(enc, job, start)
        t1 = time.perf_counter()
        part = ShardedSearch(enc, job.k, job.block).part(start, enc)
        exact = None if enc.rescore is None else ShardedSearch(enc.rescore, OVERLAP_K, job.block).part(start, enc.rescore)
        t2 = time.perf_counter()
        single = None if job.latency is None else time_each(
            lambda r: ShardedSearch(one_query(enc, r), job.k, job.block).part(start, enc), job.latency)
        parts.append((part, exact, t2 - t0, t2 - t1, single))
    return parts


_WARM: set[tuple] = set()  # search shapes this process has run once (warm_up)


def warm_up(enc: Encoded, job: ShardJob, start: int) -> None:
    """An untimed batched search of the shard's first block, once per search shape in a process, so
    first-call costs stay out of the timed search's seconds (queries per second): the first search of a
    shape in a process pays for fresh score and selection buffers (page faults of new allocations) -- on
    Vaswani a cold batched search measured 1,360 queries/s where the same search warm does 3,960, and a
    one-query warm-up does not help. One block has the buffers' shapes of every block of the shard."""
    shape = (enc.kind, enc.queries.shape, enc.rescore is not None, job.k, job.block)
    if shape in _WARM or not len(enc.queries) or not len(enc.docs):
        return
    _WARM.add(shape)
    first = docs_slice(enc, slice(0, job.block or len(enc.docs)))
    ShardedSearch(enc, job.k, job.block).part(start, first)


def one_query(enc: Encoded, row: int) -> Encoded:
    """``enc`` with only query ``row`` (both stages of a two-stage spec)."""
    rescore = None if enc.rescore is None else one_query(enc.rescore, row)
    return dataclasses.replace(enc, queries=enc.queries[row:row + 1], rescore=rescore)


@dataclass
class PlanSearch:
    """The driver's running top-k of one plan (and of its exact second stage, two-stage plans)."""

    main: ShardedSearch
    exact: ShardedSearch | None
    seconds: float = 0.0  # transform + search, summed over the shards, and the merges
    search_seconds: float = 0.0  # the batched searches alone, summed over the shards (for queries per second)
    latency: np.ndarray | None = None  # single-query seconds of the timed queries, summed over the shards

    def merge(self, parts: tuple) -> None:
        t0 = time.perf_counter()
        self.main.merge(parts[0])
        if self.exact is not None:
            self.exact.merge(parts[1])
        self.seconds += parts[2] + time.perf_counter() - t0
        self.search_seconds += parts[3]
        if parts[4] is not None:
            self.latency = parts[4] if self.latency is None else self.latency + parts[4]


def plan_searches(job: ShardJob) -> list[PlanSearch]:
    out = []
    for plan in job.plans:
        side = job.query_side(plan)
        out.append(PlanSearch(ShardedSearch(side, job.k, job.block),
                              None if side.rescore is None else ShardedSearch(side.rescore, OVERLAP_K, job.block)))
    return out
