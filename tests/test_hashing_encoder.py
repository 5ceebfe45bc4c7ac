"""The hashing encoder: deterministic, batch-independent, unit vectors, honest meta, pinned values."""

from __future__ import annotations

import numpy as np
import pytest

import embedbench.encoders.hashing as hashing
from embedbench.encoders.hashing import HashingEncoder, build, rotation
from embedbench.encoders.protocol import Encoder
from embedbench.encoders.settings import EncodeSettings
from embedbench.errors import EmbedbenchError

TEXTS = ["Who is the CEO of Kalendo Labs?", "kalendo labs ceo", "Wie viele Einwohner hat Torivo?",
         "Каримо население", "カレンド・システムズの本社はどこですか", "price of the Miru X300", "", "a\x00b"]


def test_deterministic_and_independent_of_batching(monkeypatch):
    enc = HashingEncoder()
    whole = enc.encode_documents(TEXTS)
    assert whole.dtype == np.float32 and whole.shape == (len(TEXTS), 384)
    assert np.array_equal(whole, HashingEncoder().encode_queries(TEXTS))  # a fresh instance, the query side
    one_by_one = np.concatenate([enc.encode([t]) for t in TEXTS])
    np.testing.assert_allclose(one_by_one, whole, atol=1e-6)
    monkeypatch.setattr(hashing, "_CHUNK_BYTES", 40)  # many small chunks
    np.testing.assert_allclose(enc.encode(TEXTS * 3), np.concatenate([whole] * 3), atol=1e-6)


def test_unit_norm_and_empty_text_is_zero():
    x = HashingEncoder().encode(TEXTS)
    norms = np.linalg.norm(x, axis=1)
    np.testing.assert_allclose(norms[:6], 1.0, atol=1e-5)
    assert norms[6] == 0.0  # "" has only the padding spaces: no 3-gram
    assert np.isfinite(x).all()


def test_similar_texts_are_closer_than_unrelated_ones():
    x = HashingEncoder().encode(["Who is the CEO of Kalendo Labs?", "kalendo labs ceo", "price of the Miru X300"])
    assert x[0] @ x[1] > 0.4 > x[0] @ x[2]


def test_rotation_is_orthogonal_so_inner_products_are_kept():
    r = rotation(384, 0)
    np.testing.assert_allclose(r @ r.T, np.eye(384), atol=1e-5)
    assert not np.allclose(rotation(384, 1), r)
    # Every coordinate is dense: a short query's binary code is not mostly zero bits.
    bits = HashingEncoder().encode(["kalendo labs ceo"]) > 0
    assert 0.3 < bits.mean() < 0.7


def test_meta_names_every_setting_and_implements_the_protocol():
    enc = HashingEncoder(dim=256, ngrams=(2, 4), seed=7, name="h")
    assert isinstance(enc, Encoder)
    assert enc.meta.dim == 256 and enc.meta.name == "h" and enc.meta.native_quantizers == {}
    assert enc.meta.fingerprint == f"hashing-v{hashing.VERSION}:dim=256:ngrams=2,4:seed=7"
    assert enc.meta.revision == f"v{hashing.VERSION}"
    fingerprints = {HashingEncoder(**kw).meta.fingerprint for kw in ({}, {"dim": 512}, {"ngrams": (3,)}, {"seed": 1})}
    assert len(fingerprints) == 4
    assert enc.encode(["x y z"]).shape == (1, 256)
    assert not np.allclose(HashingEncoder(seed=1).encode(TEXTS[:1]), HashingEncoder().encode(TEXTS[:1]))
    built = build(EncodeSettings())
    assert isinstance(built, HashingEncoder) and built.meta.dim == 384


def test_pinned_values_change_only_with_a_version_bump():
    # If this fails, vectors changed: bump hashing.VERSION (the cache is keyed by the fingerprint).
    x = HashingEncoder().encode(["Who is the CEO of Kalendo Labs?"])[0]
    np.testing.assert_allclose(x[:4], PINNED, atol=1e-5)


PINNED = [-0.008645, -0.0255, -0.030778, -0.02793]


@pytest.mark.parametrize("kwargs", [{"dim": 4}, {"dim": True}, {"ngrams": ()}, {"ngrams": (0, 3)}, {"ngrams": (9,)}])
def test_bad_settings_are_one_line_errors(kwargs):
    with pytest.raises(EmbedbenchError, match="hashing encoder"):
        HashingEncoder(**kwargs)


def test_non_string_text_is_an_error():
    with pytest.raises(EmbedbenchError, match="text 1 is int"):
        HashingEncoder().encode(["ok", 3])  # type: ignore[list-item]


def test_hashing_is_a_preset_loaded_by_name() -> None:
    from embedbench.encoders.loading import load_model

    enc = load_model("hashing", EncodeSettings())
    assert isinstance(enc, HashingEncoder)
    assert enc.meta.dim == 384
    assert enc.encode_queries(["a query"]).shape == (1, 384)
