"""Uncertainty of a mean over queries: a seeded percentile bootstrap."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

_CHUNK = 100  # resamples drawn at once, so memory stays at ~100 x n_queries


def bootstrap_ci(values: Iterable[float], n: int = 1000, seed: int = 0, alpha: float = 0.05) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean of `values`: resample the values with replacement `n`
    times (numpy's default_rng(seed), so the interval is the same for the same inputs), take the
    mean of each resample, and return the alpha/2 and 1 - alpha/2 percentiles of those means."""
    data = np.asarray(list(values), dtype=np.float64)
    if data.ndim != 1 or data.size == 0:
        raise ValueError("bootstrap_ci needs a non-empty list of numbers")
    if not np.all(np.isfinite(data)):
        raise ValueError("bootstrap_ci: values must be finite")
    if n < 1 or not 0 < alpha < 1:
        raise ValueError("bootstrap_ci: n must be >= 1 and 0 < alpha < 1")
    rng = np.random.default_rng(seed)
    means = np.empty(n, dtype=np.float64)
    for start in range(0, n, _CHUNK):
        stop = min(start + _CHUNK, n)
        idx = rng.integers(0, data.size, size=(stop - start, data.size))
        means[start:stop] = data[idx].mean(axis=1)
    low, high = np.percentile(means, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    return float(low), float(high)
