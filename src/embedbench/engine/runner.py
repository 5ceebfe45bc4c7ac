"""The evaluation engine: data -> (cached) encoding -> precision transforms -> exact search -> metrics -> results.

Encoding happens once per (model fingerprint, encode settings, role, text); every precision and
dimension is derived from the cached float vectors. Nothing is written until the model and every
task's data have loaded and validated, so bad input leaves results/ untouched.
"""

from __future__ import annotations

import random
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from embedbench.cache import EmbeddingCache, default_cache_dir
from embedbench.data.tasks import LoadContext, TaskData, default_data_dir, load_task_data
from embedbench.data.types import RetrievalData
from embedbench.encoders.loading import check_model_ref, load_model
from embedbench.encoders.protocol import Encoder, SearchModel
from embedbench.encoders.settings import EncodeSettings
from embedbench.encoding import CachedEncoding, resolve_context
from embedbench.errors import EmbedbenchError
from embedbench.metrics import K_VALUES, mean_metrics, past_depth, per_query_metrics
from embedbench.precision import (
    DEFAULT_RESCORE_DEPTH,
    PrecisionSpec,
    apply_precision,
    check_served,
    exact_overlap,
    parse_precisions,
    search,
)
from embedbench.provenance import git_commit, now_iso, package_versions
from embedbench.results import Provenance, Result, check_results_dir, write_result
from embedbench.suites import TaskSpec, load_suite, task_metric_names
from embedbench.task_metrics import answer_recall, comprehensiveness

TOP_K = max(K_VALUES)
QUERY_SAMPLE_SEED = 0
SCALABLE_LOADERS = ("synthetic-q2q", "synthetic-q2d")


