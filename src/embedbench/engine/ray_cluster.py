"""The Ray engine (``--engine ray``): Ray Data actors fill the shared cache, shard searches run as Ray tasks.

:func:`open_ray_executor` connects to the cluster (``--ray-address``, else ``$RAY_ADDRESS``, else a
Ray started here for the run; a process already connected to Ray keeps its connection), checks that
it can host the workers, and has a task on every node write a probe file into the cache folder,
which this process must then see: the cache is the one channel between the workers and the driver,
so it must be a folder every node sees (a shared filesystem; the cache is safe for many writers).

The executor it returns has the steps of :class:`~embedbench.engine.executors.LocalExecutor`:

* ``fill`` holds the namespace lock, asks the cache which texts it lacks and, if any, encodes them
  with Ray Data ``map_batches`` over a pool of ``workers`` actors (``gpus_per_worker`` /
  ``cpus_per_worker`` each). Each actor loads the model once, by its reference (a preset, a plugin
  name, an hf:/onnx: reference or a model folder: every node must be able to load it, with the same
  encode settings, which the actor checks), and writes each batch straight into the cache as one
  chunk; only counts come back. The batches are the local engine's: the missing texts in order, in
  chunks of the cache's 2,048, so a model whose rounding depends on its batches rounds alike. An actor
  whose process dies is restarted and its batch retried. Queries are encoded here, as locally.
* ``encode`` fills, then reads the vectors back from the cache.
* ``map`` runs a shard function (engine/sharded.py) as one Ray task per shard, its other arguments
  put in the object store once, a bounded number in flight, results yielded as they complete (the
  driver merges them in a total order); a task whose worker dies is run again.

An encoder object cannot be used: it would have to be pickled to every actor, weights and all.
Ray is imported here only; the local engine never imports it.
"""

from __future__ import annotations

import inspect
import logging
import os
import socket
import threading
import uuid
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from embedbench.encoders.loading import load_model, model_registry
from embedbench.encoders.settings import EncodeSettings
from embedbench.engine.cache import EmbeddingCache
from embedbench.engine.encoding import CachedEncoding
from embedbench.errors import EmbedbenchError, ModelError

__all__ = ["RayExecutor", "open_ray_executor"]

INSTALL = "pip install 'embedbench[ray]'"
CONNECT_TIMEOUT_S = 30.0  # reaching --ray-address (a TCP connect, then ray.init), at most
PROBE_TIMEOUT_S = 120.0  # every node running its cache probe (a worker process each), at most
ENCODE_BATCH = 2048  # texts per actor batch = per cache chunk, as EmbeddingCache.get_or_encode chunks
DEFAULT_WORKERS = 2
ACTOR_RESTARTS = 3  # an encoding actor whose process dies is restarted, its batch retried, this many times
TASK_RETRIES = 3  # a shard task whose worker dies is run again this many times
DOCUMENT = "document"
_SCHEMES = ("hf:", "onnx:", "http://", "https://")


def open_ray_executor(options: Any, model: object, settings: EncodeSettings, cache_root: Path) -> RayExecutor:
    """The run's Ray executor: connected (in bounded time), the cluster's resources checked, the cache probed.

    ``options`` is the run's ``EngineOptions`` (engine/executors.py). Every failure is an
    EmbedbenchError (one line, exit 2), raised before anything is encoded or written.
    """
    if not isinstance(model, str):
        raise EmbedbenchError("--engine ray loads the model on every worker by its reference: pass a preset, a "
                              "plugin name, an hf:/onnx: reference or a model folder, not an encoder object")
    ray = _import_ray()
    owned = _connect(ray, options.ray_address)
    try:
        executor = RayExecutor(ray, owned, _worker_ref(model), settings, Path(cache_root).expanduser().absolute(),
                               options.workers, float(options.gpus_per_worker), float(options.cpus_per_worker))
        executor.probe_cache()
        return executor
    except BaseException:
        if owned:
            ray.shutdown()
        raise


