"""The model registry: type checks, duplicates, did-you-mean, entry-point plugins, local folders."""

from __future__ import annotations

import textwrap

import pytest

from embedbench.encoders.loading import load_model, model_registry
from embedbench.encoders.protocol import Encoder
from embedbench.encoders.settings import EncodeSettings
from embedbench.errors import EmbedbenchError, ModelError
from embedbench.registry import Registry


def test_registry_refuses_duplicates_and_wrong_types():
    reg: Registry = Registry("thing", int)
    reg.register("a", 1)
    with pytest.raises(ValueError, match="already registered"):
        reg.register("a", 2)
    with pytest.raises(TypeError, match="must be a int"):
        reg.register("b", "x")


def test_unknown_model_suggests_close_names():
    with pytest.raises(EmbedbenchError, match="did you mean minilm-l6"):
        load_model("minilm-l7", EncodeSettings())


def test_missing_folder_is_one_clear_error(tmp_path):
    with pytest.raises(EmbedbenchError, match="does not exist"):
        load_model(str(tmp_path / "nope"), EncodeSettings())


def test_hub_preset_without_local_weights_names_the_hub_id_and_the_way_out(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hf"))
    with pytest.raises(ModelError) as info:
        load_model("pplx-embed-v1-0.6b", EncodeSettings())
    msg = str(info.value)
    assert "perplexity-ai/pplx-embed-v1-0.6b" in msg and "--model PATH" in msg and "\n" not in msg


def _install_fake_distribution(root, module_source: str) -> None:
    (root / "ebplugin_demo.py").write_text(textwrap.dedent(module_source))
    dist = root / "ebplugin_demo-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: ebplugin-demo\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[embedbench.encoders]\ndemo-encoder = ebplugin_demo:make\n")


def test_third_party_encoders_register_through_entry_points(tmp_path, monkeypatch):
    _install_fake_distribution(tmp_path, """
        import numpy as np
        from embedbench.encoders.protocol import EncoderMeta

        class Demo:
            meta = EncoderMeta(name="demo-encoder", revision="1", fingerprint="demo", dim=4)
            def encode_queries(self, texts):
                return np.ones((len(texts), 4), dtype=np.float32)
            def encode_documents(self, texts):
                return np.ones((len(texts), 4), dtype=np.float32)

        def make(settings):
            return Demo()
    """)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "demo-encoder" in model_registry()
    model = load_model("demo-encoder", EncodeSettings())
    assert isinstance(model, Encoder)
    assert model.encode_queries(["a"]).shape == (1, 4)


def test_entry_point_clashing_with_a_preset_is_refused(tmp_path, monkeypatch):
    _install_fake_distribution(tmp_path, "def make(settings):\n    return None\n")
    ep = tmp_path / "ebplugin_demo-1.0.dist-info" / "entry_points.txt"
    ep.write_text("[embedbench.encoders]\nminilm-l6 = ebplugin_demo:make\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(EmbedbenchError, match="already registered"):
        model_registry()
