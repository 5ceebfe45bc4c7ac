"""`--engine ray` (issue 12, item 3 and its bad input): the same numbers as `--engine local`, encoded by actors.

One local Ray cluster of 2 CPUs serves the module (tests/ray_plugins.py); the executor finds this process
already connected and uses that cluster. Nothing about Ray is mocked.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from ray_plugins import ray_cluster  # noqa: F401  (the module's cluster fixture)

from embedbench.cli import main
from embedbench.encoders.hashing import HashingEncoder
from embedbench.encoders.loading import load_model
from embedbench.encoders.settings import EncodeSettings
from embedbench.engine import executors, ray_cluster as ray_engine
from embedbench.engine.cache import EmbeddingCache
from embedbench.engine.runner import evaluate
from embedbench.errors import EmbedbenchError, ModelError
from embedbench.results import read_per_query, read_results

REPO = Path(__file__).resolve().parents[1]
PRECISIONS = "fp32,int8,binary,binary+int8"
N_SENTENCES = 13000  # distinct texts among the 13,014 answer sentences of XQuADRLAReQA (suites/xquad-r.yaml)


def _xquad_suite(tmp_path: Path) -> str:
    """XQuAD-R's LAReQA task: 13,014 real answer sentences of 11 languages in one pool."""
    suite = tmp_path / "xq.yaml"
    suite.write_text("name: xq\ntasks:\n  - {name: XQ, loader: xquad-r, path: xquad-r, main_score: map_at_20, "
                     "options: {mode: cross-lingual, unit: sentence}}\n")
    return str(suite)


@contextmanager
def _one_blas_thread() -> Iterator[None]:
    """This process computes with one BLAS thread, as the 1-CPU actors do (Ray sets their OMP_NUM_THREADS):
    the hashing encoder's float rounding depends on its BLAS threads and batches, and the Ray engine's
    batches are the local engine's, so both engines then encode every text to the same bits."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield


def _outcome(out: Path) -> dict:
    """identity -> (metrics, per-query values, texts encoded, texts from the cache) of every result in ``out``."""
    return {r.identity_hash(): (r.metrics, read_per_query(out, r), r.provenance.texts_encoded,
                                r.provenance.texts_cached) for r in read_results(out)}


def _doc_keys(cache_dir: Path, settings: dict) -> list[str]:
    """Every text key held by the document namespace's chunks (a key twice if stored twice)."""
    ns = EmbeddingCache(cache_dir).namespace_dir(settings, "document")
    return [k for f in ns.glob("*.keys.json") for k in json.loads(f.read_text())["keys"]]


def test_ray_equals_local_on_xquad_r_sharded_and_encoded_by_actors(ray_cluster, shared_data, tmp_path, monkeypatch):
    """Every metric, per-query value and identity equal, fp32 / int8 / binary / binary+int8, over 4 shards.

    Cold caches both; each shard's 4,096 sentences are 2 batches, one per actor. The Ray run's documents
    are encoded by the actors only: the driver's encoder refuses documents (the patch lives in this
    process; the actors load the model in theirs); the vectors they stored are the local run's, bit for bit.
    """
    monkeypatch.setattr(executors, "SEARCH_BLOCK", 1024)  # shards are whole search blocks: 4,096 = 4 blocks
    common = dict(suite=_xquad_suite(tmp_path), data_dir=shared_data, precisions=PRECISIONS, limit_queries=300,
                  shard_size=4096)
    with _one_blas_thread():
        evaluate("hashing", results_dir=tmp_path / "local", cache_dir=tmp_path / "cache-local", **common)

    def refuse(self, texts):
        raise AssertionError("the driver encoded documents")

    monkeypatch.setattr(HashingEncoder, "encode_documents", refuse)
    with _one_blas_thread():
        evaluate("hashing", results_dir=tmp_path / "ray", cache_dir=tmp_path / "cache-ray", engine="ray", workers=2,
                 **common)

    local, ray = _outcome(tmp_path / "local"), _outcome(tmp_path / "ray")
    assert len(local) == 4 and local == ray  # identities, metrics, per query, and what was encoded
    assert {v[2] for v in ray.values()} == {N_SENTENCES + 300}
    settings = load_model("hashing", EncodeSettings()).meta.encode_settings()
    keys = _doc_keys(tmp_path / "cache-ray", settings)
    assert len(keys) == len(set(keys)) == N_SENTENCES  # every sentence encoded once, by the actors
    a, b = EmbeddingCache(tmp_path / "cache-local"), EmbeddingCache(tmp_path / "cache-ray")
    assert np.array_equal(a.vectors(settings, "document", keys), b.vectors(settings, "document", keys))


def test_a_one_shard_corpus_is_encoded_by_the_actors_and_read_back(ray_cluster, beir_dir, tmp_path):
    """The one-shard path (`encode`): the vectors come back from the cache in order; a warm rerun encodes nothing."""
    with _one_blas_thread():
        local = evaluate("hashing", dataset=f"beir:{beir_dir}", precisions=PRECISIONS, write=False,
                         cache_dir=tmp_path / "cache-local")
        cold = evaluate("hashing", dataset=f"beir:{beir_dir}", precisions=PRECISIONS, write=False, engine="ray",
                        cache_dir=tmp_path / "cache-ray")
        warm = evaluate("hashing", dataset=f"beir:{beir_dir}", precisions=PRECISIONS, write=False, engine="ray",
                        cache_dir=tmp_path / "cache-ray")
    assert [r.metrics for r in cold] == [r.metrics for r in warm] == [r.metrics for r in local]
    assert cold[0].provenance.texts_encoded == local[0].provenance.texts_encoded == 40 + 12
    assert cold[0].provenance.texts_cached == local[0].provenance.texts_cached == 0
    assert warm[0].provenance.texts_encoded == 0 and warm[0].provenance.texts_cached == 52


