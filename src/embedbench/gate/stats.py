"""Paired statistics for the regression gate: sign-flip test, Holm adjustment (and the shared bootstrap CI).

Everything is plain numpy, vectorized in chunks (a few million numbers at a time), and seeded, so
a gate gives the same verdict on the same results on every machine. The bootstrap interval and the
default number of resamples are :mod:`embedbench.scoring.stats`'s, the same the report uses.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np

from embedbench.scoring.stats import DEFAULT_RESAMPLES, DEFAULT_SEED, bootstrap_ci

__all__ = ["DEFAULT_RESAMPLES", "DEFAULT_SEED", "bootstrap_ci", "holm", "sign_flip_pvalue", "task_rng"]

_CHUNK_ELEMENTS = 2_000_000  # random numbers drawn per vectorized step


def task_rng(seed: int, label: str) -> np.random.Generator:
    """A generator for one comparison, fixed by `seed` and the comparison's label (not its position)."""
    return np.random.default_rng(np.random.SeedSequence([seed, zlib.crc32(label.encode("utf-8"))]))


def sign_flip_pvalue(
    differences: Sequence[float] | np.ndarray,
    resamples: int = DEFAULT_RESAMPLES,
    rng: np.random.Generator | None = None,
) -> float:
    """One-sided paired randomization p-value for "candidate is worse" (mean of d = cand - base < 0).

    Under H0 the two scores of a query are exchangeable, so each difference is as likely to carry
    either sign. The statistic is the sum of d; the p-value is the share of sign assignments whose
    sum is at most the observed one. Zero differences do not change under a flip and are dropped.
    With k non-zero differences and 2**k <= resamples, all 2**k assignments are enumerated (exact);
    otherwise `resamples` random assignments are drawn and p = (1 + hits) / (1 + resamples), which
    keeps the test valid (P(p <= a) <= a under H0).
    """
    d = np.asarray(differences, dtype=np.float64)
    if d.ndim != 1:
        raise ValueError("differences must be one-dimensional")
    d = d[d != 0.0]
    k = d.size
    if k == 0:
        return 1.0
    observed = float(d.sum())
    total = observed
    tol = 1e-9 * max(1.0, float(np.abs(d).sum()))  # float noise must not turn a tie into a miss
    if k < 63 and (1 << k) <= resamples:
        codes = (np.arange(1 << k, dtype=np.int64)[:, None] >> np.arange(k)) & 1
        sums = (2 * codes - 1) @ d
        return float(np.count_nonzero(sums <= observed + tol)) / float(1 << k)
    if resamples < 1:
        raise ValueError("resamples must be at least 1")
    rng = rng if rng is not None else np.random.default_rng(DEFAULT_SEED)
    chunk = max(1, _CHUNK_ELEMENTS // k)
    hits = 0
    done = 0
    while done < resamples:
        m = min(chunk, resamples - done)
        positive = rng.random((m, k)) < 0.5
        sums = 2.0 * (positive @ d) - total  # sum of s_i d_i with s_i = +1 where positive, else -1
        hits += int(np.count_nonzero(sums <= observed + tol))
        done += m
    return (hits + 1) / (resamples + 1)


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm (1979) step-down adjusted p-values, in the input order.

    Sorted ascending p_(1) <= ... <= p_(m): adj_(i) = min(1, max_{j <= i} (m - j + 1) * p_(j)).
    The running max makes the adjusted values monotone in the raw ones; rejecting adj < alpha is
    Holm's procedure at family-wise error rate alpha.
    """
    p = np.asarray(list(pvalues), dtype=np.float64)
    if p.size == 0:
        return []
    if np.any(np.isnan(p)) or np.any(p < 0) or np.any(p > 1):
        raise ValueError("p-values must lie in [0, 1]")
    m = p.size
    order = np.argsort(p, kind="stable")
    stepped = np.maximum.accumulate((m - np.arange(m)) * p[order])
    adjusted = np.empty(m, dtype=np.float64)
    adjusted[order] = np.minimum(1.0, stepped)
    return [float(x) for x in adjusted]
