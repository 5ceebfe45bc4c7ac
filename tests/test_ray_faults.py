"""Faults (issue 12, item 4): a worker that dies mid-batch or mid-shard is retried by Ray and the run's numbers
do not change; a driver killed mid-run resumes from the cache on rerun with nothing encoded twice.

The encoder is the `ray-test-encoder` plugin (tests/ray_plugins.py), which the Ray workers load by name
and which dies or blocks on a chosen call, as its control folder says.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import write_beir
from ray_plugins import PLUGIN, ControlledEncoder, die_once, encoded_log, ray_cluster, reset_control  # noqa: F401

from embedbench.encoders.settings import EncodeSettings
from embedbench.engine import ray_cluster as ray_engine
from embedbench.engine.cache import EmbeddingCache
from embedbench.engine.executors import EngineOptions
from embedbench.engine.runner import evaluate
from embedbench.results import read_per_query, read_results

REPO = Path(__file__).resolve().parents[1]
SETTINGS = ControlledEncoder.meta.encode_settings()
HANG_GUARD_S = 300  # how long a wait may last before the test gives up (a guard, not a measurement)


@pytest.fixture
def control(ray_cluster):
    folder = ray_cluster["control"]
    reset_control(folder)
    yield folder
    reset_control(folder)


def _outcome(out: Path) -> dict:
    return {r.identity_hash(): (r.metrics, read_per_query(out, r)) for r in read_results(out)}


def _stored_keys(cache_dir: Path) -> list[str]:
    """Every text key the document namespace's chunks hold (twice if stored twice)."""
    ns = EmbeddingCache(cache_dir).namespace_dir(SETTINGS, "document")
    return [k for f in ns.glob("*.keys.json") for k in json.loads(f.read_text())["keys"]]


def _wait_for(what: str, ready) -> None:
    deadline = time.monotonic() + HANG_GUARD_S
    while not ready():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.2)


def test_an_actor_killed_mid_batch_is_restarted_and_its_batch_retried(control, tmp_path, monkeypatch):
    """The 4th of 9 batches kills its actor's process; Ray restarts the actor and retries the batch."""
    beir = write_beir(tmp_path / "beir", n_docs=900, n_queries=30)
    common = dict(dataset=f"beir:{beir}", precisions="fp32,int8,binary,binary+int8")
    evaluate(PLUGIN, results_dir=tmp_path / "local", cache_dir=tmp_path / "cache-local", **common)
    reset_control(control)

    monkeypatch.setattr(ray_engine, "ENCODE_BATCH", 100)
    (control / "kill-at").write_text("3")
    evaluate(PLUGIN, results_dir=tmp_path / "ray", cache_dir=tmp_path / "cache-ray", engine="ray", workers=2,
             **common)

    assert (control / "killed").exists()  # a worker process did die mid-batch
    local = _outcome(tmp_path / "local")
    assert len(local) == 4 and _outcome(tmp_path / "ray") == local
    logged, stored = encoded_log(control), _stored_keys(tmp_path / "cache-ray")
    assert len(logged) == len(set(logged)) == 900  # the killed batch died before encoding; its retry encoded it
    assert sorted(stored) == sorted(logged)


def test_a_shard_task_whose_worker_dies_is_run_again(control, tmp_path):
    executor = ray_engine.open_ray_executor(EngineOptions(engine="ray"), PLUGIN, EncodeSettings(), tmp_path / "cache")
    try:
        parts = list(executor.map(die_once, [(0, 3), (3, 6), (6, 9)], str(control)))
    finally:
        executor.close()
    assert (control / "task-killed").exists()
    assert sorted(parts) == [[0, 1, 2], [3, 4, 5], [6, 7, 8]]


@pytest.mark.parametrize("engine", ["local", "ray"])
def test_a_driver_killed_mid_run_resumes_with_nothing_encoded_twice(control, ray_cluster, tmp_path, engine):
    """A run in a subprocess encodes 2 of its 3 chunks of 2,048 documents (the third call blocks), and is
    killed (SIGKILL) once both chunks are in the cache; the rerun encodes only the rest."""
    import ray

    # whole chunks: Ray Data may hand the actors the chunks in any order, and with a short last chunk
    # the two encoded first were sometimes 2,048 + the remainder, never the 2 x 2,048 awaited below
    n_docs = 3 * 2048
    beir = write_beir(tmp_path / "beir", n_docs=n_docs, n_queries=10)
    cache = tmp_path / "cache"
    (control / "allow").write_text("2")
    kwargs = dict(dataset=f"beir:{beir}", engine=engine, cache_dir=str(cache), results_dir=str(tmp_path / "first"))
    if engine == "ray":
        kwargs["ray_address"] = ray_cluster["address"]  # the module's cluster, which outlives the driver
    code = f"from embedbench.engine.runner import evaluate\nevaluate({PLUGIN!r}, **{kwargs!r})\n"
    driver = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        _wait_for("two persisted chunks and a blocked third call",
                  lambda: (control / "blocked").exists() and len(_stored_keys(cache)) == 2 * 2048
                  or driver.poll() is not None)
    finally:
        driver.send_signal(signal.SIGKILL)
        driver.wait()
    assert driver.returncode == -signal.SIGKILL  # killed, not finished
    assert len(encoded_log(control)) == len(_stored_keys(cache)) == 2 * 2048
    assert not (tmp_path / "first").exists()
    if engine == "ray":  # the dead driver's actors go with it; the rerun needs their CPUs
        _wait_for("the killed driver's actors to be gone", lambda: ray.available_resources().get("CPU", 0) >= 2)

    (control / "allow").unlink()
    results = evaluate(PLUGIN, dataset=f"beir:{beir}", engine=engine, cache_dir=cache,
                       results_dir=tmp_path / "second")

    logged, stored = encoded_log(control), _stored_keys(cache)
    assert len(logged) == len(set(logged)) == n_docs  # across both runs, every document encoded once
    assert len(stored) == len(set(stored)) == n_docs and set(stored) == set(logged)
    assert results[0].provenance.texts_encoded == n_docs - 2 * 2048 + 10  # the rest, and the queries
