"""Uncertainty of a mean over queries: the one seeded percentile bootstrap, shared by report and gate.

Plain numpy, vectorized in chunks, and seeded, so the report's confidence interval of a score and the
gate's interval of a paired difference are computed the same way, with the same number of resamples,
and come out the same on every machine.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

# Resamples per interval. 10,000 keeps the Monte Carlo error of a 95% bound's percentile small
# next to the interval's width (Efron & Tibshirani recommend >= 1,000; the gate's verdicts use 10,000).
DEFAULT_RESAMPLES = 10_000
DEFAULT_SEED = 0
DEFAULT_LEVEL = 0.95
_CHUNK_ELEMENTS = 2_000_000  # random indices drawn per vectorized step


def bootstrap_ci(
    values: Iterable[float] | np.ndarray,
    resamples: int = DEFAULT_RESAMPLES,
    rng: np.random.Generator | None = None,
    *,
    seed: int = DEFAULT_SEED,
    level: float = DEFAULT_LEVEL,
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values`` (e.g. per-query scores, or paired differences).

    Draw ``resamples`` samples of the n values with replacement, take each sample's mean, and return
    the (1 - level)/2 and (1 + level)/2 quantiles of those means (linear interpolation). The draws come
    from ``rng`` when given (the gate passes one per comparison), else from ``default_rng(seed)``, so
    the interval is the same for the same inputs.
    """
    data = np.asarray(values if isinstance(values, np.ndarray) else list(values), dtype=np.float64)
    if data.ndim != 1 or data.size == 0:
        raise ValueError("bootstrap_ci needs a non-empty list of numbers")
    if not np.all(np.isfinite(data)):
        raise ValueError("bootstrap_ci: values must be finite")
    if resamples < 1 or not 0.0 < level < 1.0:
        raise ValueError("bootstrap_ci: resamples must be >= 1 and 0 < level < 1")
    means = _resampled_means(data, resamples, rng if rng is not None else np.random.default_rng(seed))
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail])
    return float(low), float(high)


def _resampled_means(data: np.ndarray, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """The means of ``resamples`` samples of ``data`` drawn with replacement, a few million draws at a time."""
    n = data.size
    chunk = max(1, _CHUNK_ELEMENTS // n)
    means = np.empty(resamples, dtype=np.float64)
    for start in range(0, resamples, chunk):
        m = min(chunk, resamples - start)
        means[start : start + m] = data[rng.integers(0, n, size=(m, n))].mean(axis=1)
    return means
