"""Precisions derived from cached float32 vectors: parsing, codes, storage, search."""

from __future__ import annotations

import numpy as np
import pytest

from embedbench.errors import EmbedbenchError, ModelError
from embedbench.scoring.precision import (
    PRECISIONS,
    VALID_PRECISIONS,
    Encoded,
    PrecisionSpec,
    apply_precision,
    bytes_per_vector,
    calibrate_int8,
    check_dims,
    parse_precisions,
    to_binary_posthoc,
    to_int8_posthoc,
    truncate,
)
from embedbench.scoring.retrieval import search_encoded


def _random(n: int, d: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)


def _spec(name: str) -> PrecisionSpec:
    return parse_precisions(name)[0]


def _st_quantize():
    """sentence-transformers' quantize_embeddings, wherever this version keeps it."""
    try:
        from sentence_transformers.util.quantization import quantize_embeddings
    except ImportError:
        try:
            from sentence_transformers.quantization import quantize_embeddings
        except ImportError:
            pytest.skip("sentence-transformers has no quantize_embeddings")
    return quantize_embeddings


# ------------------------------------------------------------------------------ parsing


def test_parse_precisions_canonical_dedup_in_order():
    specs = parse_precisions(" FP32, int8,binary ,int8,binary:posthoc,fp32")
    assert [s.name for s in specs] == ["fp32", "int8", "binary", "binary:posthoc"]
    assert specs[1] == PrecisionSpec("int8", "int8", False)
    assert specs[3] == PrecisionSpec("binary:posthoc", "binary", True)
    assert parse_precisions("int8:posthoc")[0].force_posthoc is True
    assert all(parse_precisions(v)[0].name == v for v in VALID_PRECISIONS)


@pytest.mark.parametrize("text", ["fp8", "int4", "fp32,bf16", "binary:native", "", " , "])
def test_parse_precisions_rejects_unknown_and_lists_the_valid_ones(text):
    with pytest.raises(EmbedbenchError) as err:
        parse_precisions(text)
    msg = str(err.value)
    for valid in ("fp32", "fp16", "int8", "binary", "int8:posthoc", "binary:posthoc"):
        assert valid in msg


def test_the_spec_table_lists_every_valid_precision_once_with_its_stages():
    assert VALID_PRECISIONS == tuple(PRECISIONS)
    assert PRECISIONS["binary+int8"].stages == ("binary", "int8")
    assert PRECISIONS["int8:posthoc"].stages == ("int8",) and PRECISIONS["int8:posthoc"].force_posthoc


