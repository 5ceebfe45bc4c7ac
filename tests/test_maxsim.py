"""Exact MaxSim search (scoring/maxsim.py) against sentence-transformers' own MaxSim and brute-force oracles."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sentence_transformers.util.quantization import quantize_embeddings
from sentence_transformers.util.similarity import maxsim

from embedbench.errors import EmbedbenchError
from embedbench.scoring.maxsim import (
    EMPTY_DOCUMENT_SCORE,
    TokenCodes,
    _doc_blocks,
    bytes_per_document,
    encode_tokens,
    maxsim_rerank,
    maxsim_scores,
    maxsim_topk,
    token_span,
)
from embedbench.scoring.precision import PRECISIONS
from embedbench.scoring.token_matrices import TokenMatrices

D = 16


def _matrices(rng: np.random.Generator, n: int, max_tokens: int, empty: bool = True) -> list[np.ndarray]:
    low = 0 if empty else 1
    return [rng.standard_normal((int(rng.integers(low, max_tokens + 1)), D)).astype(np.float32) for _ in range(n)]


@pytest.fixture(scope="module")
def sets() -> tuple[list[np.ndarray], list[np.ndarray]]:
    rng = np.random.default_rng(7)
    queries = _matrices(rng, 9, 8, empty=False) + [np.zeros((0, D), np.float32)]  # one query without a token
    docs = _matrices(rng, 60, 30)  # some documents without a token
    docs[5] = docs[3].copy()  # exact duplicates: equal scores, the lower index first
    docs[40] = docs[3].copy()
    return queries, docs


def _codes(spec: str, queries, docs, dim=None) -> tuple[TokenCodes, TokenCodes]:
    q, x = TokenMatrices.from_list(queries, D), TokenMatrices.from_list(docs, D)
    span = token_span(x)
    return (encode_tokens(PRECISIONS[spec], q, dim, None, span)[0], encode_tokens(PRECISIONS[spec], x, dim, None, span)[0])


def _ranked(scores: np.ndarray, k: int) -> np.ndarray:
    """Brute force: every row by (score desc, index asc)."""
    idx = np.broadcast_to(np.arange(scores.shape[1]), scores.shape)
    return np.lexsort((idx, -scores), axis=1)[:, :k]


@pytest.mark.parametrize("similarity", ["maxsim", "meanmaxsim"])
def test_scores_equal_sentence_transformers_maxsim(sets, similarity: str) -> None:
    queries, docs = sets
    q, x = _codes("fp32", queries, docs)
    expected = maxsim([torch.from_numpy(m) for m in queries], [torch.from_numpy(m) for m in docs],
                      length_normalize=similarity == "meanmaxsim").numpy()
    got = maxsim_scores(q, x, similarity)
    assert (got[:, [len(m) == 0 for m in docs]] < -1e6).all()  # documents without a token rank last, as there
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_blocked_topk_is_the_exact_ranking_with_trec_eval_ties(sets) -> None:
    queries, docs = sets
    q, x = _codes("fp32", queries, docs)
    full = maxsim_scores(q, x)
    # A block budget of a few documents: many blocks, each merged into the running top-k.
    scores, idx = maxsim_topk(q, x, 25, score_bytes=4 * 8 * 40)
    np.testing.assert_array_equal(idx, _ranked(full, 25))
    # Other blocks, other BLAS tiles: a score may differ from the one-block GEMM's in the last bit.
    np.testing.assert_allclose(scores, np.take_along_axis(full, idx, 1), rtol=1e-6)
    row = int(np.flatnonzero([len(m) > 0 for m in queries])[0])
    dup = [list(idx[row]).index(j) for j in (3, 5, 40) if j in idx[row]]
    assert dup == sorted(dup)  # duplicate documents: the lower index (trec_eval's preferred id) first


def test_blocks_respect_the_score_budget(sets) -> None:
    _, docs = sets
    x = _codes("fp32", [docs[0]], docs)[1]
    budget, query_tokens = 4 * 7 * 50, 7
    blocks = list(_doc_blocks(x, query_tokens, budget))
    assert blocks[0][0] == 0 and blocks[-1][1] == len(docs) and all(a[1] == b[0] for a, b in zip(blocks, blocks[1:]))
    for j0, j1 in blocks:
        tokens = int(x.offsets[j1] - x.offsets[j0])
        assert 4 * query_tokens * tokens <= budget or j1 - j0 == 1  # one long document may pass it alone


def test_binary_scores_are_hamming_similarities(sets) -> None:
    queries, docs = sets
    q, x = _codes("binary", queries, docs)
    assert q.codes.dtype == np.uint8 and q.codes.shape[1] == D // 8
    got = maxsim_scores(q, x)
    for i, qm in enumerate(queries):
        for j, dm in enumerate(docs):
            if not len(dm):
                assert got[i, j] == np.float32(EMPTY_DOCUMENT_SCORE)
                continue
            hamming = ((qm[:, None, :] > 0) != (dm[None, :, :] > 0)).sum(-1)  # (q tokens, d tokens)
            assert got[i, j] == np.float32((1 - 2 * hamming / D).max(axis=1).sum())


def test_int8_codes_are_sentence_transformers_calibrated_codes(sets) -> None:
    queries, docs = sets
    q, x = _codes("int8", queries, docs)
    corpus = np.concatenate(docs)
    np.testing.assert_array_equal(x.codes, quantize_embeddings(corpus, "int8", calibration_embeddings=corpus))
    np.testing.assert_array_equal(q.codes, quantize_embeddings(np.concatenate(queries), "int8",
                                                               calibration_embeddings=corpus))
    # Scored on the codes' bucket centres: MaxSim still sums dot products, close to fp32's.
    centres = lambda c: (c.codes.astype(np.float32) + 128.5) * c.steps + c.starts  # noqa: E731
    expected = maxsim([torch.from_numpy(m) for m in np.split(centres(q), q.offsets[1:-1])],
                      [torch.from_numpy(m) for m in np.split(centres(x), x.offsets[1:-1])]).numpy()
    np.testing.assert_allclose(maxsim_scores(q, x), expected, rtol=1e-5, atol=1e-5)


def test_fp16_and_truncated_dims_score_the_stored_values(sets) -> None:
    queries, docs = sets
    q, x = _codes("fp16", queries, docs, dim=8)
    assert x.codes.dtype == np.float16 and x.dim == 8
    expected = maxsim([torch.from_numpy(m[:, :8].astype(np.float16).astype(np.float32)) for m in queries],
                      [torch.from_numpy(m[:, :8].astype(np.float16).astype(np.float32)) for m in docs]).numpy()
    np.testing.assert_allclose(maxsim_scores(q, x), expected, rtol=1e-5, atol=1e-5)
    with pytest.raises(EmbedbenchError, match="larger than the model's dimension"):
        _codes("fp32", queries, docs, dim=D + 1)


def test_storage_per_document_is_mean_tokens_times_bytes_per_token(sets) -> None:
    _, docs = sets
    tokens = sum(len(m) for m in docs)
    for spec, per_token in (("fp32", 4 * D), ("fp16", 2 * D), ("int8", D), ("binary", D // 8)):
        x = _codes(spec, [docs[0]], docs)[1]
        assert x.bytes_per_token == per_token
        assert bytes_per_document(int(x.offsets[-1]), len(x), x.bytes_per_token) == round(tokens / len(docs) * per_token)


def test_rerank_scores_only_the_candidates(sets) -> None:
    queries, docs = sets
    q, x = _codes("fp32", queries, docs)
    full = maxsim_scores(q, x)
    rng = np.random.default_rng(1)
    candidates = np.stack([rng.choice(len(docs), 12, replace=False) for _ in queries])
    candidates[0, :3] = [5, 3, 40]  # duplicates among the candidates
    candidates[1, 5:] = -1  # a short list
    scores, idx = maxsim_rerank(q, candidates, x.take, 10)
    for r in range(len(queries)):
        c = np.unique(candidates[r][candidates[r] >= 0])
        order = np.lexsort((c, -full[r, c]))[:10]
        np.testing.assert_array_equal(idx[r, :len(order)], c[order])
        np.testing.assert_allclose(scores[r, :len(order)], full[r, c[order]], rtol=1e-6)
    assert (idx[1, 7:] == -1).all()


def test_two_stage_specs_are_not_token_precisions(sets) -> None:
    queries, docs = sets
    with pytest.raises(EmbedbenchError, match="--rerank-with"):
        _codes("binary+int8", queries, docs)
