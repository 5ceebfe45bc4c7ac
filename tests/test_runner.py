"""The engine end to end on a tiny BEIR folder with a fake encoder (no model download, fast)."""

from __future__ import annotations

import json

import pytest

from embedbench.errors import EmbedbenchError
from embedbench.results import read_per_query, read_results
from embedbench.engine.runner import evaluate


def test_eval_writes_one_result_per_precision_and_dim(fake_encoder, beir_dir, tmp_path):
    out = tmp_path / "results"
    results = evaluate(fake_encoder, dataset=f"beir:{beir_dir}", precisions="fp32,int8,binary", dims=[32, 16],
                       results_dir=out)
    assert sorted((r.precision, r.dim) for r in results) == sorted(
        (p, d) for p in ("fp32", "int8", "binary") for d in (32, 16))
    assert {r.quantization for r in results} == {"none", "posthoc"}
    by = {(r.precision, r.dim): r for r in results}
    assert by[("fp32", 32)].bytes_per_vector == 128
    assert by[("int8", 16)].bytes_per_vector == 16
    assert by[("binary", 32)].bytes_per_vector == 4
    assert by[("fp32", 32)].main_score > 0.5  # queries share rare words with their document; random ~0.1
    stored = read_results(out)
    assert len(stored) == 6
    per_query = read_per_query(out, stored[0])
    assert set(per_query["ndcg_at_10"]) == {f"q{i}" for i in range(12)}


def test_a_sweep_encodes_each_text_once(fake_encoder, beir_dir, tmp_path):
    evaluate(fake_encoder, dataset=f"beir:{beir_dir}", precisions="fp32,int8,binary", dims=[32, 16, 8],
             results_dir=tmp_path / "r")
    assert len(fake_encoder.calls) == 40 + 12
    assert len(set(fake_encoder.calls)) == len(fake_encoder.calls)
    evaluate(fake_encoder, dataset=f"beir:{beir_dir}", precisions="binary", dims=[4], results_dir=tmp_path / "r")
    assert len(fake_encoder.calls) == 52  # the second run reads everything from the cache


def test_rerunning_an_identity_replaces_it(fake_encoder, beir_dir, tmp_path):
    out = tmp_path / "results"
    evaluate(fake_encoder, dataset=f"beir:{beir_dir}", results_dir=out)
    evaluate(fake_encoder, dataset=f"beir:{beir_dir}", results_dir=out)
    assert len(read_results(out)) == 1


def test_limit_queries_is_a_seeded_sample_and_part_of_the_variant(fake_encoder, beir_dir, tmp_path):
    out = tmp_path / "results"
    full = evaluate(fake_encoder, dataset=f"beir:{beir_dir}", results_dir=out)[0]
    part = evaluate(fake_encoder, dataset=f"beir:{beir_dir}", limit_queries=5, results_dir=out)[0]
    again = evaluate(fake_encoder, dataset=f"beir:{beir_dir}", limit_queries=5, results_dir=out)[0]
    assert part.n_queries == 5 and full.n_queries == 12
    assert part.variant == {"limit_queries": 5}
    assert part.metrics == again.metrics
    assert len(read_results(out)) == 2  # the partial result did not replace the full one


def test_provenance_is_recorded(fake_encoder, beir_dir, tmp_path):
    r = evaluate(fake_encoder, dataset=f"beir:{beir_dir}", results_dir=tmp_path / "r", command=["x"])[0]
    p = r.provenance
    assert p.model_fingerprint == "fake-32"
    assert len(p.dataset_hash) == 16
    assert p.command == ["x"]
    assert p.texts_encoded == 52 and p.texts_cached == 0
    assert "numpy" in p.packages and p.batch_size == 32


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"precisions": "fp64"}, "precision"),
        ({"dims": [64]}, "larger than the model's dimension"),
        ({"limit_queries": 0}, "limit-queries"),
        ({"suite": "no-such-suite"}, "unknown suite"),
    ],
)
def test_bad_input_raises_and_writes_nothing(fake_encoder, beir_dir, tmp_path, kwargs, message):
    out = tmp_path / "results"
    with pytest.raises(EmbedbenchError, match=message):
        evaluate(fake_encoder, dataset=f"beir:{beir_dir}", results_dir=out, **kwargs)
    assert not out.exists()


