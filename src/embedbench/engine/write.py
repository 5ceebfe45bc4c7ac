"""Assembling results: provenance, the typed Result (with the facts reports need), and writing them.

A Result records what the report and the mteb export would otherwise have to look up in today's
code and files: the task list of its suite file, the task's type, a synthetic task's default corpus
size, the model's hub id and whether the task is in the model's training data (engine/zero_shot.py).
So a report reads results only, however the suites and model registries change after the run.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from embedbench.engine.context import RunContext, Variant
from embedbench.engine.plan import PlannedTask
from embedbench.engine.provenance import git_commit, now_iso, package_versions
from embedbench.engine.score import PerQuery
from embedbench.engine.zero_shot import run_training_data, zero_shot_facts
from embedbench.errors import EmbedbenchError
from embedbench.results import Provenance, Result, write_result
from embedbench.scoring.metrics import mean_metrics


@dataclass(frozen=True)
class EncodingStats:
    """How a task's vectors were obtained: seconds spent, texts encoded vs read from the cache."""

    seconds: float
    encoded: int
    cached: int
    truncated: dict[str, float] = field(default_factory=dict)  # share of texts past max length, per role


@dataclass(frozen=True)
class Measurement:
    """One (precision, dim) of one task, scored: everything a Result holds besides run and task facts."""

    precision: str
    quantization: str
    dim: int
    bytes_per_vector: int
    variant: Variant
    per_query: PerQuery
    n_queries: int
    n_docs: int
    search_seconds: float
    encoding: EncodingStats
    absent: Sequence[str] = ()  # metrics past a two-stage rescore depth: recorded as not measured
    costs: dict[str, float | int | str | None] | None = None  # what the search index cost (engine/ann.py)


def build_provenance(run: RunContext, task: PlannedTask, encoding: EncodingStats) -> Provenance:
    meta = run.encoder.meta
    return Provenance(
        embedbench_version=package_versions()["embedbench"],
        git_commit=git_commit(),
        packages=package_versions(),
        command=run.command,
        model_fingerprint=meta.fingerprint,
        model_source=meta.source,
        dataset_hash=task.subset.data.content_hash(),
        dataset_source=task.subset.data.source,
        device=run.settings.device,
        dtype=meta.compute_dtype,
        dtype_setting=run.settings.dtype,
        batch_size=run.settings.batch_size,
        max_length=meta.max_tokens,
        truncated_share=encoding.truncated,
        texts_encoded=encoding.encoded,
        texts_cached=encoding.cached,
        float_note=meta.float_note,
        prompts=dict(meta.prompts),
        training_data_source=training_source(run),
        created_at=now_iso(),
    )


def training_source(run: RunContext) -> str:
    """Where the model's training data list came from ("": the model's training data is not known)."""
    training = run_training_data(run.model_name, run.hub_id)
    return training.source if training is not None else ""


def report_facts(run: RunContext, task: PlannedTask) -> dict[str, object]:
    """What the report and the mteb export read from a result instead of from suites, data or encoders:
    for a task run from a suite file, the suite's task names and the task's type; for a synthetic
    task, the corpus size its suite gives it (the size it ran at is variant.corpus_size); whether the task
    is in the model's training data."""
    from_suite = task.suite_tasks is not None
    return {
        "suite_tasks": list(task.suite_tasks) if from_suite else None,
        "task_type": task.spec.type if from_suite else None,
        "corpus_size": task.default_corpus_size,
        "hub_id": run.hub_id,
        **zero_shot_facts(run_training_data(run.model_name, run.hub_id), task.spec),
    }


def scored_metrics(task: PlannedTask, m: Measurement) -> dict[str, float | None]:
    """The mean of each metric (None: not measured), checked to hold the task's main score."""
    metrics: dict[str, float | None] = {**mean_metrics(m.per_query), **dict.fromkeys(m.absent)}
    main = task.spec.main_score
    if main not in metrics:
        raise EmbedbenchError(f"task {task.spec.name!r}: main score {main!r} was not computed "
                              f"(computed: {', '.join(sorted(metrics)[:8])}, ...)")
    return metrics


def build_result(run: RunContext, task: PlannedTask, m: Measurement, provenance: Provenance) -> Result:
    metrics = scored_metrics(task, m)
    seconds, encoded = m.encoding.seconds, m.encoding.encoded
    return Result(
        model=run.model_name,
        revision=run.encoder.meta.revision,
        suite=task.suite,
        task=task.spec.name,
        split=task.subset.split,
        language=task.subset.language,
        precision=m.precision,
        quantization=m.quantization,
        dim=m.dim,
        variant=dict(m.variant),
        main_score_name=task.spec.main_score,
        main_score=metrics[task.spec.main_score],
        metrics=metrics,
        n_queries=m.n_queries,
        n_docs=m.n_docs,
        bytes_per_vector=m.bytes_per_vector,
        pages_per_gb=(1 << 30) // m.bytes_per_vector if m.bytes_per_vector else None,
        encode_seconds=round(seconds, 3),
        search_seconds=round(m.search_seconds, 3),
        docs_per_second=round(encoded / seconds, 1) if encoded and seconds > 0 else None,
        costs=m.costs,
        provenance=provenance,
        **report_facts(run, task),
    )


def write_results(scored: Iterable[tuple[Result, PerQuery]], results_dir: Path | None) -> list[Result]:
    """Write each result with its per-query scores as it arrives (None: keep them in memory only)."""
    results = []
    for result, per_query in scored:
        if results_dir is not None:
            write_result(results_dir, result, per_query)
        results.append(result)
    return results
