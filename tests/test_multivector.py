"""Multi-vector (late-interaction) models: detected and loaded as such, encoded as the library encodes them,
scored by the library's own MaxSim, and bad input refused with one line.

The tiny models are sentence-transformers' own saves (tests/multivector_fixtures.py): MiniLM from the PyPI wheel
plus a seeded token projection, and a tiny random bidirectional Qwen3 in pplx-embed-v1-late's layout.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from multivector_fixtures import PROMPTS, minilm_path, tiny_multi_vector

from embedbench.encoders.loading import load_model
from embedbench.encoders.protocol import LateInteractionEncoder
from embedbench.encoders.settings import EncodeSettings
from embedbench.errors import EmbedbenchError, ModelError
from embedbench.scoring.maxsim import encode_tokens, maxsim_scores
from embedbench.scoring.precision import PRECISIONS
from embedbench.scoring.token_matrices import TokenMatrices

SETTINGS = EncodeSettings(batch_size=4, show_progress=False)
QUERIES = ["what is the capital of france?", "who wrote hamlet", "speed of light in vacuum"]
DOCUMENTS = ["Paris is the capital and largest city of France.", "Hamlet is a tragedy by William Shakespeare!!!",
             "Light travels at about 299,792 km/s in a vacuum.", "Berlin, Germany.", "..."]


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tiny_multi_vector(tmp_path_factory)


@pytest.fixture(scope="module")
def marked(tmp_path_factory) -> Path:
    return tiny_multi_vector(tmp_path_factory, marked=True)


@pytest.fixture(scope="module")
def library(marked: Path):
    from sentence_transformers import MultiVectorEncoder

    return MultiVectorEncoder(str(marked), device="cpu")


@pytest.fixture(scope="module")
def loaded(marked: Path):
    return load_model(str(marked), SETTINGS)


def test_a_multi_vector_folder_is_loaded_as_one_never_as_dense(folder: Path) -> None:
    encoder = load_model(str(folder), SETTINGS)
    assert isinstance(encoder, LateInteractionEncoder)
    assert encoder.meta.kind == "multi-vector" and encoder.meta.dim == 128 and encoder.meta.pooling == "maxsim"
    assert encoder.meta.encode_settings()["kind"] == "multi-vector"  # never the dense model's cache namespace
    with pytest.raises(ModelError, match="multi-vector"):  # a dense path reaching it stops, scoring nothing
        encoder.encode_documents(["a text"])
    dense = load_model(str(minilm_path()), SETTINGS)  # the same transformer saved as a SentenceTransformer
    assert dense.meta.kind == "dense" and "kind" not in dense.meta.encode_settings()


def test_vectors_are_the_librarys_encode_query_and_encode_document(loaded, library) -> None:
    """Prompts, the punctuation skiplist and token normalization are the library's: the same matrices."""
    assert loaded.meta.prompts == PROMPTS
    mine_q, mine_d = loaded.encode_queries_multi(QUERIES), loaded.encode_documents_multi(DOCUMENTS)
    lib_q = library.encode_query(QUERIES, batch_size=4, convert_to_numpy=True)
    lib_d = library.encode_document(DOCUMENTS, batch_size=4, convert_to_numpy=True)
    for mine, lib in zip(mine_q + mine_d, lib_q + lib_d):
        assert mine.dtype == np.float32 and mine.shape == lib.shape
        np.testing.assert_allclose(mine, lib, rtol=0, atol=1e-6)
    assert len(mine_d[-1]) < len(library.tokenizer("passage: ...")["input_ids"])  # punctuation skipped


def test_maxsim_on_the_models_vectors_equals_the_librarys_similarity(loaded, library) -> None:
    q = TokenMatrices.from_list(loaded.encode_queries_multi(QUERIES))
    d = TokenMatrices.from_list(loaded.encode_documents_multi(DOCUMENTS))
    spec = PRECISIONS["fp32"]
    got = maxsim_scores(encode_tokens(spec, q, None, None, None)[0], encode_tokens(spec, d, None, None, None)[0])
    expected = library.similarity(q.to_list(), d.to_list()).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def _oracle(folder: Path, data) -> tuple[float, float]:
    """(nDCG@10, mean tokens per document) from the library alone: encode_query / encode_document, similarity
    (MaxSim), pytrec_eval."""
    import pytrec_eval
    from sentence_transformers import MultiVectorEncoder

    model = MultiVectorEncoder(str(folder), device="cpu")
    qids, dids = list(data.qrels), list(data.corpus)
    docs = model.encode_document([data.corpus[d].full_text for d in dids], convert_to_numpy=True)
    scores = model.similarity(model.encode_query([data.queries[q].text for q in qids], convert_to_numpy=True), docs)
    run = {q: dict(zip(dids, map(float, row))) for q, row in zip(qids, scores.numpy())}
    per_query = pytrec_eval.RelevanceEvaluator(data.qrels, {"ndcg_cut.10"}).evaluate(run)
    return float(np.mean([v["ndcg_cut_10"] for v in per_query.values()])), float(np.mean([len(d) for d in docs]))


