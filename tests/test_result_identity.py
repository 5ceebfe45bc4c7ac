"""A result's identity holds every setting that changes its number (issue 10, item 2).

The walk: every `evaluate()` parameter and every `EncodeSettings` field is either in CHANGES (a
probe runs evaluate twice, default and changed, and the two identities must differ) or in
CANNOT_CHANGE_A_NUMBER with the reason (a probe checks the metrics and identities stay equal).
A new parameter or settings field fails `test_every_setting_is_classified` until it is placed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

import embedbench.engine.context as engine_context
import embedbench.engine.plan as engine_plan
from embedbench.engine import executors
from embedbench.encoders.protocol import EncoderMeta
from embedbench.encoders.settings import EncodeSettings
from embedbench.errors import EmbedbenchError
from embedbench.results import read_results
from embedbench.engine.runner import evaluate


class SettingsAwareFake:
    """A model "loaded by name": honours max_length (first N words) and, like the torch encoders,
    computes in float16 on cuda (autocast). Bag-of-words vectors, so a cut changes the ranking."""

    def __init__(self, ref: str, settings: EncodeSettings, dim: int = 32) -> None:
        self.max_length = settings.max_length
        self.dtype = "float16" if settings.device.startswith("cuda") and settings.dtype != "fp32" else "float32"
        self.meta = EncoderMeta(name=ref, revision="r1", fingerprint=ref, dim=dim, pooling="mean",
                                max_tokens=settings.max_length, compute_dtype=self.dtype, libraries=())

    def _vec(self, text: str) -> np.ndarray:
        v = np.zeros(self.meta.dim, dtype=np.float32)
        for word in text.lower().split()[: self.max_length]:
            seed = int.from_bytes(hashlib.sha256(word.encode()).digest()[:4], "little")
            v += np.random.default_rng(seed).standard_normal(self.meta.dim).astype(np.float32)
        return v.astype(self.dtype).astype(np.float32)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return np.stack([self._vec(t) for t in texts])

    def encode_documents(self, texts: Sequence[str]) -> np.ndarray:
        return np.stack([self._vec(t) for t in texts])

    def encode_nested(self, documents: Sequence[Sequence[str]]) -> list[np.ndarray]:
        # Each chunk sees its document: its own vector plus half the document's.
        out = []
        for doc in documents:
            whole = self._vec(" ".join(doc))
            out.append(np.stack([self._vec(c) + 0.5 * whole for c in doc]))
        return out


class EchoFirst:
    ref = "echo-first"
    fingerprint = "echo-first-v1"

    def generate(self, question: str, passages: list[str]) -> str:
        return passages[0] if passages else ""


def _squad(folder: Path) -> Path:
    """Three paragraphs of two sentences, one question each: usable as rag and as contextual data."""
    facts = [("The capital of France is Paris.", "It is large.", "What is the capital of France?", "Paris"),
             ("Everest is the tallest mountain.", "It is in Nepal.", "Which mountain is the tallest?", "Everest"),
             ("Water boils at one hundred degrees.", "Ice melts.", "When does water boil?", "one hundred")]
    paragraphs = []
    for i, (s1, s2, q, a) in enumerate(facts):
        context = f"{s1} {s2}"
        paragraphs.append({"context": context, "sentences": [s1, s2],
                           "sentence_breaks": [[0, len(s1)], [len(s1) + 1, len(context)]],
                           "qas": [{"id": f"q{i}", "question": q,
                                    "answers": [{"text": a, "answer_start": context.index(a)}]}]})
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "en.json").write_text(json.dumps({"data": [{"title": "t", "paragraphs": paragraphs}]}))
    return folder


def _suite(path: Path, task: str) -> str:
    path.write_text(f"name: {path.stem}\ntasks:\n{task}")
    return str(path)


@pytest.fixture
def work(tmp_path, beir_dir, monkeypatch):
    """Workloads for the probes, and `load_model` answering every name with a SettingsAwareFake."""
    monkeypatch.setattr(engine_plan, "check_model_ref", lambda ref: None)
    monkeypatch.setattr(executors, "SEARCH_BLOCK", 2)  # so the shard_size probe can cut this tiny corpus in shards
    monkeypatch.setattr(engine_context, "load_model", lambda ref, settings: SettingsAwareFake(ref, settings))
    squad = _squad(tmp_path / "squad")
    return {
        "beir": dict(dataset=f"beir:{beir_dir}"),
        "rag": dict(suite=_suite(tmp_path / "rag.yaml", f"  - {{name: Rag, loader: xquad-r, path: {squad}, "
                                 "metrics: [answer_recall], main_score: answer_recall_at_1, "
                                 "options: {mode: rag, languages: [en]}}\n")),
        "chunked": dict(suite=_suite(tmp_path / "ctx.yaml", f"  - {{name: Ctx, loader: xquad-r, path: {squad}, "
                                     "options: {mode: contextual, languages: [en]}}\n")),
        "synthetic": dict(suite=_suite(tmp_path / "syn.yaml", "  - {name: Syn, loader: synthetic-q2q, "
                                       "main_score: recall_at_10, options: {n_queries: 10, corpus_size: 200, "
                                       "languages: [en, de]}}\n")),
        "beir_copy": beir_dir,
        "tmp": tmp_path,
    }


# name -> probe(work) = (workload kwargs, the changed kwargs); the default run is evaluate(**workload).
CHANGES = {
    "model": lambda w: (w["beir"], {"model": "other-model"}),
    "suite": lambda w: (w["rag"], {"suite": w["chunked"]["suite"]}),
    "dataset": lambda w: (w["beir"], {"dataset": f"beir:{_copy(w, 'renamed')}"}),
    "precisions": lambda w: (w["beir"], {"precisions": "int8"}),
    "dims": lambda w: (w["beir"], {"dims": [16]}),
    "limit_queries": lambda w: (w["beir"], {"limit_queries": 5}),
    "corpus_sizes": lambda w: (w["synthetic"], {"corpus_sizes": [300]}),
    "context": lambda w: (w["chunked"], {"context": "late-chunking"}),
    "rescore_depth": lambda w: ({**w["beir"], "precisions": "binary+int8"}, {"rescore_depth": 20}),
    "generator": lambda w: (w["rag"], {"generator": EchoFirst()}),
    "rag_k": lambda w: ({**w["rag"], "generator": EchoFirst()}, {"rag_k": 1}),
    # A cut changes what is encoded: `variant["max_length"]`.
    "max_length": lambda w: (w["beir"], {"max_length": 2}),
    # The device changes vectors through the compute dtype (fp16/bf16 autocast on CUDA), which goes into
    # `variant["dtype"]` when it is not float32, so a cuda-fp16 result never replaces a cpu-fp32 one.
    "device": lambda w: (w["beir"], {"device": "cuda"}),
    # On CUDA the default (auto) computes in float16 here, fp32 in float32: `variant["dtype"]` differs.
    "dtype": lambda w: ({**w["beir"], "device": "cuda"}, {"dtype": "fp32"}),
    # A faiss index's results carry `variant["index"]`; the exact results beside them keep their identity.
    "index": lambda w: (w["beir"], {"index": "sq8"}),
}

# Settings that change a number, probed where a real model they need exists (this file's fake is dense):
# the re-ranker must be a multi-vector model, and the variant names it and its depth.
PROBED_ELSEWHERE = {
    "rerank_with": "tests/test_late_engine.py::test_rerank_with_maxsim_re_scores_the_dense_top_n (variant.rerank_with)",
    "rerank_depth": "tests/test_late_engine.py::test_rerank_with_maxsim_re_scores_the_dense_top_n (variant.rerank_depth)",
}

# name -> why it cannot change a number.
CANNOT_CHANGE_A_NUMBER = {
    "batch_size": "texts per forward pass: padding is masked, so batches change float rounding only",
    "show_progress": "progress bars only",
    "trust_remote_code": "lets a model load at all (custom architectures), or runs a pinned preset through its "
                         "repo's own code, a cross-check of the same vectors (the cache key treats them as one)",
    "results_dir": "where results are written",
    "data_dir": "where the data files are read from; what they hold is the task's identity "
                "(and provenance.dataset_hash), not where they are",
    "cache_dir": "where vectors are cached; the cache key holds everything that changes a vector",
    "write": "whether results are written",
    "command": "recorded in provenance only",
    "shard_size": "documents read per shard: shards are searched with the same kernels and merged in the "
                  "search's own order (tests/test_streaming_engine.py: bit-identical metrics)",
    "engine": "where texts are encoded and shards searched; vectors are keyed by text and shard parts "
              "merge in a total order",
    "ray_address": "which Ray cluster runs the work",
    "workers": "how many encoding actors",
    "gpus_per_worker": "the resources of an actor; a GPU changes vectors only through the compute dtype, "
                       "which is in the variant",
    "cpus_per_worker": "the resources of an actor",
}

# Probes for the no-number settings that evaluate() takes: (workload, changed kwargs).
NO_NUMBER_PROBES = {
    "batch_size": lambda w: (w["beir"], {"batch_size": 3}),
    "trust_remote_code": lambda w: (w["beir"], {"trust_remote_code": True}),
    "results_dir": lambda w: (w["beir"], {"results_dir": w["tmp"] / "elsewhere"}),
    "data_dir": lambda w: ({"dataset": "beir:tiny-beir", "data_dir": w["beir_copy"].parent},
                           {"data_dir": _copy(w, "other-data/tiny-beir").parent}),
    "cache_dir": lambda w: (w["beir"], {"cache_dir": w["tmp"] / "other-cache"}),
    "write": lambda w: (w["beir"], {"write": False}),
    "command": lambda w: (w["beir"], {"command": ["something", "else"]}),
    "shard_size": lambda w: (w["beir"], {"shard_size": 2}),
    # The Ray engine against the default (local) run: each changed run starts a local Ray and finds the
    # default run's vectors in the cache (its workers could not load this file's fake model by name), so
    # these probe the search tasks and the identity; tests/test_ray_engine.py has the actors encode.
    # Without GPUs, gpus_per_worker can only be given as 0 (more than the cluster has is exit 2).
    "engine": lambda w: (w["beir"], {"engine": "ray"}),
    "ray_address": lambda w: (w["beir"], {"engine": "ray", "ray_address": "local"}),
    "workers": lambda w: (w["beir"], {"engine": "ray", "workers": 1}),
    "gpus_per_worker": lambda w: (w["beir"], {"engine": "ray", "gpus_per_worker": 0}),
    "cpus_per_worker": lambda w: (w["beir"], {"engine": "ray", "cpus_per_worker": 0.5}),
}


def _copy(w: dict, name: str) -> Path:
    dest = w["tmp"] / name
    if not dest.exists():
        shutil.copytree(w["beir_copy"], dest)
    return dest


def _run(w: dict, kwargs: dict) -> list:
    kwargs = {"model": "fake-model", "results_dir": w["tmp"] / "results", **kwargs}
    return evaluate(**kwargs)


def test_every_setting_is_classified():
    names = set(inspect.signature(evaluate).parameters) | {f.name for f in dataclasses.fields(EncodeSettings)}
    assert not set(CHANGES) & set(CANNOT_CHANGE_A_NUMBER)
    unplaced = names - set(CHANGES) - set(CANNOT_CHANGE_A_NUMBER) - set(PROBED_ELSEWHERE)
    assert not unplaced, f"say whether these change a number: {sorted(unplaced)}"
    assert set(NO_NUMBER_PROBES) == set(CANNOT_CHANGE_A_NUMBER) & set(inspect.signature(evaluate).parameters)


@pytest.mark.parametrize("name", sorted(CHANGES))
def test_a_setting_that_changes_a_number_changes_the_identity(work, name):
    workload, changed = CHANGES[name](work)
    before = {r.identity_hash() for r in _run(work, workload)}
    after = {r.identity_hash() for r in _run(work, {**workload, **changed})}
    assert before and after and before.isdisjoint(after)


@pytest.mark.parametrize("name", sorted(NO_NUMBER_PROBES))
def test_a_setting_that_cannot_change_a_number_keeps_identity_and_metrics(work, name):
    workload, changed = NO_NUMBER_PROBES[name](work)
    before = {r.identity_hash(): r.metrics for r in _run(work, workload)}
    after = {r.identity_hash(): r.metrics for r in _run(work, {**workload, **changed})}
    assert before == after and before


def test_a_shorter_max_length_does_not_replace_the_full_length_result(work):
    out = work["tmp"] / "results"
    full = _run(work, {**work["beir"], "results_dir": out})[0]
    short = _run(work, {**work["beir"], "results_dir": out, "max_length": 2})[0]
    assert full.variant == {} and short.variant == {"max_length": 2}
    assert short.metrics != full.metrics  # the cut really changed the number
    assert sorted(str(r.variant.get("max_length")) for r in read_results(out)) == ["2", "None"]


def test_a_cuda_fp16_result_records_its_dtype_and_keeps_the_cpu_one(work):
    out = work["tmp"] / "results"
    cpu = _run(work, {**work["beir"], "results_dir": out})[0]
    cuda = _run(work, {**work["beir"], "results_dir": out, "device": "cuda"})[0]
    assert "dtype" not in cpu.variant and cuda.variant["dtype"] == "float16"
    assert cpu.provenance.dtype == "float32" and cuda.provenance.dtype == "float16"
    assert len(read_results(out)) == 2


def test_max_length_with_an_encoder_object_is_an_error(fake_encoder, beir_dir, tmp_path):
    # The object was built by the caller: a max_length here would be recorded but never applied.
    with pytest.raises(EmbedbenchError, match="max_length applies to models embedbench loads by name"):
        evaluate(fake_encoder, dataset=f"beir:{beir_dir}", max_length=8, results_dir=tmp_path / "r")
    assert not (tmp_path / "r").exists()

