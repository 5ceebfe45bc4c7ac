"""`evaluate`: plan -> load the model -> per task: encode (through the cache), transform, search, score -> write.

Encoding happens once per (model fingerprint, encode settings, role, text); every precision and
dimension is derived from the cached float vectors. Nothing is written until the model and every
task's data have loaded and validated, so bad input leaves results/ untouched. The steps live in
`plan` (what to run, checked), `context` (the loaded model), `queries` (what a task evaluates),
`dense` / `lexical` (search), `score` (metrics) and `write` (results).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

from embedbench.data.locations import default_data_dir
from embedbench.encoders.loading import check_model_ref
from embedbench.encoders.protocol import Encoder, SearchModel
from embedbench.encoders.settings import EncodeSettings
from embedbench.engine.cache import EmbeddingCache, default_cache_dir
from embedbench.engine.context import RunContext, RunRequest, open_run, precision_specs
from embedbench.engine.dense import score_dense
from embedbench.engine.executors import DEFAULT_SHARD_SIZE, EngineOptions
from embedbench.engine.lexical import score_lexical
from embedbench.engine.plan import PlannedTask, check_run_limits, plan_evaluation
from embedbench.engine.progress import describe_task, log, progress_bars
from embedbench.engine.queries import sample_queries, task_queries
from embedbench.engine.score import PerQuery
from embedbench.engine.write import write_results
from embedbench.errors import EmbedbenchError
from embedbench.results import Result, check_results_dir
from embedbench.scoring.precision import DEFAULT_RESCORE_DEPTH, check_dims

__all__ = ["evaluate"]


def evaluate(
    model: str | Encoder | SearchModel,
    *,
    suite: str | Sequence[str] | None = None,
    dataset: str | Sequence[str] | None = None,
    precisions: str | Sequence[str] | None = None,
    dims: Sequence[int] | None = None,
    limit_queries: int | None = None,
    corpus_sizes: Sequence[int] | None = None,
    context: str = "auto",
    rescore_depth: int = DEFAULT_RESCORE_DEPTH,
    generator: str | object | None = None,
    rag_k: int = 5,
    results_dir: str | Path = "results",
    data_dir: str | Path | None = None,
    cache_dir: str | Path | None = None,
    batch_size: int = 32,
    max_length: int | None = None,
    device: str = "cpu",
    dtype: str = "auto",
    trust_remote_code: bool = False,
    index: str | Sequence[str] | None = None,
    rerank_with: str | None = None,
    rerank_depth: int = 100,
    engine: str = "local",
    shard_size: int = DEFAULT_SHARD_SIZE,
    ray_address: str | None = None,
    workers: int | None = None,
    gpus_per_worker: float = 0,
    cpus_per_worker: float = 1,
    write: bool = True,
    command: list[str] | None = None,
) -> list[Result]:
    """Evaluate `model` on suites and/or datasets; write and return one Result per identity.

    `model` is a preset name, a registered plugin name, a local model folder, or an encoder object
    (for use inside a training loop). `dataset` entries are `beir:DIR`, `squad:FILE` or `trec:DIR`.
    `precisions` defaults to what the model serves: fp32, or an HTTP endpoint's int8 / binary codes
    (a precision finer than that is an error).
    `corpus_sizes` applies to the synthetic suites; `context` (auto | none | late-chunking) to chunked tasks;
    `rescore_depth` is the number of binary candidates that binary+int8 / binary+fp32 re-rank.
    `generator` (a reference such as `hf:PATH` or `http://HOST/v1?model=NAME`, or a Generator object)
    answers RAG tasks' questions from the top `rag_k` passages, adding match / exact_match / f1;
    without one, RAG tasks report retrieval-side metrics (answer_recall_at_k) only.
    `engine` "local" runs in this process; "ray" encodes with Ray Data actors (`workers`, each with
    `gpus_per_worker` / `cpus_per_worker`) on the cluster at `ray_address` (default $RAY_ADDRESS, else
    a local one) and searches shards as Ray tasks. Corpora are read `shard_size` documents at a time.
    Neither changes a number.
    `device` is cpu, cuda, cuda:N or mps; `dtype` (auto | fp32 | bf16 | fp16) the compute dtype of torch
    models (auto: each plugin's own choice, see `embedbench.encoders.runtime`); a dtype other than
    float32 goes into the result's variant.
    `index` is one or more search index specs (`"exact"`, the default, or faiss indexes such as
    `"hnsw:m=32:ef=256"`; a comma-separated string or a list), each measured on the same vectors.
    `rerank_with` names a multi-vector model whose MaxSim re-ranks the top `rerank_depth` documents.
    Progress goes to the `embedbench` logger (a line per task) and to bars on stderr, which show unless
    that logger is set above INFO.
    """
    options = EngineOptions(engine, shard_size, ray_address, workers, gpus_per_worker, cpus_per_worker).check()
    specs = precision_specs(precisions)
    checked_dims = check_dims(dims)
    check_run_limits(limit_queries, rescore_depth, rag_k, generator is not None, specs or [])
    indexes = index_specs(index)
    check_rerank(rerank_with, rerank_depth)
    settings = EncodeSettings(device=device, dtype=dtype, batch_size=batch_size, max_length=max_length,
                              trust_remote_code=trust_remote_code, show_progress=progress_bars())
    cache = EmbeddingCache(Path(cache_dir) if cache_dir else default_cache_dir())
    out = Path(results_dir) if write else None
    if out is not None:
        check_results_dir(out)
    planned = plan_evaluation(model, suite, dataset, Path(data_dir) if data_dir else default_data_dir(),
                              cache.root, corpus_sizes, generator is not None)
    run = open_run(RunRequest(model, settings, cache, specs, checked_dims, limit_queries, context, rescore_depth,
                              generator, rag_k, command or sys.argv, options, indexes=indexes,
                              rerank_with=rerank_with, rerank_depth=rerank_depth))
    try:
        return write_results(score_tasks(run, planned), out)
    finally:
        run.executor.close()


def index_specs(index: str | Sequence[str] | None) -> tuple[str, ...]:
    """The search index specs as given (checked by the scoring layer's parser), `("exact",)` by default."""
    from embedbench.scoring.index import parse_index_specs  # the scoring layer owns the spec grammar

    parse_index_specs(index)
    given = [index] if isinstance(index, str) else list(index or [])
    return tuple(s.strip() for spec in given for s in spec.split(",") if s.strip()) or ("exact",)


def check_rerank(rerank_with: str | None, rerank_depth: int) -> None:
    if rerank_depth < 1:
        raise EmbedbenchError("--rerank-depth must be at least 1")
    if rerank_with is not None:
        check_model_ref(rerank_with)  # an unknown re-ranker or absent weights: one line before any data loads


def score_tasks(run: RunContext, planned: list[PlannedTask]) -> Iterator[tuple[Result, PerQuery]]:
    """Every task in every instruction mode, through the multi-vector, dense or lexical search."""
    for number, task in enumerate(planned, 1):
        data = task.subset.data
        log.info("task %d/%d: %s", number, len(planned), describe_task(
            task.spec.name, task.subset.language, task.subset.split, len(data.corpus),
            len(sample_queries(data, run.limit_queries))))
        for q in task_queries(run, task):
            if run.multi_vector:
                from embedbench.engine.late import score_multi_vector  # only models with token vectors

                yield from score_multi_vector(run, q)
            elif run.rerank_with is not None:
                from embedbench.engine.rerank import score_reranked

                yield from score_reranked(run, q)
            elif run.dense:
                yield from score_dense(run, q)
            else:
                yield score_lexical(run, q)
