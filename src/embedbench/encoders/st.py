"""The sentence-transformers plugin: any SentenceTransformer folder or hub id behind the encoder contract."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from embedbench.encoders.protocol import EncoderMeta
from embedbench.encoders.settings import EncodeSettings


class SentenceTransformerEncoder:
    """Encodes with `SentenceTransformer.encode` (which already sorts by length to keep padding small).

    Returns the model's own output before any normalization: the harness normalizes for cosine.
    """

    def __init__(
        self,
        model_ref: str,
        *,
        name: str,
        revision: str,
        fingerprint: str,
        settings: EncodeSettings,
        prompts: dict[str, str] | None = None,
        hub_revision: str | None = None,
        source: str = "",
        license: str | None = None,
    ) -> None:
        from sentence_transformers import SentenceTransformer

        self._settings = settings
        self.model = SentenceTransformer(
            model_ref,
            device=settings.device,
            revision=hub_revision,
            trust_remote_code=settings.trust_remote_code,
        )
        if settings.max_length is not None:
            self.model.max_seq_length = settings.max_length
        self._prompts = dict(prompts or {})
        pooling = _pooling_mode(self.model)
        self.meta = EncoderMeta(
            name=name,
            revision=revision,
            fingerprint=fingerprint,
            dim=self.model.get_embedding_dimension(),
            max_tokens=self.model.max_seq_length,
            pooling=pooling,
            prompts=self._prompts,
            source=source,
            license=license,
        )

    def _encode(self, texts: Sequence[str], prompt: str | None) -> np.ndarray:
        vectors = self.model.encode(
            list(texts),
            prompt=prompt or None,
            batch_size=self._settings.batch_size,
            convert_to_numpy=True,
            normalize_embeddings=False,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, self._prompts.get("query"))

    def encode_documents(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, self._prompts.get("document"))

    def count_truncated(self, texts: Sequence[str], role: str) -> int:
        """How many texts (with the role's prompt) are longer than the model's max length in tokens."""
        prompt = self._prompts.get(role, "")
        tokenizer = self.model.tokenizer
        limit = self.model.max_seq_length
        lengths = tokenizer([prompt + t for t in texts], add_special_tokens=True, truncation=False,
                            verbose=False)["input_ids"]
        return sum(len(ids) > limit for ids in lengths)


def _pooling_mode(model: object) -> str | None:
    for module in model:  # type: ignore[attr-defined]
        mode = getattr(module, "pooling_mode", None)
        if isinstance(mode, str):
            return mode
    return None
