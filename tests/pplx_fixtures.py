"""A tiny random pplx-embed folder, written offline in the layout of the real hub repos.

The real `perplexity-ai/pplx-embed-v1-*` / `pplx-embed-context-v1-*` repos hold:
`config.json` (model_type "bidirectional_pplx_qwen3", `auto_map` to the remote
`configuration.PPLXQwen3Config` / `modeling.PPLXQwen3Model`), `configuration.py`, `modeling.py`,
`model.safetensors` (Qwen3Model keys, no "model." prefix), the tokenizer files, and the
sentence-transformers files `modules.json` (Transformer -> 1_Pooling (mean) ->
`st_quantize.FlexibleQuantizer` with kwargs ["quantization"]), `sentence_bert_config.json`,
`1_Pooling/config.json`, `config_sentence_transformers.json` and `st_quantize.py`.

`make_tiny_pplx` writes the same file names with a 2-layer, 64-wide random bidirectional Qwen3 and a
word-level tokenizer over a small vocabulary. The remote-code files below are written for this
fixture (not copied from the hub); their behaviour follows the public description: Qwen3Model with
`is_causal = False` on every layer and a padding-only mask built with transformers' mask utilities,
and `FlexibleQuantizer` with `quantization` in ("int8", "binary", "ubinary").
"""

from __future__ import annotations

import json
from pathlib import Path

PAD = "<|endoftext|>"
UNK = "<unk>"

# Words the tests use, plus filler so texts of any length can be made.
WORDS = (
    "the a an of to in on and or is was are be it this that with for as at by from "
    "cat dog bird fish mouse horse cow sheep lion tiger "
    "red green blue black white big small old new fast slow "
    "runs jumps sleeps eats swims flies sits walks reads writes "
    "house tree river city road sea sky sun moon star "
    "paris france london england berlin germany rome italy madrid spain "
    "capital country river mountain lake forest desert island ocean valley "
    "first second third last alpha beta gamma delta omega zeta"
).split()
FILLER = [f"w{i}" for i in range(60)]
VOCAB = [PAD, UNK, *WORDS, *FILLER]

CONFIGURATION_PY = '''\
from transformers import Qwen3Config


class PPLXQwen3Config(Qwen3Config):
    """Qwen3's configuration under the pplx-embed model type."""

    model_type = "bidirectional_pplx_qwen3"
'''

MODELING_PY = '''\
"""Qwen3Model as a bidirectional encoder: no causal mask, only padding is masked.

Written for the embedbench test fixture, for transformers 5.x: the mask comes from
`create_causal_mask` with an `or_mask_function` that lets every query see every non-padding key,
which turns the causal mask into a padding-only mask for every attention implementation.
"""

import inspect

import torch
from transformers import Qwen3Model
from transformers.masking_utils import create_causal_mask

from .configuration import PPLXQwen3Config

_PARAMS = inspect.signature(create_causal_mask).parameters
_EMBEDS_KEY = "inputs_embeds" if "inputs_embeds" in _PARAMS else "input_embeds"
_CACHE_KEY = "cache" if "cache" in _PARAMS else "past_key_values"


def _sees_non_padding(attention_mask):
    def inner(batch_idx, head_idx, q_idx, kv_idx):
        if attention_mask is None:
            return torch.ones((), dtype=torch.bool)
        return attention_mask[batch_idx, kv_idx].to(torch.bool)

    return inner


class PPLXQwen3Model(Qwen3Model):
    config_class = PPLXQwen3Config
    _supports_sdpa = True
    _supports_flash_attn = True

    def post_init(self):
        super().post_init()
        for layer in self.layers:
            layer.self_attn.is_causal = False

    def forward(self, input_ids=None, attention_mask=None, position_ids=None, inputs_embeds=None, **kwargs):
        if inputs_embeds is None:
            inputs_embeds = self.embed_tokens(input_ids)
        mask_kwargs = {
            "config": self.config,
            _EMBEDS_KEY: inputs_embeds,
            "attention_mask": attention_mask,
            _CACHE_KEY: None,
            "position_ids": position_ids,
            "or_mask_function": _sees_non_padding(attention_mask),
        }
        if "cache_position" in _PARAMS:
            mask_kwargs["cache_position"] = torch.arange(inputs_embeds.shape[1], device=inputs_embeds.device)
        mask = create_causal_mask(**mask_kwargs)
        masks = {layer_type: mask for layer_type in set(self.config.layer_types)}
        kwargs.pop("token_type_ids", None)
        return super().forward(
            attention_mask=masks, position_ids=position_ids, inputs_embeds=inputs_embeds, use_cache=False, **kwargs
        )
'''