def test_bad_dataset_in_a_later_task_writes_nothing(fake_encoder, beir_dir, tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "corpus.jsonl").write_text(json.dumps({"_id": "a", "text": "x"}) + "\n")
    (bad / "queries.jsonl").write_text(json.dumps({"_id": "q", "text": "x"}) + "\n")
    (bad / "qrels").mkdir()
    (bad / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq\tmissing\t1\n")
    out = tmp_path / "results"
    with pytest.raises(EmbedbenchError, match="missing"):
        evaluate(fake_encoder, dataset=[f"beir:{beir_dir}", f"beir:{bad}"], results_dir=out)
    assert not out.exists()


def test_nan_embeddings_are_an_error(beir_dir, tmp_path):
    from conftest import FakeEncoder

    class NaNEncoder(FakeEncoder):
        def encode_documents(self, texts):
            v = super().encode_documents(texts)
            v[0, 0] = float("nan")
            return v

    with pytest.raises(EmbedbenchError, match="NaN"):
        evaluate(NaNEncoder(), dataset=f"beir:{beir_dir}", results_dir=tmp_path / "r")
    assert not (tmp_path / "r").exists()


# ------------------------------------------------- run settings (issue 13 item 2, issues 14 and 15)

def test_index_specs_are_kept_as_given_and_a_bad_one_stops_the_run_before_loading(fake_encoder, beir_dir, tmp_path):
    from embedbench.engine.runner import index_specs

    assert index_specs(None) == ("exact",)
    assert index_specs(" exact, hnsw:m=32:ef=256") == ("exact", "hnsw:m=32:ef=256")
    assert index_specs(["sq8", "exact,ivf:nlist=8:nprobe=2"]) == ("sq8", "exact", "ivf:nlist=8:nprobe=2")
    out = tmp_path / "results"
    with pytest.raises(EmbedbenchError, match="unknown index kind 'annoy'"):
        evaluate(fake_encoder, dataset=f"beir:{beir_dir}", index="exact,annoy", results_dir=out)
    assert not out.exists() and fake_encoder.calls == []


@pytest.mark.parametrize("kwargs, message", [({"rerank_with": "colbert"}, "unknown model 'colbert'"),
                                              ({"rerank_depth": 0}, "--rerank-depth must be at least 1"),
                                              ({"dtype": "fp64"}, "dtype must be one of auto, fp32, bf16, fp16")])
def test_rerank_and_dtype_are_checked_before_anything_loads(kwargs, message, fake_encoder, beir_dir, tmp_path):
    with pytest.raises(EmbedbenchError, match=message):
        evaluate(fake_encoder, dataset=f"beir:{beir_dir}", results_dir=tmp_path / "r", **kwargs)
    assert not (tmp_path / "r").exists() and fake_encoder.calls == []


def test_dtype_index_and_rerank_settings_reach_the_run(fake_encoder, beir_dir, tmp_path, monkeypatch):
    import embedbench.engine.context as engine_context
    import embedbench.engine.plan as engine_plan
    import embedbench.engine.runner as runner

    seen = {}
    monkeypatch.setattr(engine_plan, "check_model_ref", lambda ref: None)
    monkeypatch.setattr(engine_context, "load_model", lambda ref, settings: seen.setdefault("settings", settings)
                        and fake_encoder)
    monkeypatch.setattr(runner, "score_tasks", lambda run, planned: seen.setdefault("run", run) and iter(()))
    evaluate("by-name", dataset=f"beir:{beir_dir}", dtype="bf16", index="exact,sq8", rerank_depth=7,
             results_dir=tmp_path / "r")
    assert seen["settings"].dtype == "bf16" and seen["settings"].show_progress
    run = seen["run"]
    assert run.indexes == ("exact", "sq8") and run.rerank_depth == 7 and run.rerank_with is None
    assert not run.multi_vector


def test_a_multi_vector_model_is_scored_by_the_late_interaction_step(beir_dir, tmp_path, monkeypatch):
    import dataclasses
    import sys
    import types

    import embedbench.engine.runner as runner
    from conftest import FakeEncoder

    late = types.ModuleType("embedbench.engine.late")
    late.score_multi_vector = lambda run, q: iter(late.calls.append((run.model_name, len(q.qids))) or ())
    late.calls = []
    monkeypatch.setitem(sys.modules, "embedbench.engine.late", late)
    monkeypatch.setattr(runner, "score_dense", lambda run, q: pytest.fail("a multi-vector model reached dense search"))
    encoder = FakeEncoder()
    encoder.meta = dataclasses.replace(encoder.meta, kind="multi-vector")
    evaluate(encoder, dataset=[f"beir:{beir_dir}", f"beir:{beir_dir}"], limit_queries=5, results_dir=tmp_path / "r")
    assert late.calls == [("fake", 5), ("fake", 5)]


def test_each_task_logs_a_progress_line_as_it_starts(fake_encoder, beir_dir, tmp_path, caplog):
    with caplog.at_level("INFO", logger="embedbench"):
        evaluate(fake_encoder, dataset=[f"beir:{beir_dir}", f"beir:{beir_dir}"], limit_queries=5,
                 results_dir=tmp_path / "r")
    lines = [r.getMessage() for r in caplog.records if r.name == "embedbench.run"]
    assert lines == [f"task {i}/2: tiny-beir (en, test, 40 docs, 5 queries)" for i in (1, 2)]


def test_the_suite_loading_bar_follows_the_embedbench_logger(beir_dir, tmp_path, capsys):
    import logging

    from embedbench.engine.plan import plan_tasks, task_refs

    suite = tmp_path / "two.yaml"
    suite.write_text(f"name: two\ntasks:\n  - {{name: A, loader: beir, path: {beir_dir}}}\n"
                     f"  - {{name: B, loader: beir, path: {beir_dir}}}\n")
    refs = task_refs(str(suite), None)
    assert [p.spec.name for p in plan_tasks(refs, None, tmp_path, None)] == ["A", "B"]
    assert "loading suite two" in capsys.readouterr().err
    logging.getLogger("embedbench").setLevel(logging.WARNING)  # what `embedbench -q` does
    try:
        plan_tasks(refs, None, tmp_path, None)
    finally:
        logging.getLogger("embedbench").setLevel(logging.NOTSET)
    assert capsys.readouterr().err == ""