def test_evaluate_scores_the_models_own_maxsim(folder: Path, beir_dir: Path, tmp_path: Path) -> None:
    """The failure this removes: a multi-vector folder scored as a dense model under its own name."""
    import embedbench
    from embedbench.data.beir import load_beir
    from embedbench.results import read_results

    results = embedbench.evaluate(str(folder), dataset=f"beir:{beir_dir}", precisions="fp32,binary",
                                  results_dir=tmp_path / "results", cache_dir=tmp_path / "cache", batch_size=8)
    fp32, binary = results
    ndcg, tokens = _oracle(folder, load_beir(beir_dir))
    assert fp32.model == str(folder) and fp32.dim == 128 and binary.quantization == "posthoc"
    assert fp32.metrics["ndcg_at_10"] == pytest.approx(ndcg, abs=1e-6)
    # Storage per document: mean tokens per document x bytes per token vector (4 x 128 at fp32, 128 / 8 binary).
    assert fp32.bytes_per_vector == round(tokens * 512) and binary.bytes_per_vector == round(tokens * 16)
    assert fp32.pages_per_gb == (1 << 30) // fp32.bytes_per_vector
    assert {r.precision for r in read_results(tmp_path / "results")} == {"fp32", "binary"}


def _cli(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "EMBEDBENCH_CACHE_DIR": str(tmp_path / "cache"), "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "embedbench.cli", "eval", *args, "--results-dir",
                           str(tmp_path / "results")], capture_output=True, text=True, timeout=300, env=env)


def test_cli_refuses_dims_past_the_token_dimension_with_one_line(folder: Path, beir_dir: Path, tmp_path: Path) -> None:
    proc = _cli(["--model", str(folder), "--dataset", f"beir:{beir_dir}", "--dims", "256"], tmp_path)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and "256" in lines[0] and "128" in lines[0], proc.stderr[-2000:]
    assert not (tmp_path / "results").exists() and not (tmp_path / "cache" / "embeddings").exists()


def test_specs_a_multi_vector_model_cannot_apply_are_refused_before_anything_is_written(
        folder: Path, beir_dir: Path, tmp_path: Path) -> None:
    import embedbench

    for precision in ("binary+int8", "binary+fp32"):
        with pytest.raises(EmbedbenchError, match="--rerank-with"):
            embedbench.evaluate(str(folder), dataset=f"beir:{beir_dir}", precisions=f"fp32,{precision}",
                                results_dir=tmp_path / "results", cache_dir=tmp_path / "cache")
    assert not (tmp_path / "results").exists() and not (tmp_path / "cache" / "embeddings").exists()


def test_a_folder_that_pools_is_not_a_multi_vector_pipeline(folder: Path, tmp_path: Path) -> None:
    bad = tmp_path / "pooled"
    shutil.copytree(folder, bad)
    shutil.copytree(minilm_path() / "1_Pooling", bad / "2_Pooling")
    modules = json.loads((bad / "modules.json").read_text())
    modules.append({"idx": 2, "name": "2", "path": "2_Pooling", "type": "sentence_transformers.models.Pooling"})
    (bad / "modules.json").write_text(json.dumps(modules))
    with pytest.raises(ModelError, match="not a multi-vector pipeline"):
        load_model(str(bad), SETTINGS)


def _pplx_late(path: Path) -> Path:
    """A tiny random bidirectional Qwen3 in pplx-embed-v1-late's layout: the pplx-embed repo files (config with
    auto_map, remote code, tokenizer) with a token projection instead of pooling, saved as a MultiVectorEncoder."""
    import torch
    from pplx_fixtures import make_tiny_pplx
    from sentence_transformers.base.modules import Dense

    make_tiny_pplx(path)
    shutil.rmtree(path / "1_Pooling")
    (path / "st_quantize.py").unlink()
    (path / "1_Dense").mkdir()
    with torch.random.fork_rng():
        torch.manual_seed(0)
        Dense(64, 128, bias=False, activation_function=torch.nn.Identity(),
              module_input_name="token_embeddings").save(str(path / "1_Dense"))
    modules = [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.base.modules.transformer.Transformer"},
               {"idx": 1, "name": "1", "path": "1_Dense", "type": "sentence_transformers.base.modules.dense.Dense"}]
    (path / "modules.json").write_text(json.dumps(modules))
    (path / "config_sentence_transformers.json").write_text(json.dumps(
        {"model_type": "MultiVectorEncoder", "prompts": {"query": "", "document": ""}, "default_prompt_name": None,
         "similarity_fn_name": "maxsim"}))
    return path


