"""Exact top-k search over cached vectors, blocked so that peak memory stays bounded.

Two entry points:

* :func:`search_dense` -- inner-product top-k of float32 vectors. The corpus is walked
  in blocks of documents (and the queries in chunks), each block's top-k is merged into
  a running top-k, so the score matrix held at any time is one chunk x one block.
  The per-block kernel is either a torch matmul + ``torch.topk`` or ``faiss.knn``;
  :func:`choose_dense_kernel` picks one per shape from measurements.
* :func:`search_hamming` -- Hamming top-k of packed bits via faiss ``IndexBinaryFlat``.

:mod:`embedbench.scoring.retrieval` calls them for a precision's stored vectors (which kernel for
which kind, and the two-stage search).

Ties. The harness orders the corpus so that, on equal scores, the LOWER index is the
document trec_eval prefers; both functions therefore return, per query, the k best
documents under the order (better score first, then lower index), and each row is
sorted in that order.

* Hamming distances are integers and ties are frequent: the result is exact. faiss's
  exact heap scan (``hammings_knn_hc``) visits documents in index order per query and
  only replaces the heap top on a strictly smaller distance, with a heap ordered by
  (distance, id), so among equal distances the lowest ids are kept; see
  :func:`search_hamming` for the one faiss code path where that would not hold and
  how it is avoided. tests/test_search.py pins this against a stable numpy argsort.
* Float scores: ties are resolved exactly *among scores that compare equal as
  computed*: each block is asked for k+1 candidates; where the (k+1)-th equals the k-th
  the row is re-selected exactly from the block's scores (all > t, then the lowest
  indices == t), and blocks are merged with a stable sort on (-score, index). faiss's
  own selection among ties is not index-ordered for k >= 100 (its reservoir handler)
  nor for nq < threads (its database-parallel path); the k+1 check covers both.
  Remaining limitation: two identical document vectors can receive scores that differ
  in the last bit when BLAS computes them with different micro-kernels (e.g. at a tile
  edge, or a row recomputed by torch after faiss), and then the higher score wins
  rather than the lower index. Rankings are then decided by float noise, as in any
  float search; it only matters for exact duplicate vectors.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import numpy as np
import torch

_FAISS_BLAS_LOCK = threading.Lock()

# Queries are processed in chunks of at most this many rows.
QUERY_BLOCK = 512
# Default size of one score block (chunk x documents, float32) in bytes.
SCORE_BLOCK_BYTES = 128 << 20
# Bytes of faiss's sgemm tile (queries x documents, float32); see _faiss_blas_settings.
FAISS_TILE_BYTES = 64 << 20
# choose_dense_kernel: faiss from this many queries on.
FAISS_MIN_QUERIES = 16
# Up to this many queries per chunk the score block is computed docs-major (see below).
DOCS_MAJOR_MAX_Q = 16
# Smallest default document block (a tiny block makes per-block overhead dominate).
MIN_BLOCK = 1024


def choose_dense_kernel(nq: int, n: int, d: int, k: int) -> str:
    """Pick the fp32 top-k kernel for this shape: "torch" or "faiss".

    Rule: torch below FAISS_MIN_QUERIES (16) queries, faiss (with the tile settings of
    :func:`_faiss_blas_settings`) from there on. Measured on the 2-core CPU box (torch
    2.13 CPU, faiss-cpu), exact top-100 of random unit vectors, n=3e5, best of 2,
    seconds torch / faiss:

        d=384:   nq=1 0.017/0.048  nq=4 0.020/0.065  nq=16 0.062/0.063
                 nq=64 0.175/0.136  nq=200 0.481/0.335
        d=1024:  nq=1 0.038/0.114  nq=4 0.075/0.132  nq=16 0.155/0.140
                 nq=64 0.431/0.300  nq=200 1.247/0.802

    A handful of queries is a memory-bound GEMV where torch's single pass wins; with
    more queries faiss's fused GEMM + heap selection avoids materializing score blocks.
    `make bench` (bench/exact_search.py) re-measures both kernels.
    """
    if nq < FAISS_MIN_QUERIES:
        return "torch"
    return "faiss"


def default_block_size(nq: int) -> int:
    """Documents per block so that one float32 score block is ~SCORE_BLOCK_BYTES."""
    q = max(1, min(nq, QUERY_BLOCK))
    return max(MIN_BLOCK, SCORE_BLOCK_BYTES // (4 * q))


def search_dense(
    queries: np.ndarray,
    docs: np.ndarray,
    k: int,
    block_size: int | None = None,
    *,
    kernel: str | None = None,
    doc_scale: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Inner-product top-k of float32 queries (nq, d) against docs (n, d).

    ``docs`` may also be stored float16 or int8 (fp16 / int8 precisions): each block is
    converted to float32 into one reused buffer (at most ~SCORE_BLOCK_BYTES), and scaled
    row by row by ``doc_scale`` (n,) when given (e.g. 1/||codes|| for the cosine of int8
    codes), so a compact index is never expanded to float32 as a whole.

    Returns ``(scores float32 (nq, k'), indices int64 (nq, k'))`` with ``k' = min(k, n)``;
    each row sorted by score descending, equal scores by index ascending (see the module
    docstring for how ties at the cut-off are resolved).

    ``block_size`` is the number of documents per block (default
    :func:`default_block_size`: ~SCORE_BLOCK_BYTES = 128 MiB of scores per block);
    ``kernel`` forces "torch" or "faiss" (default :func:`choose_dense_kernel`). Inputs
    that are float32 and C-contiguous are used without copies.

    Memory bound. With ``q = min(nq, QUERY_BLOCK)`` query rows per chunk and ``b``
    documents per block, the working memory on top of the inputs is at most about::

        4*q*b                 the score block: the torch kernel's matmul output; the
                              faiss kernel's sgemm tile is min(4*q*b, FAISS_TILE_BYTES),
                              and rows it re-selects on ties take 4*r*b more, r <= q
        + 64*q*(k'+1)         block top-k, running top-k, merge buffers and sort
                              permutations (float32 + int64 each; faiss's result
                              reservoirs fit here too)
        + 12*nq*k'            the returned arrays
        + 4*b                 bool/index temporaries of a row being re-selected on ties

    bytes; e.g. 128 MiB + 15 MB for 200 queries at k=1000 with the default block, and
    3.3 MB + 1.3 MB + 0.2 MB for 200 queries, k=100, block_size=4096
    (tests/test_search.py measures the peak RSS of that case in a subprocess).
    """
    q_np, x_np = _check_dense(queries, docs, k)
    nq, n = q_np.shape[0], x_np.shape[0]
    kk = min(int(k), n)
    kern = _dense_kernel(kernel, nq, x_np.shape, kk)
    blocks = _DocBlocks(x_np, _block_size(block_size, nq, x_np, doc_scale is not None), doc_scale)
    out_s = np.empty((nq, kk), dtype=np.float32)
    out_i = np.empty((nq, kk), dtype=np.int64)
    if nq == 0:
        return out_s, out_i
    with torch.inference_mode():
        qt_all = torch.from_numpy(q_np)
        # One reusable score buffer (torch kernel): the last, shorter block views a prefix.
        buf = torch.empty(max(min(nq, QUERY_BLOCK), 2) * blocks.rows, dtype=torch.float32) if kern == "torch" else None
        for q0 in range(0, nq, QUERY_BLOCK):
            q1 = min(nq, q0 + QUERY_BLOCK)
            v, i = _chunk_topk(q_np[q0:q1], qt_all[q0:q1], blocks, kk, kern, buf)
            out_s[q0:q1] = v.numpy()
            out_i[q0:q1] = i.numpy()
    return out_s, out_i


