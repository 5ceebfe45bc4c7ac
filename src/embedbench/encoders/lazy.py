"""Loading a model only when a text has to be encoded.

An encoder's meta keys the embedding cache, so it is settled when the encoder is built, from the model's
files (configs, tokenizer config, weight headers and hashes); the weights themselves, and torch,
transformers and sentence-transformers with them, load on the first call that needs them. A run whose
vectors are all cached never loads them. When they do load, `check_as_read` compares what the files said
with what was loaded: a difference means cached vectors could be keyed wrongly, so it stops the run.
"""

from __future__ import annotations

from collections.abc import Mapping

from embedbench.errors import ModelError


def quiet_transformers() -> None:
    """transformers' per-weight progress bar is noise on every model load (called just before one)."""
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    except ImportError:
        pass


def check_as_read(where: object, read: Mapping[str, object], loaded: Mapping[str, object]) -> None:
    """ModelError naming every value the loaded model disagrees on with what its files said."""
    wrong = [f"{key}: {read[key]!r} read, {loaded.get(key)!r} loaded" for key in read if read[key] != loaded.get(key)]
    if wrong:
        raise ModelError(f"{where}: the loaded model differs from what its files say ({'; '.join(wrong)}); "
                         f"its meta (and embedding cache key) would be wrong -- please report this model layout")


class LazyModel:
    """The ``model`` of an encoder whose weights load on first use: ``_load_model()`` loads and checks them."""

    _model: object | None = None

    @property
    def loaded(self) -> bool:
        """Whether the model's weights (and torch) have been loaded."""
        return self._model is not None

    @property
    def model(self):
        """The model, loaded on first access by ``_load_model`` (checked against what its files said)."""
        if self._model is None:
            self._model = self._load_model()
        return self._model

    @model.setter
    def model(self, model: object) -> None:  # a stand-in module (tests)
        self._model = model

    def _load_model(self) -> object:
        raise NotImplementedError