@pytest.mark.parametrize("d", [1, 7, 8, 100, 384])
def test_bytes_per_vector_rule_matches_what_apply_precision_stores(d):
    assert [bytes_per_vector(k, d) for k in ("fp32", "fp16", "int8", "binary")] == [4 * d, 2 * d, d, -(-d // 8)]
    q, x = _random(2, d, 1), _random(5, d, 2)
    for spec in PRECISIONS.values():
        enc = apply_precision(spec, q, x, None, {})
        stored = enc.docs.nbytes // len(x) + (enc.rescore.docs.nbytes // len(x) if enc.rescore else 0)
        assert enc.bytes_per_vector == spec.bytes_per_vector(d) == stored, spec.name


def test_check_dims_orders_dedups_and_refuses_bad_or_too_large_dims():
    assert check_dims(None) == [None] and check_dims([]) == [None]
    assert check_dims([128, 64, 128, np.int64(32)]) == [128, 64, 32]
    for bad in (0, -3, True, 64.0, "64"):
        with pytest.raises(EmbedbenchError, match="dims must be positive integers"):
            check_dims([bad])
    with pytest.raises(EmbedbenchError, match="larger than the model's dimension 64"):
        check_dims([32, 128], model_dim=64)
    assert check_dims([64], model_dim=64) == [64]


# ------------------------------------------------------------------------------ transforms


def test_truncate_takes_leading_columns_and_refuses_to_grow():
    x = _random(4, 10, 0)
    t = truncate(x, 6)
    np.testing.assert_array_equal(t, x[:, :6])
    assert np.shares_memory(t, x)
    assert truncate(x, None) is x
    with pytest.raises(EmbedbenchError):
        truncate(x, 11)
    with pytest.raises(EmbedbenchError):
        truncate(x, 0)


def test_int8_posthoc_matches_sentence_transformers():
    quantize = _st_quantize()
    docs = _random(500, 40, 1) * np.linspace(0.1, 3, 40, dtype=np.float32)
    docs[:, 7] = 0.25  # a zero-range dimension
    queries = _random(60, 40, 2) * 2.0  # partly outside the corpus range: clipped
    starts, steps = calibrate_int8(docs)
    for x in (docs, queries):
        ours = to_int8_posthoc(x, starts, steps)
        theirs = np.asarray(quantize(x, precision="int8", calibration_embeddings=docs))
        assert ours.dtype == np.int8
        np.testing.assert_array_equal(ours, theirs)
    assert to_int8_posthoc(queries, starts, steps).min() == -128
    assert to_int8_posthoc(queries, starts, steps).max() == 127


def test_calibration_of_constant_dimensions_does_not_divide_by_zero():
    docs = np.ones((10, 3), np.float32)
    with np.errstate(all="raise"):
        starts, steps = calibrate_int8(docs)
        codes = to_int8_posthoc(docs, starts, steps)
    assert np.all(steps == 1)
    assert np.all(codes == -128)


def test_binary_posthoc_bits_are_x_greater_than_zero_packed():
    x = _random(30, 21, 3)
    x[0, :5] = 0.0  # zero is not a set bit
    bits = to_binary_posthoc(x)
    assert bits.dtype == np.bool_
    enc = apply_precision(_spec("binary"), x, x, None, {})
    np.testing.assert_array_equal(enc.docs, np.packbits(x > 0, axis=1))
    assert enc.docs.dtype == np.uint8 and enc.docs.shape == (30, 3)
    quantize = _st_quantize()
    np.testing.assert_array_equal(enc.docs, quantize(x, precision="ubinary"))


# ------------------------------------------------------------------------------ apply_precision


@pytest.mark.parametrize("dim,expected", [
    (None, {"fp32": 400, "fp16": 200, "int8": 100, "binary": 13}),
    (64, {"fp32": 256, "fp16": 128, "int8": 64, "binary": 8}),
    (13, {"fp32": 52, "fp16": 26, "int8": 13, "binary": 2}),
])
def test_bytes_per_vector_per_kind(dim, expected):
    q, x = _random(5, 100, 4), _random(50, 100, 5)
    for name, nbytes in expected.items():
        enc = apply_precision(_spec(name), q, x, dim, {})
        assert enc.bytes_per_vector == nbytes
        assert enc.dim == (dim or 100)
        assert enc.kind == name
        stored = enc.docs.shape[1] * enc.docs.dtype.itemsize
        assert stored == nbytes


def test_quantization_label_and_native_quantizers():
    q, x = _random(5, 16, 6), _random(40, 16, 7)
    calls = []

    def native_int8(v):
        calls.append(v.shape)
        return np.clip(np.rint(v * 40), -128, 127).astype(np.int8)

    def native_binary(v):
        return v > 0.5

    native = {"int8": native_int8, "binary": native_binary}
    assert apply_precision(_spec("fp32"), q, x, None, native).quantization == "none"
    assert apply_precision(_spec("fp16"), q, x, None, native).quantization == "none"
    enc = apply_precision(_spec("int8"), q, x, 8, native)
    assert enc.quantization == "native" and calls == [(5, 8), (40, 8)]  # truncated first
    np.testing.assert_array_equal(enc.docs, native_int8(x[:, :8]))
    post = apply_precision(_spec("int8:posthoc"), q, x, 8, native)
    assert post.quantization == "posthoc"
    starts, steps = calibrate_int8(x[:, :8])  # calibrated on the truncated corpus
    np.testing.assert_array_equal(post.docs, to_int8_posthoc(x[:, :8], starts, steps))
    np.testing.assert_array_equal(post.queries, to_int8_posthoc(q[:, :8], starts, steps))
    assert apply_precision(_spec("int8"), q, x, None, {}).quantization == "posthoc"
    b = apply_precision(_spec("binary"), q, x, None, native)
    assert b.quantization == "native"
    np.testing.assert_array_equal(b.docs, np.packbits(x > 0.5, axis=1))
    assert apply_precision(_spec("binary:posthoc"), q, x, None, native).quantization == "posthoc"


def test_native_quantizer_returning_the_wrong_type_is_a_model_error():
    q, x = _random(2, 8, 8), _random(5, 8, 9)
    with pytest.raises(ModelError):
        apply_precision(_spec("int8"), q, x, None, {"int8": lambda v: v.astype(np.int16)})
    with pytest.raises(ModelError):
        apply_precision(_spec("binary"), q, x, None, {"binary": lambda v: v})
    with pytest.raises(ModelError):
        apply_precision(_spec("int8"), q, x, None, {"int8": lambda v: v[:, :4].astype(np.int8)})


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("where", ["queries", "docs"])
def test_nan_or_inf_embeddings_are_rejected(bad, where):
    q, x = _random(3, 8, 10), _random(6, 8, 11)
    (q if where == "queries" else x)[1, 3] = bad
    for name in ("fp32", "int8", "binary"):
        with pytest.raises(EmbedbenchError, match="NaN"):
            apply_precision(_spec(name), q, x, None, {})


def test_mismatched_dimensions_are_rejected():
    with pytest.raises(EmbedbenchError):
        apply_precision(_spec("fp32"), _random(2, 8, 0), _random(3, 9, 0), None, {})


# ------------------------------------------------------------------------------ search


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a.astype(np.float64)
    b = b.astype(np.float64)
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return a @ b.T


def _check_ranking(scores, idx, full):
    """scores are the k best of `full` in order and the ids carry them."""
    k = scores.shape[1]
    np.testing.assert_allclose(scores, -np.sort(-full, axis=1)[:, :k], atol=1e-5)
    np.testing.assert_allclose(scores, np.take_along_axis(full, idx, 1), atol=1e-5)


def test_fp32_and_fp16_search_is_cosine():
    q, x = _random(20, 48, 12) * 3, _random(700, 48, 13) * 0.2
    full = _cosine(q, x)
    s32, i32 = search_encoded(apply_precision(_spec("fp32"), q, x, None, {}), 50)
    _check_ranking(s32, i32, full)
    enc16 = apply_precision(_spec("fp16"), q, x, None, {})
    assert enc16.docs.dtype == np.float16
    s16, i16 = search_encoded(enc16, 50)
    assert s16.dtype == np.float32
    full16 = enc16.queries.astype(np.float32).astype(np.float64) @ enc16.docs.astype(np.float64).T
    _check_ranking(s16, i16, full16)  # the float32 of the fp16 values
    np.testing.assert_allclose(s16, s32, atol=2e-3)


def test_truncated_fp32_search_uses_the_first_dims():
    q, x = _random(10, 64, 14), _random(300, 64, 15)
    s, i = search_encoded(apply_precision(_spec("fp32"), q, x, 16, {}), 20)
    _check_ranking(s, i, _cosine(q[:, :16], x[:, :16]))


def test_int8_search_is_cosine_of_the_codes():
    q, x = _random(15, 32, 16), _random(400, 32, 17)
    enc = apply_precision(_spec("int8"), q, x, None, {})
    assert enc.docs.dtype == np.int8
    s, i = search_encoded(enc, 40)
    _check_ranking(s, i, _cosine(enc.queries, enc.docs))


@pytest.mark.parametrize("d", [64, 100])
def test_binary_search_score_is_plus_minus_one_cosine(d):
    q, x = _random(12, d, 18), _random(500, d, 19)
    enc = apply_precision(_spec("binary"), q, x, None, {})
    s, i = search_encoded(enc, 500)
    cos = np.where(q > 0, 1.0, -1.0) @ np.where(x > 0, 1.0, -1.0).T / d
    ids = np.broadcast_to(np.arange(len(x)), cos.shape)
    order = np.lexsort((ids, -cos), axis=1)  # ties: lower index first
    np.testing.assert_array_equal(i, order)
    np.testing.assert_allclose(s, np.take_along_axis(cos, order, 1), atol=1e-6)


@pytest.mark.parametrize("name", ["fp32", "fp16", "int8"])
def test_duplicate_documents_tie_to_the_lower_index(name):
    rng = np.random.default_rng(20)
    pool = rng.standard_normal((5, 24)).astype(np.float32)
    pid = rng.integers(0, 5, 3000)
    x = pool[pid]
    q = rng.standard_normal((8, 24)).astype(np.float32)
    enc = apply_precision(_spec(name), q, x, None, {})
    _, i = search_encoded(enc, 100)
    rep = [int(np.flatnonzero(pid == p)[0]) for p in range(5)]
    pool_scores = _cosine(enc.queries, enc.docs[rep])  # of the stored values (codes for int8)
    for r in range(len(q)):
        ranked = np.concatenate([np.flatnonzero(pid == p) for p in np.argsort(-pool_scores[r])])
        np.testing.assert_array_equal(i[r], ranked[:100])  # copies of a vector in index order


def test_binary_ties_at_the_cutoff_go_to_the_lower_index():
    rng = np.random.default_rng(21)
    pool = rng.standard_normal((6, 20)).astype(np.float32)
    x = pool[rng.integers(0, 6, 5000)]
    q = rng.standard_normal((25, 20)).astype(np.float32)
    enc = apply_precision(_spec("binary"), q, x, None, {})
    s, i = search_encoded(enc, 300)
    dist = np.bitwise_count(enc.queries[:, None, :] ^ enc.docs[None, :, :]).sum(-1)
    expected = np.argsort(dist, axis=1, kind="stable")[:, :300]
    np.testing.assert_array_equal(i, expected)
    np.testing.assert_allclose(s, 1 - 2 * np.take_along_axis(dist, expected, 1) / 20, atol=1e-6)


def test_search_k_larger_than_corpus_and_encoded_fields():
    q, x = _random(3, 8, 21), _random(4, 8, 22)
    for name in ("fp32", "fp16", "int8", "binary"):
        enc = apply_precision(_spec(name), q, x, None, {})
        assert isinstance(enc, Encoded)
        s, i = search_encoded(enc, 10)
        assert s.shape == i.shape == (3, 4) and s.dtype == np.float32 and i.dtype == np.int64
        assert np.all(np.diff(s, axis=1) <= 1e-7)
