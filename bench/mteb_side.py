"""mteb 2.x doing the bench's precision x dimension sweep, plainly and with its own embedding cache.

How mteb is used (read from the installed mteb 2.26 source):

* precisions: ``mteb.models.CompressionWrapper(model, OutputDType.INT8 | BINARY)`` quantizes the
  float vectors of each ``encode`` call; fp32 is the bare model (the wrapper has no float32 level).
  int8 calibrates each call's own per-dimension [min, max] (so queries and corpus get separate
  ranges) and emits ``floor((x - min) / step) - 128``; binary emits 0/1 floats (``x > 0``); both are
  then scored with the model's cosine similarity, not with integer codes or Hamming distance.
* dims: mteb's own way is ``SentenceTransformerEncoderWrapper(path, embed_dim=d)``, which loads the
  model with sentence-transformers' ``truncate_dim`` (mteb has no truncation wrapper).
* plain: one ``mteb.evaluate`` per (precision, dim), each encoding the whole task again.
* cached: ``mteb.models.CachedEmbeddingWrapper`` around one full-dimension model, so the float
  vectors are encoded once; :class:`TruncateWrapper` (the only glue written here) truncates them per
  dim and ``CompressionWrapper`` quantizes on top. The cache cannot sit below ``embed_dim`` (its
  namespace ignores the dim) nor above ``CompressionWrapper`` (that namespaces by dtype and would
  encode once per precision), and ``CompressionWrapper`` must wrap an object whose
  ``mteb_model_meta`` is settable, which ``CachedEmbeddingWrapper``'s is not; the truncation layer
  provides that.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from embedbench.data.types import RetrievalData

SPLIT = "test"
PRECISIONS = ("fp32", "int8", "binary")


class TruncateWrapper:
    """An mteb encoder returning the first `dim` components of the wrapped encoder's vectors."""

    def __init__(self, model: Any, dim: int | None) -> None:
        self.model = model
        self.dim = dim
        self.mteb_model_meta = model.mteb_model_meta.model_copy()

    def encode(self, inputs: Any, **kwargs: Any) -> Any:
        vectors = np.asarray(self.model.encode(inputs, **kwargs), dtype=np.float32)
        return vectors if self.dim is None else np.ascontiguousarray(vectors[:, : self.dim])

    def similarity(self, a: Any, b: Any) -> Any:
        return self.model.similarity(a, b)

    def similarity_pairwise(self, a: Any, b: Any) -> Any:
        return self.model.similarity_pairwise(a, b)


def _compress(model: Any, precision: str) -> Any:
    from mteb.models import CompressionWrapper
    from mteb.types import OutputDType

    if precision == "fp32":
        return model
    level = {"int8": OutputDType.INT8, "binary": OutputDType.BINARY}[precision]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "fewer than 10000 embeddings" calibration warning
        return CompressionWrapper(model, level)


def _ndcg(model: Any, task: Any, batch_size: int) -> float:
    import mteb

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = mteb.evaluate(
            model,
            task,
            cache=None,
            overwrite_strategy="always",
            encode_kwargs={"batch_size": batch_size, "show_progress_bar": False},
            show_progress_bar=False,
            co2_tracker=False,
        )
    if result.exceptions:
        raise RuntimeError(f"mteb.evaluate failed: {result.exceptions}")
    (task_result,) = result.task_results
    (scores,) = task_result.scores[SPLIT]
    return float(scores["ndcg_at_10"])


def _st_model(model_path: Path, dim: int | None) -> Any:
    from mteb.models import SentenceTransformerEncoderWrapper

    return SentenceTransformerEncoderWrapper(str(model_path), device="cpu", embed_dim=dim)


def _key(precision: str, dim: int) -> str:
    return f"{precision}@{dim}"


def run_plain(data: RetrievalData, model_path: Path, dims: list[int], full_dim: int,
              batch_size: int = 32) -> dict[str, float]:
    """nDCG@10 per "precision@dim": one mteb.evaluate per pair, each encoding again (no cache)."""
    task = make_task(data)
    out: dict[str, float] = {}
    for dim in dims:
        model = _st_model(model_path, None if dim == full_dim else dim)
        for precision in PRECISIONS:
            out[_key(precision, dim)] = _ndcg(_compress(model, precision), task, batch_size)
    return out


def run_cached(data: RetrievalData, model_path: Path, dims: list[int], full_dim: int, cache_dir: Path,
               batch_size: int = 32) -> dict[str, float]:
    """Same sweep with mteb's CachedEmbeddingWrapper: the float vectors are encoded once."""
    from mteb.models import CachedEmbeddingWrapper

    task = make_task(data)
    cached = CachedEmbeddingWrapper(_st_model(model_path, None), cache_dir)
    out: dict[str, float] = {}
    try:
        for dim in dims:
            for precision in PRECISIONS:
                model = TruncateWrapper(cached, None if dim == full_dim else dim)
                out[_key(precision, dim)] = _ndcg(_compress(model, precision), task, batch_size)
    finally:
        cached.close()
    return out


def make_task(data: RetrievalData) -> Any:
    """The mteb task over exactly `data`: the project's offline helper, tests/mteb_local.py."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "tests" / "mteb_local.py"
    spec = importlib.util.spec_from_file_location("_embedbench_mteb_local", path)
    if spec is None or spec.loader is None:
        raise RuntimeError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.make_task(data)