def test_a_pplx_late_layout_loads_through_the_same_code(tmp_path: Path) -> None:
    from pplx_fixtures import text_of
    from sentence_transformers import MultiVectorEncoder

    path = _pplx_late(tmp_path / "pplx-late")
    with pytest.raises(ModelError, match="--trust-remote-code"):  # its modeling code runs only when allowed
        load_model(str(path), SETTINGS)
    encoder = load_model(str(path), EncodeSettings(batch_size=4, trust_remote_code=True))
    assert encoder.meta.kind == "multi-vector" and encoder.meta.dim == 128
    texts = [text_of(5), "the cat runs to the river", text_of(30, 3)]
    library = MultiVectorEncoder(str(path), device="cpu", trust_remote_code=True)
    for mine, lib in zip(encoder.encode_documents_multi(texts),
                         library.encode_document(texts, batch_size=4, convert_to_numpy=True)):
        np.testing.assert_allclose(mine, lib, rtol=0, atol=1e-5)


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty offline Hugging Face cache that this process reads."""
    from hub_mirrors import offline_hub_cache

    return offline_hub_cache(tmp_path, monkeypatch)


def _files(folder: Path) -> dict[str, Path]:
    return {str(p.relative_to(folder)): p for p in folder.rglob("*") if p.is_file()}


def test_late_interaction_presets_load_from_the_hub_cache_at_their_pins(folder: Path, hub: Path, tmp_path: Path) -> None:
    from hub_mirrors import add_snapshot

    from embedbench.encoders.presets import PRESETS

    pins = {p.name: p for p in PRESETS if p.plugin == "multi-vector"}
    assert {"pplx-embed-v1-late-0.6b", "pplx-embed-v2-late-0.6b"} <= set(pins)
    colbert = pins["colbertv2"]
    add_snapshot(hub, colbert.hub_id, colbert.revision, _files(folder))
    encoder = load_model("colbertv2", SETTINGS)
    assert encoder.meta.kind == "multi-vector" and encoder.meta.fingerprint == f"{colbert.hub_id}@{colbert.revision}"
    # pplx-embed-v1-late ships its modeling code: it runs for the reviewed pin when asked to.
    late = pins["pplx-embed-v1-late-0.6b"]
    add_snapshot(hub, late.hub_id, late.revision, _files(_pplx_late(tmp_path / "pplx-late")))
    encoder = load_model("pplx-embed-v1-late-0.6b", EncodeSettings(batch_size=4, trust_remote_code=True))
    assert encoder.meta.kind == "multi-vector" and encoder.meta.revision == late.revision
    # No reviewed pin: the cache's commit keys it, with a warning.
    small, sha = pins["answerai-colbert-small-v1"], "1" * 40
    assert small.revision is None
    add_snapshot(hub, small.hub_id, sha, _files(folder))
    with pytest.warns(UserWarning, match=sha):
        encoder = load_model("answerai-colbert-small-v1", SETTINGS)
    assert encoder.meta.fingerprint == f"{small.hub_id}@{sha}"


def test_hf_references_to_multi_vector_repos_are_never_pooled(folder: Path, hub: Path) -> None:
    from hub_mirrors import add_snapshot

    sha = "2" * 40
    add_snapshot(hub, "org/tiny-colbert", sha, _files(folder))
    for ref in (f"hf:{folder}", "hf:org/tiny-colbert", f"hf:org/tiny-colbert@{sha}"):
        encoder = load_model(ref, SETTINGS)
        assert encoder.meta.kind == "multi-vector" and encoder.meta.name == ref
    assert encoder.meta.fingerprint == f"org/tiny-colbert@{sha}"
    with pytest.raises(EmbedbenchError, match="pooling"):
        load_model("hf:org/tiny-colbert?pooling=cls", SETTINGS)
    assert load_model(f"hf:{minilm_path()}", SETTINGS).meta.kind == "dense"  # a plain transformers folder: pooled
