"""Token matrices of many texts in one flat array: what a multi-vector model gives, the cache stores and
MaxSim (:mod:`embedbench.scoring.maxsim`) searches. numpy only, so the cache can hold them without torch."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TokenMatrices:
    """The token matrices of ``n`` texts: ``flat`` (total tokens, d), text i's rows ``offsets[i]:offsets[i + 1]``."""

    flat: np.ndarray
    offsets: np.ndarray  # int64 (n + 1,), offsets[0] == 0, non-decreasing

    @classmethod
    def from_list(cls, matrices: Sequence[np.ndarray], dim: int | None = None) -> TokenMatrices:
        """Stack per-text (tokens, d) matrices (float32); ``dim`` gives the width when there are none."""
        lengths = np.fromiter((len(m) for m in matrices), dtype=np.int64, count=len(matrices))
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        if not len(matrices):
            return cls(np.zeros((0, dim or 0), dtype=np.float32), offsets)
        return cls(np.ascontiguousarray(np.concatenate(matrices), dtype=np.float32), offsets)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def dim(self) -> int:
        return int(self.flat.shape[1])

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def matrix(self, i: int) -> np.ndarray:
        return self.flat[self.offsets[i]:self.offsets[i + 1]]

    def to_list(self) -> list[np.ndarray]:
        return [self.matrix(i) for i in range(len(self))]

    def rows(self, start: int, stop: int) -> TokenMatrices:
        """Texts ``start .. stop - 1`` (a view of their token rows)."""
        a, b = int(self.offsets[start]), int(self.offsets[stop])
        return TokenMatrices(self.flat[a:b], self.offsets[start:stop + 1] - a)

    @classmethod
    def concat(cls, parts: Sequence[TokenMatrices], dim: int | None = None) -> TokenMatrices:
        """The texts of ``parts``, in order, in one flat array."""
        if not parts:
            return cls.from_list([], dim)
        lengths = np.concatenate([p.lengths for p in parts])
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        return cls(np.ascontiguousarray(np.concatenate([p.flat for p in parts]), dtype=np.float32), offsets)

    def take(self, which: np.ndarray) -> TokenMatrices:
        """The texts at positions ``which`` (in that order; repeats allowed), copied."""
        which = np.asarray(which, dtype=np.int64)
        starts, lengths = self.offsets[which], self.lengths[which]
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        return TokenMatrices(self.flat[token_rows(starts, lengths)], offsets)


def token_rows(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The flat row numbers of segments ``starts[i] .. starts[i] + lengths[i] - 1``, concatenated in order."""
    total = int(lengths.sum())
    if not total:
        return np.zeros(0, dtype=np.int64)
    shift = np.repeat(starts - np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths)
    return shift + np.arange(total, dtype=np.int64)
