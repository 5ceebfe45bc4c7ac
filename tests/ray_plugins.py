"""For the Ray engine tests: one local Ray cluster per test module, and an encoder plugin its workers load by name.

The plugin (``ray-test-encoder``) makes bag-of-words vectors text by text (no BLAS, so neither batches nor
threads change a bit). It is registered through the ``embedbench.encoders`` entry-point group by a
distribution folder made at start-up, which the workers find on their PYTHONPATH as they would find an
installed plugin on every node. Files in its control folder (``$EMBEDBENCH_RAY_TEST_DIR``) make it
misbehave on purpose:

* ``kill-at``: a number K; the K-th ``encode_documents`` call (from 0, over all processes) kills its own
  process (``os._exit``) before encoding, once (the file ``killed`` guards it, so Ray's retry succeeds);
* ``allow``: a number K; only the first K ``encode_documents`` calls encode, every later one blocks until
  its process is killed (for a driver to be killed while nothing more is encoded).

Every batch it encodes appends its texts' keys to ``encoded.log``, one line each, once encoded.
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
from collections.abc import Iterator, Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest

from embedbench.encoders.protocol import EncoderMeta
from embedbench.encoders.settings import EncodeSettings
from embedbench.engine.cache import text_key

PLUGIN = "ray-test-encoder"
CONTROL_ENV = "EMBEDBENCH_RAY_TEST_DIR"
TESTS = Path(__file__).resolve().parent
DIM = 32


@lru_cache(maxsize=1 << 16)
def _word(word: str) -> np.ndarray:
    seed = int.from_bytes(hashlib.sha256(word.encode("utf-8", "surrogatepass")).digest()[:8], "little")
    return np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)


def _vector(text: str) -> np.ndarray:
    v = np.zeros(DIM, dtype=np.float32)
    for word in text.lower().split():
        v += _word(word)
    return v


class ControlledEncoder:
    """Deterministic bag-of-words vectors, with the faults above."""

    meta = EncoderMeta(name=PLUGIN, revision="1", fingerprint=f"{PLUGIN}-1", dim=DIM, pooling="mean", libraries=())

    def __init__(self, control: Path) -> None:
        self.control = control

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return np.stack([_vector(t) for t in texts])

    def encode_documents(self, texts: Sequence[str]) -> np.ndarray:
        call = _next_call(self.control)
        kill_at = self.control / "kill-at"
        if kill_at.exists() and call == int(kill_at.read_text()) and _claim(self.control / "killed"):
            os._exit(1)  # the worker process dies mid-batch, as an OOM kill or a lost node would
        allow = self.control / "allow"
        if allow.exists() and call >= int(allow.read_text()):
            (self.control / "blocked").touch()
            while True:  # until this process is killed
                time.sleep(1)
        out = np.stack([_vector(t) for t in texts])
        with open(self.control / "encoded.log", "a", encoding="utf-8") as fh:
            fh.write("".join(f"{text_key(t)}\n" for t in texts))  # one write: concurrent writers never interleave
        return out


def _next_call(control: Path) -> int:
    """This call's number among every process's ``encode_documents`` calls."""
    i = 0
    while not _claim(control / f"call-{i}"):
        i += 1
    return i


def _claim(path: Path) -> bool:
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return False
    return True


def make_test_encoder(settings: EncodeSettings) -> ControlledEncoder:
    """The entry point's factory."""
    return ControlledEncoder(Path(os.environ[CONTROL_ENV]))


def die_once(control: str, start: int, stop: int) -> list[int]:
    """A shard function whose worker dies (once) on the shard starting at 3."""
    if start == 3 and _claim(Path(control) / "task-killed"):
        os._exit(1)
    return list(range(start, stop))


def encoded_log(control: Path) -> list[str]:
    path = control / "encoded.log"
    return path.read_text().split() if path.exists() else []


def reset_control(control: Path) -> None:
    for path in control.iterdir():
        path.unlink()


def install_plugin(root: Path) -> Path:
    """A distribution folder declaring the plugin's entry point; put ``root`` on the path to register it."""
    dist = root / "embedbench_ray_test_plugin-1.0.dist-info"
    dist.mkdir(parents=True, exist_ok=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: embedbench-ray-test-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(f"[embedbench.encoders]\n{PLUGIN} = ray_plugins:make_test_encoder\n")
    return root


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """A local Ray cluster of 2 CPUs for the module, its workers seeing the plugin and its control folder.

    The environment is set before Ray starts: its workers inherit it (PYTHONPATH, the control folder).
    """
    ray = pytest.importorskip("ray")
    if ray.is_initialized():
        pytest.fail("Ray is already initialized in this process")
    base = tmp_path_factory.mktemp("ray")
    site, control = install_plugin(base / "site"), base / "control"
    control.mkdir()
    saved_env = {k: os.environ.get(k) for k in ("PYTHONPATH", CONTROL_ENV)}
    saved_path = list(sys.path)
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(TESTS), str(site), saved_env["PYTHONPATH"]) if p)
    os.environ[CONTROL_ENV] = str(control)
    sys.path[:0] = [str(site)]
    try:
        ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
        yield {"address": ray.get_runtime_context().gcs_address, "control": control}
    finally:
        ray.shutdown()
        sys.path[:] = saved_path
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
