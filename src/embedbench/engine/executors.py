"""Where a run encodes the texts its cache lacks and searches the shards: this process, or a Ray cluster.

An executor has three steps, which the engine calls per task: ``encode`` (the vectors of a one-shard
corpus, encoding what is missing), ``fill`` (make sure a shard's texts are in the cache) and ``map``
(run a shard function over the shards, yielding its results in any order). The local executor is
the plain loop; the Ray executor (:mod:`embedbench.engine.ray_cluster`) encodes with Ray Data actors
writing into the shared cache and runs shard searches as Ray tasks. Both give the same numbers:
encoding is keyed by text, and shard results merge in a total order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from embedbench.engine.encoding import CachedEncoding
from embedbench.errors import EmbedbenchError

ENGINES = ("local", "ray")


class LocalExecutor:
    """Everything in this process, one shard after the other."""

    name = "local"

    def encode(self, enc: CachedEncoding, texts: Sequence[str], label: str) -> np.ndarray:
        return enc.documents(texts, label)

    def fill(self, enc: CachedEncoding, texts: Sequence[str], label: str) -> None:
        missing = enc.cache.missing(enc.key, "document", texts)
        if missing:
            enc.documents(missing, label)

    def map(self, fn: Callable, ranges: Sequence[tuple[int, int]], *args: object) -> Iterator:
        for start, stop in ranges:
            yield fn(*args, start, stop)

    def close(self) -> None:
        pass


# The float searches walk the corpus in blocks of SEARCH_BLOCK documents on one global grid, and a shard
# is whole blocks, so a corpus searched in shards makes the kernel calls it makes searched at once: the
# same float scores to the bit, even for identical vectors that BLAS rounds differently within a block.
SEARCH_BLOCK = 1 << 16
DEFAULT_SHARD_SIZE = 4 * SEARCH_BLOCK  # 262,144 documents (~400 MB of float32 vectors at 384 dims)


@dataclass(frozen=True)
class EngineOptions:
    """How a run is executed: none of these change a number (tests/test_streaming_engine.py)."""

    engine: str = "local"
    shard_size: int = DEFAULT_SHARD_SIZE
    ray_address: str | None = None  # default: $RAY_ADDRESS, else a local Ray started for the run
    workers: int | None = None  # encoding actors (default: 1 per GPU with --gpus-per-worker, else 2)
    gpus_per_worker: float = 0
    cpus_per_worker: float = 1

    def check(self) -> EngineOptions:
        if self.engine not in ENGINES:
            raise EmbedbenchError(f"--engine must be one of {', '.join(ENGINES)}, got {self.engine!r}")
        _positive_int(self.shard_size, "--shard-size")
        if self.shard_size % SEARCH_BLOCK:
            raise EmbedbenchError(f"--shard-size must be a multiple of {SEARCH_BLOCK:,} (the search's block of "
                                  f"documents), got {self.shard_size:,}")
        if self.workers is not None:
            _positive_int(self.workers, "--workers")
        if not _number(self.gpus_per_worker) or self.gpus_per_worker < 0:
            raise EmbedbenchError(f"--gpus-per-worker must be a number >= 0, got {self.gpus_per_worker!r}")
        if not _number(self.cpus_per_worker) or self.cpus_per_worker <= 0:
            raise EmbedbenchError(f"--cpus-per-worker must be a number > 0, got {self.cpus_per_worker!r}")
        ray_only = {"--ray-address": self.ray_address is not None, "--workers": self.workers is not None,
                    "--gpus-per-worker": self.gpus_per_worker != 0, "--cpus-per-worker": self.cpus_per_worker != 1}
        given = [flag for flag, set_ in ray_only.items() if set_]
        if self.engine == "local" and given:
            raise EmbedbenchError(f"{', '.join(given)} apply to --engine ray only")
        return self


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _positive_int(value: object, flag: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise EmbedbenchError(f"{flag} must be a positive integer, got {value!r}")


def open_executor(options: EngineOptions, model: object, settings: object, cache_root: Path) -> LocalExecutor:
    """The run's executor; for ray, connected (bounded wait), the cache checked from a worker."""
    if options.engine == "local":
        return LocalExecutor()
    from embedbench.engine.ray_cluster import open_ray_executor  # ray is imported by the ray engine only

    return open_ray_executor(options, model, settings, cache_root)
