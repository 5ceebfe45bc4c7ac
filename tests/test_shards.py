"""Sharded exact search: the same rankings (indices and scores) as the in-memory search, ties included."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from embedbench.scoring.precision import Encoded
from embedbench.scoring.retrieval import search_encoded
from embedbench.scoring.shards import merge_topk, search_sharded, shards_of


def _tied_rows(rng: np.random.Generator, n: int, d: int, distinct: int, values: np.ndarray) -> np.ndarray:
    """n rows drawn from ``distinct`` rows of ``values``: many duplicate rows, many equal scores."""
    pool = rng.choice(values, size=(distinct, d))
    return pool[rng.integers(0, distinct, n)]


def _fp32(rng, nq, n, d, distinct) -> Encoded:
    # Small integers: every kernel computes their dot products exactly, so ties are real ties.
    values = np.arange(-2, 3, dtype=np.float32)
    q = _tied_rows(rng, nq, d, max(1, distinct // 2), values)
    return Encoded(q, _tied_rows(rng, n, d, distinct, values), "fp32", "none", d, 4 * d)


def _binary(rng, nq, n, d, distinct) -> Encoded:
    bits = np.array([0, 1], dtype=np.uint8)
    q = np.packbits(_tied_rows(rng, nq, d, max(1, distinct // 2), bits), axis=1)
    x = np.packbits(_tied_rows(rng, n, d, distinct, bits), axis=1)
    return Encoded(q, x, "binary", "posthoc", d, (d + 7) // 8)


def _two_stage(rng, nq, n, d, distinct, depth: int, second_kind: str) -> Encoded:
    first = _binary(rng, nq, n, d, distinct)
    dup = rng.integers(0, distinct, n)  # second-stage rows duplicated like the codes: ties in both stages
    if second_kind == "int8":
        vecs = rng.integers(-128, 128, (distinct, d)).astype(np.int8)
        q2 = rng.integers(-128, 128, (nq, d)).astype(np.int8)
    else:
        vecs = rng.standard_normal((distinct, d)).astype(np.float32)
        q2 = rng.standard_normal((nq, d)).astype(np.float32)
    second = Encoded(q2, vecs[dup], second_kind, "none", d, d)
    return Encoded(first.queries, first.docs, "binary", "posthoc", d, first.bytes_per_vector, second, depth)


def _shard_sizes(n: int) -> list[int]:
    return sorted({1, 7, max(1, n // 3), n})


def _assert_same_as_in_memory(enc: Encoded, k: int) -> None:
    want_s, want_i = search_encoded(enc, k)
    for size in _shard_sizes(enc.docs.shape[0]):
        got_s, got_i = search_sharded(enc, shards_of(enc, size), k)
        assert got_i.dtype == want_i.dtype and got_s.dtype == want_s.dtype
        np.testing.assert_array_equal(got_i, want_i, err_msg=f"indices, shard size {size}")
        np.testing.assert_array_equal(got_s, want_s, err_msg=f"scores, shard size {size}")


_shape = dict(
    seed=st.integers(0, 2**32 - 1),
    nq=st.integers(1, 20),  # from 16 queries the dense search takes faiss's kernel
    n=st.integers(1, 80),
    d=st.integers(1, 24),
    distinct=st.integers(1, 6),
    k=st.integers(1, 30),
)


@settings(max_examples=40, deadline=None)
@given(**_shape)
def test_dense_fp32_sharded_equals_in_memory(seed, nq, n, d, distinct, k):
    _assert_same_as_in_memory(_fp32(np.random.default_rng(seed), nq, n, d, distinct), k)


@settings(max_examples=40, deadline=None)
@given(**_shape)
def test_binary_hamming_sharded_equals_in_memory(seed, nq, n, d, distinct, k):
    _assert_same_as_in_memory(_binary(np.random.default_rng(seed), nq, n, d, distinct), k)


@settings(max_examples=40, deadline=None)
@given(**_shape, depth=st.integers(1, 40), second_kind=st.sampled_from(["fp32", "int8"]))
def test_two_stage_sharded_equals_in_memory(seed, nq, n, d, distinct, k, depth, second_kind):
    rng = np.random.default_rng(seed)
    _assert_same_as_in_memory(_two_stage(rng, nq, n, d, distinct, depth, second_kind), k)


def test_large_k_and_both_dense_kernels():
    # k >= 100 is where faiss's own selection among ties stops being index-ordered.
    rng = np.random.default_rng(7)
    for nq in (3, 20):
        _assert_same_as_in_memory(_fp32(rng, nq, 400, 16, 5), 120)
    _assert_same_as_in_memory(_two_stage(rng, 20, 400, 16, 5, 150, "fp32"), 120)


def test_merge_keeps_lower_index_among_equal_scores():
    # Shard B (indices 10, 11) comes first but ties go to the lower global index, whatever the part order.
    a = (np.array([[0.5, 0.25]], np.float32), np.array([[3, 4]]))
    b = (np.array([[0.5, 0.5]], np.float32), np.array([[10, 11]]))
    s, i = merge_topk([b, a], 3)
    np.testing.assert_array_equal(i, [[3, 10, 11]])
    np.testing.assert_array_equal(s, [[0.5, 0.5, 0.5]])


def test_shards_in_any_order_give_the_same_ranking():
    enc = _fp32(np.random.default_rng(0), 4, 50, 8, 3)
    want = search_encoded(enc, 10)
    got = search_sharded(enc, reversed(list(shards_of(enc, 7))), 10)
    np.testing.assert_array_equal(got[1], want[1])
    np.testing.assert_array_equal(got[0], want[0])


def test_bad_input():
    enc = _fp32(np.random.default_rng(0), 2, 10, 4, 3)
    with pytest.raises(ValueError, match="empty corpus"):
        search_sharded(enc, [], 5)
    with pytest.raises(ValueError, match="k must be positive"):
        search_sharded(enc, shards_of(enc, 3), 0)
    with pytest.raises(ValueError, match="shard size"):
        list(shards_of(enc, 0))
    other = _binary(np.random.default_rng(0), 2, 10, 4, 3)
    with pytest.raises(ValueError, match="does not match"):
        search_sharded(enc, shards_of(other, 5), 5)