# ---------------------------------------------------------------------- bad input


def _eval_argv(beir_dir: Path, out: Path, *extra: str) -> list[str]:
    return ["eval", "--model", "hashing", "--dataset", f"beir:{beir_dir}", "--results-dir", str(out), *extra]


@pytest.mark.parametrize("extra, says", [
    (["--engine", "ray", "--workers", "0"], "--workers must be a positive integer"),
    (["--engine", "ray", "--gpus-per-worker", "-1"], "--gpus-per-worker must be a number >= 0"),
    (["--engine", "ray", "--cpus-per-worker", "0"], "--cpus-per-worker must be a number > 0"),
    (["--workers", "2"], "apply to --engine ray only"),
    (["--engine", "ray", "--gpus-per-worker", "1"], "no node can host a worker of 1 GPUs and 1 CPUs"),
    (["--engine", "ray", "--workers", "3"], "--workers 3: the Ray cluster has 2 CPUs"),
])
def test_bad_engine_options_exit_2_with_one_line(ray_cluster, beir_dir, tmp_path, capsys, extra, says):
    out = tmp_path / "results"
    assert main(_eval_argv(beir_dir, out, *extra)) == 2
    err = capsys.readouterr().err.strip()
    assert says in err and "\n" not in err
    assert not out.exists()


def test_a_cache_folder_the_workers_do_not_see_exits_2_naming_it(ray_cluster, beir_dir, tmp_path, monkeypatch,
                                                                  capsys):
    """The workers are handed another folder than this process's cache (as a node without the shared mount
    would see its own local one): their probe file lands there, and the driver does not find it."""
    cache, elsewhere = Path(os.environ["EMBEDBENCH_CACHE_DIR"]), tmp_path / "node-local"
    elsewhere.mkdir()
    monkeypatch.setattr(ray_engine, "_path_on_workers", lambda root: str(elsewhere))
    out = tmp_path / "results"
    assert main(_eval_argv(beir_dir, out, "--engine", "ray")) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and f"cache folder {cache} is not shared with the Ray workers" in err
    assert "a path every node sees" in err
    assert [p.name.startswith(".probe-") for p in elsewhere.iterdir()] == [True]  # a worker did write its probe
    assert not out.exists()


def _cli_in_subprocess(argv: list[str], prelude: str = "", timeout: float = 180) -> subprocess.CompletedProcess:
    code = f"{prelude}\nimport sys\nfrom embedbench.cli import main\nsys.exit(main({argv!r}))\n"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout, cwd=REPO)


def test_an_unreachable_ray_address_exits_2_quickly(beir_dir, tmp_path):
    """A fresh process (this one is connected to the module's cluster, which a run would use as it is)."""
    out = tmp_path / "results"
    proc = _cli_in_subprocess(_eval_argv(beir_dir, out, "--engine", "ray", "--ray-address", "127.0.0.1:1"),
                              timeout=ray_engine.CONNECT_TIMEOUT_S + 120)  # a hang guard, not a measurement
    assert proc.returncode == 2, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert "cannot reach the Ray cluster at 127.0.0.1:1" in last
    assert not out.exists()


def test_engine_ray_without_ray_installed_exits_2_with_the_install_command(beir_dir, tmp_path):
    out = tmp_path / "results"
    proc = _cli_in_subprocess(_eval_argv(beir_dir, out, "--engine", "ray"),
                              prelude="import sys\nsys.modules['ray'] = None  # how Python reports a missing module")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "pip install 'embedbench[ray]'" in lines[0], proc.stderr
    assert not out.exists()


def test_an_encoder_object_is_refused_by_the_ray_engine(ray_cluster, fake_encoder, beir_dir, tmp_path):
    with pytest.raises(EmbedbenchError, match="not an encoder object"):
        evaluate(fake_encoder, dataset=f"beir:{beir_dir}", engine="ray", results_dir=tmp_path / "r")
    assert not (tmp_path / "r").exists()


def test_the_local_engine_never_imports_ray(beir_dir, tmp_path):
    code = (f"import sys\nfrom embedbench.engine.runner import evaluate\n"
            f"evaluate('hashing', dataset='beir:{beir_dir}', precisions='fp32,int8,binary', write=False, "
            f"cache_dir={str(tmp_path / 'cache')!r})\n"
            f"print(sorted(m for m in sys.modules if m == 'ray' or m.startswith(('ray.', 'embedbench.engine.ray'))))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "[]"


def test_workers_that_load_another_model_than_the_driver_fail_the_run(ray_cluster, beir_dir, tmp_path, monkeypatch):
    """The driver's `hashing` is not what a worker loads under that name (as a node with other versions
    would load): the actors refuse to write vectors under the driver's cache key."""
    import embedbench.engine.context as engine_context

    monkeypatch.setattr(engine_context, "load_model", lambda ref, settings: HashingEncoder(dim=64, name=ref))
    with pytest.raises(EmbedbenchError, match="loaded model 'hashing' with other encode settings .*fingerprint") \
            as info:
        evaluate("hashing", dataset=f"beir:{beir_dir}", engine="ray", results_dir=tmp_path / "r",
                 cache_dir=tmp_path / "cache")
    assert type(info.value) is ModelError  # the worker's own error, not Ray's wrapper (the CLI prints one line)
    assert not (tmp_path / "r").exists()
