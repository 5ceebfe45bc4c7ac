"""Native vs post-hoc quantization side by side, two-stage rescoring, storage accounting."""

from __future__ import annotations

import numpy as np
import pytest

import embedbench
from embedbench.encoders.settings import EncodeSettings
from embedbench.scoring.precision import apply_precision, parse_precisions
from embedbench.scoring.retrieval import exact_overlap, search_encoded


def _random(n: int, d: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)


@pytest.mark.parametrize("second", ["int8", "fp32"])
def test_rescoring_the_whole_corpus_equals_exact_search(second):
    q, d = _random(30, 48, 1), _random(400, 48, 2)
    two_stage = apply_precision(parse_precisions(f"binary+{second}")[0], q, d, None, {}, rescore_depth=400)
    exact = apply_precision(parse_precisions(second)[0], q, d, None, {})
    s1, i1 = search_encoded(two_stage, 50)
    s2, i2 = search_encoded(exact, 50)
    np.testing.assert_array_equal(i1, i2)
    np.testing.assert_allclose(s1, s2, atol=1e-6)
    assert exact_overlap(two_stage, i1).min() == 1.0


def test_shallow_rescoring_loses_recall_and_says_how_much():
    q, d = _random(30, 48, 3), _random(2000, 48, 4)
    shallow = apply_precision(parse_precisions("binary+fp32")[0], q, d, None, {}, rescore_depth=10)
    _, idx = search_encoded(shallow, 10)
    overlap = exact_overlap(shallow, idx)
    assert 0.0 < overlap.mean() < 1.0


def test_two_stage_storage_counts_both_stages():
    q, d = _random(2, 64, 5), _random(10, 64, 6)
    enc = apply_precision(parse_precisions("binary+int8")[0], q, d, None, {})
    assert enc.bytes_per_vector == 64 // 8 + 64


def test_hamming_ranking_equals_plus_minus_one_cosine():
    q, d = _random(20, 64, 7), _random(300, 64, 8)
    binary = apply_precision(parse_precisions("binary")[0], q, d, None, {})
    scores, idx = search_encoded(binary, 300)
    signs_q, signs_d = np.where(q > 0, 1.0, -1.0), np.where(d > 0, 1.0, -1.0)
    cosine = signs_q @ signs_d.T / 64
    for r in range(len(q)):
        np.testing.assert_allclose(scores[r], cosine[r, idx[r]], atol=1e-6)
        assert np.all(np.diff(scores[r]) <= 1e-7)


def test_native_and_posthoc_int8_differ_on_a_pplx_checkpoint_and_results_say_which(tmp_path, beir_dir):
    from pplx_fixtures import make_tiny_pplx

    from embedbench.encoders.loading import load_model

    folder = make_tiny_pplx(tmp_path / "checkpoint-10")
    model = load_model(str(folder), EncodeSettings())
    x = model.encode_documents(["alpha beta gamma", "delta epsilon", "zeta eta theta iota"])
    native = model.meta.native_quantizers["int8"](x)
    posthoc = apply_precision(parse_precisions("int8:posthoc")[0], x, x, None, model.meta.native_quantizers)
    np.testing.assert_array_equal(native, np.clip(np.rint(np.tanh(x) * 127), -128, 127).astype(np.int8))
    assert not np.array_equal(native.astype(np.float32), posthoc.docs)  # different codes
    results = embedbench.evaluate(str(folder), dataset=f"beir:{beir_dir}",
                                  precisions="fp32,int8,int8:posthoc,binary,binary:posthoc",
                                  results_dir=tmp_path / "r")
    by = {r.precision: r for r in results}
    assert by["int8"].quantization == "native" and by["int8:posthoc"].quantization == "posthoc"
    assert by["binary"].quantization == "native" and by["binary:posthoc"].quantization == "posthoc"
    assert by["fp32"].quantization == "none" and "before" in by["fp32"].provenance.float_note
    d = x.shape[1]  # the storage cost follows from the model's dimension, not from the result's own fields
    assert (by["fp32"].bytes_per_vector, by["int8"].bytes_per_vector, by["binary"].bytes_per_vector) == (
        4 * d, d, (d + 7) // 8)
    assert by["int8"].pages_per_gb == (1 << 30) // d


def test_rescoring_results_carry_depth_and_overlap(fake_encoder, beir_dir, tmp_path):
    results = embedbench.evaluate(fake_encoder, dataset=f"beir:{beir_dir}", precisions="binary,binary+int8",
                                  rescore_depth=12, results_dir=tmp_path / "r")
    by = {r.precision: r for r in results}
    assert by["binary+int8"].variant == {"rescore_depth": 12}
    assert by["binary"].variant == {}
    assert by["binary+int8"].bytes_per_vector == 4 + 32
    # Re-ranking every document (depth = the 40 documents) keeps the whole exact int8 top 10.
    (full,) = embedbench.evaluate(fake_encoder, dataset=f"beir:{beir_dir}", precisions="binary+int8",
                                  rescore_depth=40, write=False)
    assert full.metrics["rescore_overlap_at_10"] == 1.0