@dataclass(frozen=True)
class PlannedTask:
    suite: str
    spec: TaskSpec
    subset: TaskData


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
    trust_remote_code: bool = False,
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
    """
    specs = None if precisions is None else parse_precisions(
        precisions if isinstance(precisions, str) else ",".join(precisions))
    dims = _check_dims(dims)
    if limit_queries is not None and limit_queries < 1:
        raise EmbedbenchError("--limit-queries must be at least 1")
    if rescore_depth < 1:
        raise EmbedbenchError("--rescore-depth must be at least 1")
    if generator is not None and rag_k > rescore_depth and any(s.rescore for s in specs or ()):
        raise EmbedbenchError(f"--rag-k {rag_k} is more passages than a two-stage search returns "
                              f"(--rescore-depth {rescore_depth})")
    settings = EncodeSettings(device=device, batch_size=batch_size, max_length=max_length,
                              trust_remote_code=trust_remote_code)
    data_dir = Path(data_dir) if data_dir else default_data_dir()
    cache = EmbeddingCache(Path(cache_dir) if cache_dir else default_cache_dir())
    if write:
        check_results_dir(Path(results_dir))
    task_refs = _task_refs(suite, dataset)
    if isinstance(model, str):
        check_model_ref(model)
    planned = _plan(task_refs, data_dir, cache.root, corpus_sizes)
    _check_main_scores(planned, generator is not None)
    encoder = load_model(model, settings) if isinstance(model, str) else model
    if not isinstance(encoder, (Encoder, SearchModel)):
        raise EmbedbenchError("model must implement encode_queries/encode_documents (or index/search) and meta")
    served = encoder.meta.served_precision if isinstance(encoder, Encoder) else "fp32"
    specs = specs or parse_precisions(served)
    check_served(specs, served, encoder.meta.name)
    context_mode = resolve_context(context, encoder) if isinstance(encoder, Encoder) else "none"
    _check_model_dims(encoder, dims)
    encoding_variant = _encoding_variant(encoder, settings, loaded=isinstance(model, str))
    if isinstance(generator, str):
        from embedbench.rag.generators import load_generator

        generator = load_generator(generator, device=device)
    run = _Run(model if isinstance(model, str) else encoder.meta.name, encoder, settings, cache, specs, dims,
               limit_queries, context_mode, rescore_depth, _MemoGenerator(generator) if generator else None,
               rag_k, command or sys.argv, encoding_variant)
    results: list[Result] = []
    for task in planned:
        for result, per_query in run.task(task):
            if write:
                write_result(Path(results_dir), result, per_query)
            results.append(result)
    return results


def _check_dims(dims: Sequence[int] | None) -> list[int | None]:
    if not dims:
        return [None]
    out: list[int | None] = []
    for d in dims:
        if isinstance(d, bool) or not isinstance(d, int) or d < 1:
            raise EmbedbenchError(f"dims must be positive integers, got {d!r}")
        if d not in out:
            out.append(d)
    return out


def _encoding_variant(encoder: object, settings: EncodeSettings, loaded: bool) -> dict[str, str | int | float]:
    """Per-run encoding choices that change the vectors, for the result's variant.

    A --max-length cut changes what is encoded, and a compute dtype other than float32 (CUDA
    autocast) changes every vector, so neither may replace the full-length float32 result. The
    device itself is not recorded: it changes vectors only through the dtype (cpu and cuda in
    float32 differ by rounding, like batch sizes do). `tests/test_result_identity.py` walks every
    setting and checks it is either here (or elsewhere in the identity) or cannot change a number.
    """
    out: dict[str, str | int | float] = {}
    if settings.max_length is not None and isinstance(encoder, Encoder):
        if not loaded:  # an encoder object was built by the caller, with its own limit
            raise EmbedbenchError("max_length applies to models embedbench loads by name; "
                                  "an encoder object brings its own limit")
        out["max_length"] = settings.max_length
    if encoder.meta.compute_dtype != "float32":
        out["dtype"] = encoder.meta.compute_dtype
    return out


def _check_model_dims(encoder: object, dims: list[int | None]) -> None:
    model_dim = encoder.meta.dim
    too_big = [d for d in dims if d is not None and model_dim is not None and d > model_dim]
    if too_big:
        raise EmbedbenchError(f"--dims {too_big[0]} is larger than the model's dimension {model_dim}")


def _task_refs(suite: str | Sequence[str] | None, dataset: str | Sequence[str] | None) -> list[tuple[str, TaskSpec]]:
    suites = [suite] if isinstance(suite, str) else list(suite or [])
    datasets = [dataset] if isinstance(dataset, str) else list(dataset or [])
    if not suites and not datasets:
        suites = ["default"]
    refs = [(s.name, t) for s in map(load_suite, suites) for t in s.tasks]
    for spec in datasets:
        fmt, sep, path = spec.partition(":")
        if not sep or not path:
            raise EmbedbenchError(f"--dataset {spec!r}: expected FORMAT:PATH (beir:DIR, squad:FILE, trec:DIR)")
        if fmt not in ("beir", "squad", "trec"):
            raise EmbedbenchError(f"--dataset {spec!r}: unknown format {fmt!r} (known: beir, squad, trec)")
        p = Path(path)
        name = f"{p.parent.name}-{p.stem}" if p.suffix else p.name
        refs.append(("dataset", TaskSpec(name=name or path, loader=fmt, path=path)))
    return refs


def _check_main_scores(planned: list[PlannedTask], generator: bool) -> None:
    """Each task's main score is among the metrics this run will compute for it (before encoding).

    A suite file's main_score was checked against every metric the task can produce; some need
    answers in the data (answer_recall) or a --generator as well (match, exact_match, f1).
    """
    for task in planned:
        spec, answers = task.spec, bool(task.subset.data.answers)
        if spec.main_score in task_metric_names(spec, answers=answers, generator=generator):
            continue
        if spec.main_score in task_metric_names(spec, answers=answers):
            raise EmbedbenchError(f"task {spec.name!r}: main_score {spec.main_score!r} is a generation metric; "
                                  "it needs --generator")
        raise EmbedbenchError(f"task {spec.name!r}: main_score {spec.main_score!r} needs reference answers, "
                              "and this task's data has none")


def _plan(refs: list[tuple[str, TaskSpec]], data_dir: Path | None, cache_root: Path,
          corpus_sizes: Sequence[int] | None) -> list[PlannedTask]:
    if corpus_sizes and not any(spec.loader in SCALABLE_LOADERS for _, spec in refs):
        raise EmbedbenchError("--corpus-size applies to the synthetic suites only (synthetic-q2q, synthetic-q2d)")
    planned = []
    for suite_name, spec in refs:
        sizes = list(corpus_sizes or [None]) if spec.loader in SCALABLE_LOADERS else [None]
        for size in sizes:
            for subset in load_task_data(spec, LoadContext(data_dir, cache_root, size)):
                planned.append(PlannedTask(suite_name, spec, subset))
    return planned


def sample_queries(data: RetrievalData, limit: int | None) -> list[str]:
    """The judged query ids (at least one relevant document), a seeded sample of `limit` of them if set.

    Tasks that keep queries whose judgements are all 0 (mteb does, and scores them 0) list them in
    `extra["zero_relevance_queries"]`; they are evaluated too.
    """
    keep_zero = set(data.extra.get("zero_relevance_queries") or ())
    judged = sorted(q for q, rels in data.qrels.items() if q in keep_zero or any(r > 0 for r in rels.values()))
    if limit is None or limit >= len(judged):
        return judged
    return sorted(random.Random(QUERY_SAMPLE_SEED).sample(judged, limit))


def instruction_modes(spec: TaskSpec, data: RetrievalData) -> list[str | None]:
    """For tasks with an instruction: "with", "without" or both (the `instruction` option); else no variant."""
    if not data.instruction:
        return [None]
    wanted = spec.options.get("instruction", "both")
    return ["with", "without"] if wanted == "both" else [wanted]


@dataclass
class _Run:
    model_name: str
    encoder: object
    settings: EncodeSettings
    cache: EmbeddingCache
    specs: list[PrecisionSpec]
    dims: list[int | None]
    limit_queries: int | None
    context: str
    rescore_depth: int
    generator: _MemoGenerator | None
    rag_k: int
    command: list[str]
    encoding_variant: dict[str, str | int | float]

    def task(self, task: PlannedTask) -> Iterator[tuple[Result, dict[str, dict[str, float]]]]:
        data = task.subset.data
        qids = sample_queries(data, self.limit_queries)
        # Lower index wins ties in the search kernels, so order the corpus as trec_eval breaks ties.
        doc_ids = sorted(data.corpus, reverse=True)
        base_variant: dict[str, str | int | float] = {**(task.subset.variant or {}), **self.encoding_variant}
        if self.limit_queries is not None:
            base_variant["limit_queries"] = self.limit_queries
        if data.documents is not None:
            base_variant["context"] = self.context
        if data.answers and self.generator is not None:
            base_variant.update(generator=self.generator.ref, generator_revision=self.generator.fingerprint,
                                rag_k=self.rag_k)
        for mode in instruction_modes(task.spec, data):
            variant = {**base_variant, **({"instruction": mode} if mode else {})}
            query_texts = [_query_text(data, q, mode) for q in qids]
            if isinstance(self.encoder, SearchModel) and not isinstance(self.encoder, Encoder):
                yield self._lexical(task, qids, doc_ids, query_texts, variant)
            else:
                yield from self._dense(task, qids, doc_ids, query_texts, variant)

    def _dense(self, task, qids, doc_ids, query_texts, variant):
        data, label = task.subset.data, task.spec.name
        enc = CachedEncoding(self.encoder, self.cache)
        hits0, enc0 = self.cache.stats["hits"], self.cache.stats["encoded"]
        t0 = time.perf_counter()
        docs = self._doc_vectors(enc, data, doc_ids, label)
        queries = enc.queries(query_texts, label)
        encode_seconds = time.perf_counter() - t0
        encoded = self.cache.stats["encoded"] - enc0
        doc_texts = [data.corpus[d].full_text for d in doc_ids]
        provenance = self._provenance(task, encoded, self.cache.stats["hits"] - hits0,
                                      self._truncated(doc_texts, query_texts))
        for dim in self.dims:
            for spec in self.specs:
                t1 = time.perf_counter()
                vectors = apply_precision(spec, queries, docs, dim, self.encoder.meta.native_quantizers,
                                          self.rescore_depth)
                scores, idx = search(vectors, TOP_K)
                search_seconds = time.perf_counter() - t1
                run = {q: {doc_ids[i]: float(s) for s, i in zip(scores[r], idx[r]) if i >= 0}
                       for r, q in enumerate(qids)}
                per_query = self._metrics(task, qids, run)
                spec_variant = dict(variant)
                absent: list[str] = []
                if vectors.rescore is not None:
                    spec_variant["rescore_depth"] = self.rescore_depth
                    per_query["rescore_overlap_at_10"] = dict(zip(qids, exact_overlap(vectors, idx, 10).tolist()))
                    if self.rescore_depth < len(doc_ids):  # else every document was re-ranked
                        absent = past_depth(per_query, self.rescore_depth)
                        per_query = {k: v for k, v in per_query.items() if k not in absent}
                yield self._result(task, spec.name, vectors.quantization, vectors.dim, vectors.bytes_per_vector,
                                   spec_variant, per_query, len(qids), len(doc_ids), encode_seconds, search_seconds,
                                   encoded, provenance, absent), per_query

    def _doc_vectors(self, enc: CachedEncoding, data: RetrievalData, doc_ids: list[str], label: str) -> np.ndarray:
        if data.documents is None or self.context == "none":
            return enc.documents([data.corpus[d].full_text for d in doc_ids], label)
        order = list(data.documents)
        vectors = enc.chunks_in_context([[data.corpus[c].full_text for c in data.documents[d]] for d in order], label)
        row = {cid: vec for d, block in zip(order, vectors) for cid, vec in zip(data.documents[d], block)}
        return np.stack([row[d] for d in doc_ids]).astype(np.float32, copy=False)

    def _lexical(self, task, qids, doc_ids, query_texts, variant):
        data = task.subset.data
        doc_texts = [data.corpus[d].full_text for d in doc_ids]
        t0 = time.perf_counter()
        self.encoder.index(doc_ids, doc_texts)
        encode_seconds = time.perf_counter() - t0
        t1 = time.perf_counter()
        hits = self.encoder.search(query_texts, min(TOP_K, len(doc_ids)))
        search_seconds = time.perf_counter() - t1
        per_query = self._metrics(task, qids, dict(zip(qids, hits)))
        provenance = self._provenance(task, len(doc_texts), 0, {})
        result = self._result(task, "lexical", "none", 0, 0, variant, per_query, len(qids), len(doc_ids),
                              encode_seconds, search_seconds, len(doc_texts), provenance)
        return result, per_query

    def _metrics(self, task: PlannedTask, qids: list[str], run: dict[str, dict[str, float]]):
        data = task.subset.data
        if data.extra.get("ignore_identical_ids"):  # mteb's rule (ArguAna): a query never retrieves itself
            for q in qids:
                run.get(q, {}).pop(q, None)
        qrels = {q: data.qrels[q] for q in qids}
        per_query = per_query_metrics(qrels, run)
        for q in set(data.extra.get("zero_relevance_queries") or ()) & set(qids):
            for values in per_query.values():
                values[q] = 0.0
        if data.answers and self.generator is not None:
            from embedbench.rag.run import generate_and_score, top_passages

            texts = {d: data.corpus[d].full_text for hits in run.values() for d in hits}
            per_query.update(generate_and_score(self.generator, {q: data.queries[q].text for q in qids},
                                                top_passages(run, texts, self.rag_k, qids), data.answers,
                                                self.rag_k))
        if "comprehensiveness" in task.spec.metrics:
            per_query.update(comprehensiveness(qrels, run))
        if "answer_recall" in task.spec.metrics and data.answers:
            texts = {d: data.corpus[d].full_text for hits in run.values() for d in hits}
            per_query.update(answer_recall(data.answers, run, texts, qids))
        return per_query

    def _truncated(self, doc_texts: list[str], query_texts: list[str]) -> dict[str, float]:
        count = getattr(self.encoder, "count_truncated", None)
        if count is None:
            return {}
        return {
            "document": count(doc_texts, "document") / max(len(doc_texts), 1),
            "query": count(query_texts, "query") / max(len(query_texts), 1),
        }

    def _provenance(self, task: PlannedTask, encoded: int, cached: int, truncated: dict[str, float]) -> Provenance:
        meta = self.encoder.meta
        return Provenance(
            embedbench_version=package_versions()["embedbench"],
            git_commit=git_commit(),
            packages=package_versions(),
            command=self.command,
            model_fingerprint=meta.fingerprint,
            model_source=meta.source,
            dataset_hash=task.subset.data.content_hash(),
            dataset_source=task.subset.data.source,
            device=self.settings.device,
            dtype=meta.compute_dtype,
            batch_size=self.settings.batch_size,
            max_length=meta.max_tokens,
            truncated_share=truncated,
            texts_encoded=encoded,
            texts_cached=cached,
            float_note=meta.float_note,
            prompts=dict(meta.prompts),
            created_at=now_iso(),
        )

    def _result(self, task, precision, quantization, dim, bytes_per_vector, variant, per_query, n_queries, n_docs,
                encode_seconds, search_seconds, encoded, provenance, absent: Sequence[str] = ()) -> Result:
        metrics: dict[str, float | None] = {**mean_metrics(per_query), **dict.fromkeys(absent)}
        main = task.spec.main_score
        if main not in metrics:
            raise EmbedbenchError(f"task {task.spec.name!r}: main score {main!r} was not computed "
                                  f"(computed: {', '.join(sorted(metrics)[:8])}, ...)")
        return Result(
            model=self.model_name,
            revision=self.encoder.meta.revision,
            suite=task.suite,
            task=task.spec.name,
            split=task.subset.split,
            language=task.subset.language,
            precision=precision,
            quantization=quantization,
            dim=dim,
            variant=dict(variant),
            main_score_name=main,
            main_score=metrics[main],
            metrics=metrics,
            n_queries=n_queries,
            n_docs=n_docs,
            bytes_per_vector=bytes_per_vector,
            pages_per_gb=(1 << 30) // bytes_per_vector if bytes_per_vector else None,
            encode_seconds=round(encode_seconds, 3),
            search_seconds=round(search_seconds, 3),
            docs_per_second=round(encoded / encode_seconds, 1) if encoded and encode_seconds > 0 else None,
            provenance=provenance,
        )


class _MemoGenerator:
    """A generator that answers each (question, passages) once, however many precisions rank them alike."""

    def __init__(self, generator: object) -> None:
        self._generator = generator
        self._answers: dict[tuple[str, tuple[str, ...]], str] = {}
        self.ref = getattr(generator, "ref", type(generator).__name__)
        self.fingerprint = getattr(generator, "fingerprint", self.ref)

    def generate(self, question: str, passages: list[str]) -> str:
        key = (question, tuple(passages))
        if key not in self._answers:
            self._answers[key] = self._generator.generate(question, passages)
        return self._answers[key]


def _query_text(data: RetrievalData, qid: str, instruction: str | None) -> str:
    """The query as encoded; "with" prepends the query's own instruction (ToolRet), else the task's."""
    text = data.queries[qid].text
    if instruction != "with":
        return text
    own = (data.extra.get("instructions") or {}).get(qid)
    return f"{own or data.instruction}\n{text}"
