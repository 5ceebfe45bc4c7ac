"""Exact top-k search: brute-force equality, kernel agreement, ties, bounded memory."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from embedbench.scoring.search import choose_dense_kernel, default_block_size, search_dense, search_hamming

KERNELS = ("torch", "faiss")


def _brute_dense(q: np.ndarray, x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Reference: float64 scores, order (score desc, index asc), first min(k, n)."""
    s = q.astype(np.float64) @ x.astype(np.float64).T
    ids = np.broadcast_to(np.arange(x.shape[0]), s.shape)
    order = np.lexsort((ids, -s), axis=1)[:, :k]
    return np.take_along_axis(s, order, 1), order


def _brute_hamming(q: np.ndarray, x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    dist = np.bitwise_count(q[:, None, :] ^ x[None, :, :]).sum(-1, dtype=np.int64)
    order = np.argsort(dist, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(dist, order, 1), order


def _integer_data(rng, nq, n, d, distinct=None):
    """Small-integer vectors: every kernel computes their dot products exactly, so ties
    are real ties and rankings must match the reference exactly."""
    pool = rng.integers(-3, 4, (distinct or n, d)).astype(np.float32)
    x = pool[rng.integers(0, len(pool), n)] if distinct else pool
    q = rng.integers(-3, 4, (nq, d)).astype(np.float32)
    return q, x


# (nq, n, d, k, block): n < k, n not a multiple of the block, block of 1, single query,
# the docs-major/query-major switch (16), more queries than one chunk would hold here.
SHAPES = [
    (1, 50, 8, 100, None),
    (3, 1000, 16, 10, 333),
    (16, 777, 5, 50, 100),
    (17, 777, 5, 50, 100),
    (40, 2500, 24, 200, 1024),
    (25, 300, 12, 7, 1),
    (5, 1, 4, 3, None),
    (64, 5000, 32, 1000, 1500),
]


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("nq,n,d,k,block", SHAPES)
def test_dense_equals_brute_force_exactly_on_integer_data(kernel, nq, n, d, k, block):
    rng = np.random.default_rng(nq * 1000 + n + d)
    q, x = _integer_data(rng, nq, n, d, distinct=max(1, n // 7))  # many exact ties
    s, i = search_dense(q, x, k, block_size=block, kernel=kernel)
    es, ei = _brute_dense(q, x, k)
    assert s.dtype == np.float32 and i.dtype == np.int64
    assert s.shape == i.shape == (nq, min(k, n))
    np.testing.assert_array_equal(i, ei)
    np.testing.assert_array_equal(s, es.astype(np.float32))


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("nq,n,d,k,block", [(7, 3001, 64, 100, 1000), (30, 4000, 96, 1000, 1500), (2, 100, 33, 150, 64)])
def test_dense_matches_numpy_argsort_on_random_unit_vectors(kernel, nq, n, d, k, block):
    rng = np.random.default_rng(n + d)
    x = rng.standard_normal((n, d)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    q = rng.standard_normal((nq, d)).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    s, i = search_dense(q, x, k, block_size=block, kernel=kernel)
    full = q.astype(np.float64) @ x.astype(np.float64).T
    ref = -np.sort(-full, axis=1)[:, : min(k, n)]
    np.testing.assert_allclose(s, ref, atol=1e-5)  # the k best scores, in order
    np.testing.assert_allclose(s, np.take_along_axis(full, i, 1), atol=1e-5)  # ids carry them
    assert all(len(set(row)) == len(row) for row in i.tolist())
    # ids equal the argsort wherever the reference scores are not within float noise
    es, ei = _brute_dense(q, x, k)
    gaps = np.minimum(np.abs(np.diff(es, axis=1, prepend=np.inf)), np.abs(np.diff(es, axis=1, append=-np.inf)))
    clear = gaps > 1e-5
    np.testing.assert_array_equal(i[clear], ei[clear])


def test_kernels_agree_on_random_data():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((6000, 128)).astype(np.float32)
    q = rng.standard_normal((50, 128)).astype(np.float32)
    st, it = search_dense(q, x, 100, block_size=2048, kernel="torch")
    sf, if_ = search_dense(q, x, 100, block_size=2048, kernel="faiss")
    np.testing.assert_allclose(st, sf, atol=1e-4)
    assert (it == if_).mean() > 0.99  # differences only where float rounding reorders near-ties
    for r in range(len(q)):
        assert len(set(it[r]) ^ set(if_[r])) <= 2


def test_default_kernel_and_block_are_used(monkeypatch):
    rng = np.random.default_rng(4)
    q, x = _integer_data(rng, 20, 3000, 16, distinct=50)
    s, i = search_dense(q, x, 30)
    es, ei = _brute_dense(q, x, 30)
    np.testing.assert_array_equal(i, ei)
    assert choose_dense_kernel(1, 10**6, 384, 100) in KERNELS
    assert choose_dense_kernel(200, 10**6, 1024, 100) in KERNELS
    assert default_block_size(200) >= 1024


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("nq", [1, 2, 5, 20, 64])
def test_dense_ties_at_the_cutoff_go_to_the_lower_index(kernel, nq):
    # 4 distinct vectors repeated over 12000 docs: every cut-off falls inside a run of
    # identical scores. faiss alone is not index-ordered here for k >= 100 or nq = 1.
    rng = np.random.default_rng(nq)
    pool = rng.integers(-2, 3, (4, 8)).astype(np.float32)
    x = pool[rng.integers(0, 4, 12000)]
    q = rng.integers(-2, 3, (nq, 8)).astype(np.float32)
    _, ei = _brute_dense(q, x, 500)
    for k in (1, 10, 100, 500):
        _, i = search_dense(q, x, k, block_size=3000, kernel=kernel)
        np.testing.assert_array_equal(i, ei[:, :k])


def test_dense_rejects_empty_corpus_and_bad_k():
    q = np.ones((2, 4), np.float32)
    with pytest.raises(ValueError):
        search_dense(q, np.empty((0, 4), np.float32), 10)
    for k in (0, -1):
        with pytest.raises(ValueError):
            search_dense(q, np.ones((3, 4), np.float32), k)
    with pytest.raises(ValueError):
        search_dense(q, np.ones((3, 5), np.float32), 1)
    with pytest.raises(ValueError):
        search_dense(q, np.ones((3, 4), np.float32), 1, kernel="gpu")


def test_dense_with_no_queries_returns_empty_rows():
    s, i = search_dense(np.empty((0, 4), np.float32), np.ones((3, 4), np.float32), 10)
    assert s.shape == i.shape == (0, 3)


# ------------------------------------------------------------------------------ Hamming


@pytest.mark.parametrize("nbits", [8, 13, 64, 100, 384])
def test_hamming_ranking_equals_plus_minus_one_cosine_ranking(nbits):
    rng = np.random.default_rng(nbits)
    bq = rng.random((25, nbits)) > 0.5
    bx = rng.random((3000, nbits)) > 0.5
    dist, idx = search_hamming(np.packbits(bq, axis=1), np.packbits(bx, axis=1), 200)
    assert dist.dtype == np.int32 and idx.dtype == np.int64 and dist.shape == (25, 200)
    sq = np.where(bq, 1.0, -1.0)
    sx = np.where(bx, 1.0, -1.0)
    cos = sq @ sx.T / nbits
    ids = np.broadcast_to(np.arange(len(bx)), cos.shape)
    order = np.lexsort((ids, -cos), axis=1)[:, :200]
    np.testing.assert_array_equal(idx, order)
    np.testing.assert_allclose(1 - 2 * dist / nbits, np.take_along_axis(cos, order, 1), atol=1e-12)


@pytest.mark.parametrize("nq", [1, 2, 3, 19, 20, 21, 33, 64])
def test_hamming_ties_at_the_cutoff_go_to_the_lower_index(nq):
    # 70000 docs (more than faiss's 65536-document scan batch) drawn from 30 distinct
    # codes: thousands of documents share each distance. Query counts around faiss's
    # code-path switches (threads/2, 20, its 32-query batches).
    rng = np.random.default_rng(nq)
    pool = rng.integers(0, 256, (30, 4), dtype=np.uint8)
    x = pool[rng.integers(0, 30, 70000)]
    q = np.concatenate([pool[rng.integers(0, 30, (nq + 1) // 2)],
                        rng.integers(0, 256, (nq // 2, 4), dtype=np.uint8)])
    ed, ei = _brute_hamming(q, x, 1000)
    for k in (1, 10, 100, 1000):
        dist, idx = search_hamming(q, x, k)
        np.testing.assert_array_equal(dist, ed[:, :k])
        np.testing.assert_array_equal(idx, ei[:, :k])


def test_hamming_small_corpus_and_errors():
    x = np.packbits(np.eye(5, 12, dtype=bool), axis=1)
    dist, idx = search_hamming(x[:2], x, 50)
    assert dist.shape == (2, 5)
    np.testing.assert_array_equal(idx[:, 0], [0, 1])
    np.testing.assert_array_equal(idx[0], [0, 1, 2, 3, 4])  # the rest tie at distance 2
    with pytest.raises(ValueError):
        search_hamming(x, x[:0], 3)
    with pytest.raises(ValueError):
        search_hamming(x, x, 0)
    with pytest.raises(ValueError):
        search_hamming(x.astype(np.int8), x, 3)


# ------------------------------------------------------------------------------ memory

_MEMORY_CHILD = textwrap.dedent(
    """
    import json
    import numpy as np, torch, faiss
    from embedbench.scoring.search import search_dense

    def hwm():
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError("no VmHWM")

    def reset_hwm():
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")  # peak RSS := current RSS
            return True
        except OSError:
            return False

    n, d, nq, k, block = 200_000, 384, 200, 100, 4096
    # Warm up: load MKL/OpenMP/faiss code paths and thread pools on a tiny problem.
    for kernel in ("torch", "faiss"):
        search_dense(np.ones((nq, d), np.float32), np.ones((block + 7, d), np.float32), k,
                     block_size=block, kernel=kernel)
    rng = np.random.default_rng(0)
    x = np.empty((n, d), np.float32)
    for r0 in range(0, n, 10_000):
        x[r0:r0 + 10_000] = rng.standard_normal((10_000, d), dtype=np.float32)
    q = rng.standard_normal((nq, d), dtype=np.float32)
    out = {"data": x.nbytes}
    for kernel in ("torch", "faiss"):
        resettable = reset_hwm()
        before = hwm()
        search_dense(q, x, k, block_size=block, kernel=kernel)
        out[kernel] = {"before": before, "after": hwm(), "resettable": resettable}
    # Control: an unblocked score matrix must show up in the measurement.
    resettable = reset_hwm()
    before = hwm()
    full = q @ x.T
    out["control"] = {"before": before, "after": hwm(), "resettable": resettable}
    del full
    print(json.dumps(out))
    """
)


def test_peak_memory_stays_within_the_stated_bound():
    """Peak RSS of a blocked search over 2e5 x 384 docs (300 MiB), per kernel, grows by no
    more than the search_dense docstring's bound plus a fixed allowance -- far less than
    the 160 MB one unblocked 200 x 2e5 score matrix would take."""
    proc = subprocess.run([sys.executable, "-c", _MEMORY_CHILD], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    m = json.loads(proc.stdout.strip().splitlines()[-1])
    nq, k, block = 200, 100, 4096
    q = min(nq, 512)
    bound = 4 * q * block + 64 * q * (k + 1) + 12 * nq * k + 4 * block  # search_dense docstring
    allowance = 48 << 20  # allocator slack, BLAS packing buffers, faiss's 16 MiB tile
    full_matrix = 4 * nq * 200_000
    assert bound + allowance < full_matrix / 2  # the check can tell blocked from unblocked
    if m["control"]["resettable"]:
        assert m["control"]["after"] - m["control"]["before"] >= 0.9 * full_matrix, m
    for kernel in KERNELS:
        growth = m[kernel]["after"] - m[kernel]["before"]
        assert growth <= bound + allowance, (kernel, growth, bound, m)


@pytest.mark.parametrize("kernel", ["torch", "faiss"])
def test_compact_docs_are_converted_per_block_like_a_full_conversion(kernel):
    rng = np.random.default_rng(11)
    q = rng.standard_normal((7, 24)).astype(np.float32)
    half = rng.standard_normal((500, 24)).astype(np.float16)
    codes = rng.integers(-128, 128, size=(500, 24), dtype=np.int8)
    inv = (1.0 / np.linalg.norm(codes.astype(np.float32), axis=1)).astype(np.float32)
    for docs, scale, full in ((half, None, half.astype(np.float32)),
                              (codes, inv, codes.astype(np.float32) * inv[:, None])):
        got_s, got_i = search_dense(q, docs, 10, block_size=64, kernel=kernel, doc_scale=scale)
        ref_s, ref_i = search_dense(q, full, 10, block_size=64, kernel=kernel)
        np.testing.assert_array_equal(got_i, ref_i)
        np.testing.assert_allclose(got_s, ref_s, rtol=1e-6)
    with pytest.raises(ValueError, match="doc_scale"):
        search_dense(q, codes, 10, doc_scale=inv[:10])