ST_QUANTIZE_PY = '''\
"""The pplx-embed quantizer module: tanh-based int8 and sign-based binary codes of the pooled vector x.

Written for the embedbench test fixture after the public description of the card's st_quantize.py:
int8 = clamp(round(tanh(x) * 127), -128, 127); binary = +1 where x >= 0 else -1 (tanh(x) is the soft
version used in training; the hard codes are returned with a straight-through estimator);
ubinary = numpy.packbits(x >= 0). There is no float option.
"""

from typing import Literal

import numpy as np
import torch
from sentence_transformers.models import Module


class _StraightThrough(torch.nn.Module):
    def soft(self, x):
        return torch.tanh(x)

    def hard(self, x):
        raise NotImplementedError

    def forward(self, x):
        soft = self.soft(x)
        return self.hard(x).detach() + soft - soft.detach()


class Int8TanhQuantizer(_StraightThrough):
    def hard(self, x):
        return torch.clamp(torch.round(torch.tanh(x) * 127), -128, 127)


class BinaryTanhQuantizer(_StraightThrough):
    def hard(self, x):
        return torch.where(x >= 0, 1.0, -1.0)


class PackedBinaryQuantizer:
    def __call__(self, x):
        return torch.from_numpy(np.packbits(x.detach().cpu().numpy() >= 0, axis=-1)).to(x.device)


class FlexibleQuantizer(Module):
    def __init__(self):
        super().__init__()
        self._int8 = Int8TanhQuantizer()
        self._binary = BinaryTanhQuantizer()
        self._ubinary = PackedBinaryQuantizer()

    def forward(self, features, quantization: Literal["int8", "binary", "ubinary"] = "int8", **kwargs):
        x = features["sentence_embedding"]
        if quantization == "int8":
            features["sentence_embedding"] = self._int8(x)
        elif quantization == "binary":
            features["sentence_embedding"] = self._binary(x)
        elif quantization == "ubinary":
            features["sentence_embedding"] = self._ubinary(x)
        else:
            raise ValueError(f"quantization must be int8, binary or ubinary, got {quantization!r}")
        return features

    @classmethod
    def load(cls, model_name_or_path, *args, **kwargs):
        return cls()

    def save(self, output_path, *args, **kwargs):
        return None
'''


def tiny_qwen3_config_dict(*, vocab_size: int, max_positions: int = 512) -> dict:
    """The Qwen3 hyper-parameters of the tiny model (hidden 64, 2 layers, 4 heads, 2 kv heads, ffn 128)."""
    return {
        "vocab_size": vocab_size,
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "head_dim": 16,
        "hidden_act": "silu",
        "max_position_embeddings": max_positions,
        "rms_norm_eps": 1e-6,
        "rope_theta": 1000000.0,
        "attention_bias": False,
        "attention_dropout": 0.0,
        "tie_word_embeddings": False,
        "use_sliding_window": False,
        "use_cache": False,
        "initializer_range": 0.2,
        "pad_token_id": 0,
        "bos_token_id": None,
        "eos_token_id": 0,
    }


def _write_tokenizer(path: Path, max_length: int) -> None:
    from tokenizers import Tokenizer, normalizers, pre_tokenizers
    from tokenizers.models import WordLevel

    tok = Tokenizer(WordLevel({w: i for i, w in enumerate(VOCAB)}, unk_token=UNK))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.save(str(path / "tokenizer.json"))
    # Like Qwen's tokenizer: no special tokens are added, "<|endoftext|>" is eos and pad, right padding.
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "eos_token": PAD,
        "pad_token": PAD,
        "unk_token": UNK,
        "padding_side": "right",
        "model_max_length": max_length,
        "model_input_names": ["input_ids", "attention_mask"],
        "clean_up_tokenization_spaces": False,
    }
    (path / "tokenizer_config.json").write_text(json.dumps(config, indent=2))
    (path / "special_tokens_map.json").write_text(json.dumps({"eos_token": PAD, "pad_token": PAD, "unk_token": UNK}))


def make_tiny_pplx(path: Path, *, contextual: bool = False, seed: int = 0, max_length: int = 512) -> Path:
    """Write a tiny random pplx-embed(-context) folder at `path` and return it.

    `contextual` only changes the names (the context models share the architecture and files).
    """
    import torch
    from safetensors.torch import save_file
    from transformers import Qwen3Config, Qwen3Model

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    hyper = tiny_qwen3_config_dict(vocab_size=len(VOCAB), max_positions=max_length)

    torch.manual_seed(seed)
    model = Qwen3Model(Qwen3Config(**hyper))
    with torch.no_grad():  # larger random weights than the default init, so vectors differ clearly
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.copy_(1.0 + 0.1 * torch.randn_like(p))
            else:
                p.normal_(0.0, 0.2)
    state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(path / "model.safetensors"), metadata={"format": "pt"})

    config = {
        "architectures": ["PPLXQwen3Model"],
        "auto_map": {
            "AutoConfig": "configuration.PPLXQwen3Config",
            "AutoModel": "modeling.PPLXQwen3Model",
        },
        "model_type": "bidirectional_pplx_qwen3",
        "dtype": "float32",
        "_name_or_path": "tiny-pplx-embed-context-v1" if contextual else "tiny-pplx-embed-v1",
        **hyper,
    }
    (path / "config.json").write_text(json.dumps(config, indent=2))
    (path / "configuration.py").write_text(CONFIGURATION_PY)
    (path / "modeling.py").write_text(MODELING_PY)
    (path / "st_quantize.py").write_text(ST_QUANTIZE_PY)
    _write_tokenizer(path, max_length)

    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "", "type": "st_quantize.FlexibleQuantizer", "kwargs": ["quantization"]},
    ]
    (path / "modules.json").write_text(json.dumps(modules, indent=2))
    (path / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": max_length, "do_lower_case": False}))
    (path / "1_Pooling").mkdir(exist_ok=True)
    pooling = {
        "word_embedding_dimension": hyper["hidden_size"],
        "pooling_mode_cls_token": False,
        "pooling_mode_mean_tokens": True,
        "pooling_mode_max_tokens": False,
        "pooling_mode_mean_sqrt_len_tokens": False,
        "pooling_mode_weightedmean_tokens": False,
        "pooling_mode_lasttoken": False,
        "include_prompt": True,
    }
    (path / "1_Pooling" / "config.json").write_text(json.dumps(pooling, indent=2))
    st_config = {"prompts": {}, "default_prompt_name": None, "similarity_fn_name": "cosine"}
    (path / "config_sentence_transformers.json").write_text(json.dumps(st_config, indent=2))
    return path


def text_of(n_words: int, offset: int = 0) -> str:
    """A text of exactly `n_words` known tokens (filler words)."""
    return " ".join(FILLER[(offset + i) % len(FILLER)] for i in range(n_words))