def search_hamming(queries: np.ndarray, docs: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Hamming top-k of packed bits, uint8 (nq, nbytes) against uint8 (n, nbytes).

    Returns ``(distances int32 (nq, k'), indices int64 (nq, k'))``, ``k' = min(k, n)``,
    each row by distance ascending then index ascending; among documents at the same
    distance at the cut-off the LOWER indices are returned (exact).

    Uses faiss ``IndexBinaryFlat`` (exact heap scan). The index copies the packed docs
    (n * nbytes bytes) and faiss scans 65536 documents at a time without materialising
    a distance matrix, so the working memory is that copy plus the nq*k' results.
    Dimensions that are not a multiple of 8 are the caller's zero padding (np.packbits);
    padding bits are zero on both sides and add nothing to a distance.

    Tie exactness rests on faiss's exact query-parallel scan (see the module docstring).
    Newer faiss releases add a database-parallel variant for few queries
    (2*nq <= threads) whose merge may keep a higher id among ties at the k-th distance;
    small query batches are therefore padded to more than threads/2 rows so that faiss
    always takes the query-parallel scan (the padding rows are discarded).
    """
    import faiss

    q, x = _check_binary(queries, docs, k)
    nq, nbytes = q.shape
    n = x.shape[0]
    kk = min(int(k), n)
    if nq == 0:
        return np.empty((0, kk), np.int32), np.empty((0, kk), np.int64)
    min_rows = faiss.omp_get_max_threads() // 2 + 1
    qq = q
    if nq < min_rows:
        qq = np.concatenate([q, np.repeat(q[:1], min_rows - nq, axis=0)])
    index = faiss.IndexBinaryFlat(nbytes * 8)
    index.add(x)
    dist, idx = index.search(qq, kk)
    dist, idx = dist[:nq], idx[:nq]
    # faiss already returns (distance, id) order; make it explicit and independent of it.
    order = np.lexsort((idx, dist), axis=1)
    dist = np.take_along_axis(dist, order, axis=1).astype(np.int32, copy=False)
    idx = np.take_along_axis(idx, order, axis=1).astype(np.int64, copy=False)
    return np.ascontiguousarray(dist), np.ascontiguousarray(idx)


# ----------------------------------------------------------------------------- helpers


def _dense_kernel(kernel: str | None, nq: int, shape: tuple[int, int], k: int) -> str:
    """The forced kernel, checked, or :func:`choose_dense_kernel`'s pick for this shape."""
    kern = kernel if kernel is not None else choose_dense_kernel(nq, shape[0], shape[1], k)
    if kern not in ("torch", "faiss"):
        raise ValueError(f"unknown dense kernel {kern!r}; expected 'torch' or 'faiss'")
    return kern


def _block_size(block_size: int | None, nq: int, docs: np.ndarray, scaled: bool) -> int:
    """Documents per block: the caller's, else :func:`default_block_size`, and for documents
    converted per block (float16, int8 or scaled) at most ~SCORE_BLOCK_BYTES of float32 copy."""
    if block_size is not None:
        if int(block_size) <= 0:
            raise ValueError(f"block_size must be positive, got {block_size}")
        return int(block_size)
    b = default_block_size(nq)
    if docs.dtype != np.float32 or scaled:
        b = min(b, max(MIN_BLOCK, SCORE_BLOCK_BYTES // (4 * docs.shape[1])))
    return b


class _DocBlocks:
    """The corpus as consecutive blocks of documents, each as float32 (numpy and a torch view).

    float32 documents are viewed without copies; stored float16 / int8 documents (or any scaled
    by ``doc_scale``) are converted block by block into one reused buffer, so a compact index
    is never expanded to float32 as a whole. A block's arrays are valid until the next block.
    """

    def __init__(self, docs: np.ndarray, block: int, doc_scale: np.ndarray | None) -> None:
        n, d = docs.shape
        self.docs, self.block, self.rows = docs, block, min(block, n)
        self.scale = None
        if doc_scale is not None:
            self.scale = np.ascontiguousarray(doc_scale, dtype=np.float32).reshape(-1, 1)
            if self.scale.shape[0] != n:
                raise ValueError(f"doc_scale has {self.scale.shape[0]} rows, docs have {n}")
        self.convert = docs.dtype != np.float32 or self.scale is not None
        self.buffer: np.ndarray | None = None  # allocated on the first converted block, then reused

    def __iter__(self) -> Iterator[tuple[int, np.ndarray, torch.Tensor]]:
        """(offset of the block's first document, block as numpy, the same as torch)."""
        n = self.docs.shape[0]
        if not self.convert:
            whole = torch.from_numpy(self.docs)
            for j0 in range(0, n, self.block):
                yield j0, self.docs[j0 : j0 + self.block], whole[j0 : j0 + self.block]
            return
        if self.buffer is None:
            self.buffer = np.empty((self.rows, self.docs.shape[1]), dtype=np.float32)
        for j0 in range(0, n, self.block):
            j1 = min(n, j0 + self.block)
            xb = self.buffer[: j1 - j0]
            np.copyto(xb, self.docs[j0:j1], casting="unsafe")
            if self.scale is not None:
                xb *= self.scale[j0:j1]
            yield j0, xb, torch.from_numpy(xb)


def _chunk_topk(
    q_np: np.ndarray, qt: torch.Tensor, blocks: _DocBlocks, k: int, kern: str, buf: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-k of one chunk of queries (numpy and torch views) over every block: each block's top-k by
    ``kern`` merged into a running top-k, rows ordered by (score desc, index asc). ``buf`` is the
    torch kernel's reusable score buffer."""
    # A single query is padded with a zero row: MKL runs (n,d)@(d,1) as a
    # single-threaded GEMV, ~3x slower than (n,d)@(d,2) on the 2-core box.
    qpad = torch.cat([qt, torch.zeros_like(qt)]) if qt.shape[0] == 1 else qt
    run: tuple[torch.Tensor, torch.Tensor] | None = None
    for j0, xb_np, xb in blocks:
        if kern == "torch":
            s, i = _block_topk_torch(qpad, qt.shape[0], xb, k, buf)
        else:
            s, i = _block_topk_faiss(q_np, xb_np, qt, xb, k)
        if j0:
            i += j0
        run = (s, i) if run is None else _merge(run, (s, i), k)
    assert run is not None  # the corpus is never empty (_check_dense)
    return _order_rows(*run)


def _check_pair(queries: np.ndarray, docs: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The checks every search shares: 2-D inputs, a non-empty corpus, a positive k."""
    q = np.asarray(queries)
    x = np.asarray(docs)
    if q.ndim != 2 or x.ndim != 2:
        raise ValueError(f"queries and docs must be 2-D, got shapes {q.shape} and {x.shape}")
    if x.shape[0] == 0:
        raise ValueError("cannot search an empty corpus")
    if int(k) <= 0:
        raise ValueError(f"k must be positive, got {k}")
    return q, x


def _check_dense(queries: np.ndarray, docs: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    q, x = _check_pair(queries, docs, k)
    if q.shape[1] != x.shape[1]:
        raise ValueError(f"dimension mismatch: queries have {q.shape[1]}, docs {x.shape[1]}")
    stored = x.dtype if x.dtype in (np.float16, np.int8) else np.float32  # converted per block
    return (
        np.ascontiguousarray(q, dtype=np.float32),
        np.ascontiguousarray(x, dtype=stored),
    )


def _check_binary(queries: np.ndarray, docs: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    q, x = _check_pair(queries, docs, k)
    if q.dtype != np.uint8 or x.dtype != np.uint8:
        raise ValueError(f"packed bits must be uint8, got {q.dtype} and {x.dtype}")
    if q.shape[1] != x.shape[1]:
        raise ValueError(f"code size mismatch: queries have {q.shape[1]} bytes, docs {x.shape[1]}")
    if x.shape[1] == 0:
        raise ValueError("packed codes have zero bytes")
    return np.ascontiguousarray(q), np.ascontiguousarray(x)


def _block_topk_torch(
    qpad: torch.Tensor, r: int, xb: torch.Tensor, k: int, buf: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-k set of one document block: matmul into the reusable buffer, exact selection.

    ``qpad`` holds the chunk's ``r`` queries (possibly followed by padding rows).
    """
    rp, bn = qpad.shape[0], xb.shape[0]
    if rp <= DOCS_MAJOR_MAX_Q:
        # Few queries: (bn, d) @ (d, rp) is a tall-skinny GEMM that MKL streams through
        # the block with both cores; (rp, d) @ (d, bn) is up to 10x slower for rp <= 8.
        st = buf[: bn * rp].view(bn, rp)
        torch.mm(xb, qpad.T, out=st)
        scores = st.T[:r]
    else:
        scores = buf[: rp * bn].view(rp, bn)
        torch.mm(qpad, xb.T, out=scores)
    v, i = _select(scores, None, k)
    # When the whole block is kept, v may be the buffer itself, which the next block reuses.
    return (v.clone(), i) if v.data_ptr() == scores.data_ptr() else (v, i)


def _block_topk_faiss(
    q_np: np.ndarray, x_np: np.ndarray, qt: torch.Tensor, xb: torch.Tensor, k: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-k set of one document block with faiss.knn (no copy of the block), exact ties."""
    import faiss

    bn = x_np.shape[0]
    kk = min(k, bn)
    kq = kk + 1 if kk < bn else kk
    with _faiss_blas_settings(q_np.shape[0], bn):
        dist, idx = faiss.knn(q_np, x_np, kq, metric=faiss.METRIC_INNER_PRODUCT)
    v = torch.from_numpy(dist)
    i = torch.from_numpy(idx)
    if kq == kk:
        return v, i
    amb = torch.nonzero(v[:, kk] == v[:, kk - 1]).flatten()
    v = v[:, :kk].contiguous()
    i = i[:, :kk].contiguous()
    # faiss's choice among ties at the cut-off is not index-ordered (reservoir handler
    # for k >= 100, database-parallel path for nq < threads): re-select those rows
    # exactly from recomputed scores, a bounded number of rows at a time.
    step = max(1, SCORE_BLOCK_BYTES // (4 * bn))
    for a0 in range(0, amb.numel(), step):
        rows = amb[a0 : a0 + step]
        rv, ri = _select(torch.mm(qt[rows], xb.T), None, kk)
        v[rows] = rv
        i[rows] = ri
    return v, i


@contextlib.contextmanager
def _faiss_blas_settings(rows: int, block: int) -> Iterator[None]:
    """Tune faiss's exhaustive inner-product search for one call, then restore.

    * faiss takes its sgemm path only when nq*d >= distance_compute_blas_threshold
      (128000); below it a per-pair SIMD loop runs, 2-7x slower at nq >= 20 on the
      2-core box (200 x 5e5 x 384: 3.57 s vs 0.49 s). Threshold 0 forces sgemm.
    * faiss's default tile is 4096 queries x 1024 documents; with few queries that is a
      small GEMM plus a parallel heap update per 1024 documents, and the barriers make it
      collapse when the CPUs are shared (200 x 2e5 x 384 with another process busy:
      4.7 s with the default tile, 0.8 s with 256 x 16384). The tile is sized to the
      query chunk, FAISS_TILE_BYTES and the document block (faiss allocates the whole
      tile per call, so it never exceeds the torch kernel's 4*q*b score block).

    The settings are process-global, hence the lock.
    """
    import faiss

    bs_x = max(1, min(rows, 4096))
    bs_y = max(1, min(block, FAISS_TILE_BYTES // (4 * bs_x)))
    names = ("distance_compute_blas_threshold", "distance_compute_blas_query_bs",
             "distance_compute_blas_database_bs")
    with _FAISS_BLAS_LOCK:
        saved = [getattr(faiss.cvar, name) for name in names]
        for name, value in zip(names, (0, bs_x, bs_y)):
            setattr(faiss.cvar, name, value)
        try:
            yield
        finally:
            for name, value in zip(names, saved):
                setattr(faiss.cvar, name, value)


def _select(
    scores: torch.Tensor, ids: torch.Tensor | None, k: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The k best of each row by (score desc, id asc), exact on equal scores; unordered.

    ``ids`` are the candidates' ids (same shape as ``scores``); None means the column
    position is the id. Returns (scores, ids), each (rows, min(k, columns)).
    """
    r, m = scores.shape
    if k >= m:
        if ids is None:
            ids = torch.arange(m, dtype=torch.int64).expand(r, m).contiguous()
        return scores, ids
    v, p = torch.topk(scores, k + 1, dim=1, largest=True, sorted=True)
    # Rows whose (k+1)-th score equals the k-th have candidates tied at the cut-off that
    # topk picked arbitrarily: take every score > t, then the lowest ids == t.
    amb = torch.nonzero(v[:, k] == v[:, k - 1]).flatten().tolist()
    v = v[:, :k].contiguous()
    p = p[:, :k].contiguous()
    for row in amb:
        srow = scores[row]
        t = v[row, k - 1]
        gt = torch.nonzero(srow > t).flatten()
        eq = torch.nonzero(srow == t).flatten()
        if ids is not None:
            eq = eq[torch.argsort(ids[row, eq], stable=True)]
        sel = torch.cat([gt, eq[: k - gt.numel()]])
        p[row] = sel
        v[row] = srow[sel]
    return v, (p if ids is None else torch.gather(ids, 1, p))


def _order_rows(v: torch.Tensor, i: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sort each row by (score desc, index asc): index sort, then stable score sort."""
    i, perm = torch.sort(i, dim=1)
    v = torch.gather(v, 1, perm)
    v, perm = torch.sort(v, dim=1, descending=True, stable=True)
    i = torch.gather(i, 1, perm)
    return v, i


def _merge(
    run: tuple[torch.Tensor, torch.Tensor], new: tuple[torch.Tensor, torch.Tensor], k: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact top-k set of the union of two candidate sets (ids disjoint)."""
    v = torch.cat([run[0], new[0]], dim=1)
    i = torch.cat([run[1], new[1]], dim=1)
    return _select(v, i, k)