class RayExecutor:
    """Encoding by a Ray Data actor pool into the shared cache; shard functions as Ray tasks."""

    name = "ray"

    def __init__(self, ray: Any, owned: bool, model: str, settings: EncodeSettings, cache_root: Path,
                 workers: int | None, gpus_per_worker: float, cpus_per_worker: float) -> None:
        self._ray, self._owned = ray, owned
        self.model, self.settings, self.cache_root = model, settings, cache_root
        self.gpus_per_worker, self.cpus_per_worker = gpus_per_worker, cpus_per_worker
        self.nodes = [n for n in ray.nodes() if n.get("Alive")]
        self.workers = self._check_resources(workers)
        self.slots = max(1, sum(int(n["Resources"].get("CPU", 0) // cpus_per_worker) for n in self.nodes))
        self._remotes: dict[Callable, Any] = {}
        if gpus_per_worker > 0 and settings.device == "cpu":
            warnings.warn("--gpus-per-worker reserves GPUs for the workers, but --device cpu encodes on the CPU",
                          RuntimeWarning, stacklevel=3)

    # ------------------------------------------------------------------ checks

    def _check_resources(self, workers: int | None) -> int:
        """How many actors to run: ``workers``, by default 1 per GPU (with GPUs per worker) or 2; all must fit."""
        g, c = self.gpus_per_worker, self.cpus_per_worker
        total = {k: sum(n["Resources"].get(k, 0) for n in self.nodes) for k in ("CPU", "GPU")}
        have = f"the Ray cluster has {total['CPU']:g} CPUs and {total['GPU']:g} GPUs on {len(self.nodes)} node(s)"
        room = sum(_room(n["Resources"], g, c) for n in self.nodes)
        if room == 0:
            need = f"{g:g} GPUs and {c:g} CPUs" if g else f"{c:g} CPUs"
            raise EmbedbenchError(f"no node can host a worker of {need} (--gpus-per-worker / --cpus-per-worker): "
                                  f"{have}")
        if workers is None:
            return room if g else min(DEFAULT_WORKERS, room)
        if workers > room:
            raise EmbedbenchError(f"--workers {workers}: {have}, room for {room} worker(s) of "
                                  f"{f'{g:g} GPUs and ' if g else ''}{c:g} CPUs")
        return workers

    def probe_cache(self) -> None:
        """A task on every node writes ``<cache>/.probe-<uuid>-<i>``; each must appear here, else the cache
        folder is not shared with the workers."""
        ray = self._ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        self.cache_root.mkdir(parents=True, exist_ok=True)
        name = f".probe-{uuid.uuid4().hex}"
        write = ray.remote(num_cpus=0, max_retries=TASK_RETRIES)(_write_probe)
        where = _path_on_workers(self.cache_root)
        refs = [write.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False))
                .remote(where, f"{name}-{i}") for i, n in enumerate(self.nodes)]
        ready, late = ray.wait(refs, num_returns=len(refs), timeout=PROBE_TIMEOUT_S)
        if late:
            for ref in late:
                ray.cancel(ref, force=True)
            raise EmbedbenchError(f"the Ray cluster did not run the cache probe on {len(late)} of its "
                                  f"{len(refs)} node(s) within {PROBE_TIMEOUT_S:.0f} s")
        for i, (host, error) in enumerate(_get(ray, refs)):
            path = self.cache_root / f"{name}-{i}"
            if error is not None:
                raise EmbedbenchError(f"cache folder {self.cache_root}: a Ray worker on {host} cannot write its "
                                      f"probe file there ({error}); it must be a folder every node sees and can "
                                      f"write (a shared filesystem)")
            if not path.exists():
                raise EmbedbenchError(f"cache folder {self.cache_root} is not shared with the Ray workers: the probe "
                                      f"file {path} a worker on {host} wrote there is not visible here; the cache "
                                      f"folder (EMBEDBENCH_CACHE_DIR, or evaluate's cache_dir) must be a path "
                                      f"every node sees (a shared filesystem)")
            path.unlink()

    # ------------------------------------------------------------------ steps

    def encode(self, enc: CachedEncoding, texts: Sequence[str], label: str) -> np.ndarray:
        """The documents' vectors, in order: encoded by the actors where missing, then read from the cache."""
        cache = enc.cache
        encoded0 = cache.stats["encoded"]
        self.fill(enc, texts, label)
        hits0 = cache.stats["hits"]
        out = cache.vectors(enc.key, DOCUMENT, cache.text_keys(texts))
        # Count as get_or_encode does: what the actors encoded is not also a hit.
        cache.stats["hits"] -= min(cache.stats["encoded"] - encoded0, cache.stats["hits"] - hits0)
        return out

    def fill(self, enc: CachedEncoding, texts: Sequence[str], label: str) -> None:
        """Make sure every text has a vector in the cache; the missing ones are encoded by the actor pool."""
        cache = enc.cache
        with cache.lock(enc.key, DOCUMENT):  # other runs wait; our actors write without the lock
            missing = cache.missing(enc.key, DOCUMENT, texts)
            if not missing:
                return
            done = self._encode_on_workers(enc.key, missing, label)
            left = len(cache.missing(enc.key, DOCUMENT, missing))
            if done != len(missing) or left:
                raise ModelError(f"the Ray workers encoded {done:,} of {len(missing):,} texts and {left:,} are "
                                 f"still missing from the cache {cache.root}")
            cache.stats["encoded"] += done

    def map(self, fn: Callable, ranges: Sequence[tuple[int, int]], *args: object) -> Iterator:
        """``fn(*args, start, stop)`` per range as Ray tasks; results in completion order."""
        ray = self._ray
        remote = self._remotes.get(fn)
        if remote is None:
            remote = self._remotes[fn] = ray.remote(num_cpus=self.cpus_per_worker, num_gpus=0,
                                                     max_retries=TASK_RETRIES)(fn)
        refs = [ray.put(a) for a in args]
        todo, running = list(ranges)[::-1], []
        try:
            while todo or running:
                while todo and len(running) < 2 * self.slots:  # bounded: parts wait in the object store
                    start, stop = todo.pop()
                    running.append(remote.remote(*refs, start, stop))
                done, running = ray.wait(running, num_returns=1)
                yield _get(ray, done[0])
        finally:
            for ref in running:
                ray.cancel(ref, force=True)

    def close(self) -> None:
        if self._owned and self._ray.is_initialized():
            self._ray.shutdown()
        self._owned = False

    # ------------------------------------------------------------------ encoding

    def _encode_on_workers(self, key: dict, texts: list[str], label: str) -> int:
        """Encode ``texts`` (distinct) on the actor pool, each batch stored by its actor; how many were stored."""
        import pyarrow as pa
        import ray.data
        from tqdm import tqdm

        blocks = [pa.table({"text": pa.array([t.encode("utf-8", "surrogatepass") for t in texts[i:i + ENCODE_BATCH]],
                                             type=pa.binary())})
                  for i in range(0, len(texts), ENCODE_BATCH)]
        pool = min(self.workers, len(blocks))
        done = 0
        retries = {}  # bounded restarts where this Ray Data takes them (its defaults retry forever)
        if "ray_remote_args_fn" in inspect.signature(ray.data.Dataset.map_batches).parameters:
            retries["ray_remote_args_fn"] = _actor_retries
        with _quiet_data(), tqdm(total=len(texts), desc=f"{label}: documents on {pool} Ray worker(s)", unit="text",
                                 dynamic_ncols=True, disable=not self.settings.show_progress) as bar:
            ds = ray.data.from_arrow(blocks).map_batches(
                _EncodeActor, batch_size=ENCODE_BATCH, batch_format="pyarrow",
                compute=ray.data.ActorPoolStrategy(size=pool),
                num_cpus=self.cpus_per_worker, num_gpus=self.gpus_per_worker or None,
                fn_constructor_kwargs=dict(model=self.model, settings=self.settings,
                                           cache_root=str(_path_on_workers(self.cache_root)), key=key),
                **retries)
            try:
                for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
                    n = int(np.sum(batch["encoded"]))
                    done += n
                    bar.update(n)
            except Exception as exc:
                raise _unwrapped(exc) from None
        return done


def _actor_retries() -> dict[str, int]:
    """Bounded where Ray Data's defaults are not: a batch that kills every process it runs in fails the run."""
    return {"max_restarts": ACTOR_RESTARTS, "max_task_retries": ACTOR_RESTARTS}


class _EncodeActor:
    """One Ray Data actor: the model loaded once; each batch encoded and written to the cache as one chunk."""

    def __init__(self, model: str, settings: EncodeSettings, cache_root: str, key: dict) -> None:
        self.cache = EmbeddingCache(cache_root)
        self.key = key
        self.error: EmbedbenchError | None = None
        try:
            self.encoder = _load_checked(model, settings, key)
        except EmbedbenchError as exc:  # raised with the first batch: Ray Data hands a batch's error back
            self.error = exc  # as it was raised, a constructor's only as text

    def __call__(self, batch: Any) -> dict[str, np.ndarray]:
        if self.error is not None:
            raise self.error
        texts = [b.decode("utf-8", "surrogatepass") for b in batch.column("text").to_pylist()]
        vectors = self.encoder.encode_documents(texts)
        self.cache.store(self.key, DOCUMENT, texts, vectors)
        return {"encoded": np.array([len(texts)], dtype=np.int64)}


def _load_checked(model: str, settings: EncodeSettings, key: dict) -> object:
    """The model as this worker loads it, refused unless its encode settings are the driver's cache key."""
    encoder = load_model(model, settings)
    mine = encoder.meta.encode_settings() if hasattr(encoder, "encode_documents") else None
    if mine != key:
        differ = sorted(k for k in set(mine or {}) | set(key) if (mine or {}).get(k) != key.get(k))
        raise ModelError(f"a Ray worker on {socket.gethostname()} loaded model {model!r} with other encode "
                         f"settings ({', '.join(differ)}) than the driver: every node needs the same model "
                         f"and library versions")
    return encoder


# ---------------------------------------------------------------------- connecting


def _import_ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise EmbedbenchError(f"--engine ray needs Ray, which cannot be imported ({exc}): {INSTALL}") from None
    return ray


def _connect(ray: Any, address: str | None) -> bool:
    """Connect this process to Ray; True when this call did (so ``close`` disconnects, and stops a local Ray)."""
    if ray.is_initialized():  # e.g. a notebook or a test that started Ray: its connection is used as it is
        return False
    address = address or os.environ.get("RAY_ADDRESS") or None
    quiet = dict(logging_level=logging.ERROR, log_to_driver=False)
    if address is None or address == "local":  # a Ray of this machine's CPUs (and GPUs), for this run
        ray.init(address="local", num_cpus=_cpu_count(), include_dashboard=False, **quiet)
        return True
    _check_reachable(address)
    box: dict[str, BaseException] = {}

    def init() -> None:
        try:
            with _env_without("RAY_ADDRESS"):  # Ray lets $RAY_ADDRESS override an explicit address
                ray.init(address=address, **quiet)
        except BaseException as exc:  # handed to the caller
            box["error"] = exc

    thread = threading.Thread(target=init, name="embedbench-ray-init", daemon=True)
    thread.start()
    thread.join(CONNECT_TIMEOUT_S)
    if thread.is_alive():
        raise EmbedbenchError(f"could not connect to the Ray cluster at {address} within {CONNECT_TIMEOUT_S:.0f} s "
                              f"(is it a Ray head node's GCS address, HOST:6379 by default?)")
    if "error" in box:
        error = str(box["error"]).strip().splitlines()
        raise EmbedbenchError(f"could not connect to the Ray cluster at {address}: "
                              f"{error[0] if error else type(box['error']).__name__}")
    return True


def _check_reachable(address: str) -> None:
    """A TCP connection to the address's host and port, so a dead address fails fast (ray.init would retry)."""
    if address == "auto":  # the cluster `ray start` recorded on this machine: ray.init finds it (bounded above)
        return
    hostport = address.split("://", 1)[1] if "://" in address else address
    host, _, port = hostport.rstrip("/").rpartition(":")
    host = host.strip("[]")
    if not host or not port.isdigit():
        raise EmbedbenchError(f"--ray-address must be HOST:PORT (a Ray head's GCS address) or ray://HOST:PORT, "
                              f"got {address!r}")
    try:
        with socket.create_connection((host, int(port)), timeout=min(10.0, CONNECT_TIMEOUT_S)):
            pass
    except OSError as exc:
        raise EmbedbenchError(f"cannot reach the Ray cluster at {address}: {exc.strerror or exc} "
                              f"(is `ray start --head` running there, and the port open?)") from None


@contextmanager
def _env_without(name: str) -> Iterator[None]:
    saved = os.environ.pop(name, None)
    try:
        yield
    finally:
        if saved is not None:
            os.environ[name] = saved


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:
        return os.cpu_count() or 1


def _room(resources: dict, gpus: float, cpus: float) -> int:
    """How many workers of ``gpus`` / ``cpus`` fit on a node with ``resources``."""
    fit = int(resources.get("CPU", 0) // cpus)
    if gpus > 0:
        fit = min(fit, int(resources.get("GPU", 0) // gpus))
    return fit


def _worker_ref(model: str) -> str:
    """The model reference the workers load: a relative model folder made absolute (their working
    directory is not ours); anything else as given. The actors check they load the same model."""
    if model.startswith("onnx:"):
        folder = Path(model[len("onnx:"):]).expanduser()
        return f"onnx:{folder.absolute()}" if folder.is_dir() else model
    if model.startswith(_SCHEMES) or not Path(model).expanduser().is_dir() or model in model_registry():
        return model
    return str(Path(model).expanduser().absolute())


def _path_on_workers(cache_root: Path) -> str:
    """The cache folder as the workers are told it: this process's absolute path (every node must see it)."""
    return str(cache_root)


def _write_probe(folder: str, name: str) -> tuple[str, str | None]:
    """(this node's host name, why the probe file could not be written or None); runs on a worker."""
    host = socket.gethostname()
    try:
        with open(os.path.join(folder, name), "x", encoding="utf-8") as fh:
            fh.write(f"written by a Ray worker on {host}\n")
    except OSError as exc:
        return host, f"{type(exc).__name__}: {exc.strerror or exc}"
    return host, None


# ---------------------------------------------------------------------- results and errors


def _get(ray: Any, refs: Any) -> Any:
    try:
        return ray.get(refs)
    except Exception as exc:
        raise _unwrapped(exc) from None


def _unwrapped(exc: BaseException) -> BaseException:
    """The EmbedbenchError (one line for the CLI) behind a Ray task or Ray Data error, or ``exc``."""
    seen = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, EmbedbenchError) and type(cur).__module__.startswith("embedbench"):
            return cur
        cause = getattr(cur, "cause", None)
        cur = cause if isinstance(cause, BaseException) else (cur.__cause__ or cur.__context__)
    return exc


@contextmanager
def _quiet_data() -> Iterator[None]:
    """Ray Data without its progress bars and start-up banner (ours is one tqdm bar), the user's error raised."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*\bdeprecated\b")  # Ray Data's API notices, not ours to act on
        from ray.data import DataContext

        ctx = DataContext.get_current()
        wanted = dict(enable_progress_bars=False, print_on_execution_start=False, raise_original_map_exception=True)
        saved = {k: getattr(ctx, k) for k in wanted}
        for k, v in wanted.items():
            setattr(ctx, k, v)
        log = logging.getLogger("ray.data")
        level = log.level
        log.setLevel(logging.ERROR)
        try:
            yield
        finally:
            for k, v in saved.items():
                setattr(ctx, k, v)
            log.setLevel(level)
