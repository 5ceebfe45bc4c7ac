"""The ONNX plugin: a model exported to ONNX, run by onnxruntime, tokenized by the folder's AutoTokenizer.

The graph is fed `input_ids` and `attention_mask`, plus `token_type_ids` (zeros unless the
tokenizer gives them) and `position_ids` when the graph asks for them. Which output is the
vector: `output_name` if given (pplx's export holds pooled float, hidden states, int8 and binary
outputs: name the pooled float one), else the one float rank-2 output other than BERT's
`pooler_output`, else a rank-3 `last_hidden_state` / `token_embeddings`, pooled with `pooling`
(mean by default) over the attention mask. Runs on CUDA when the device is cuda (an error when
onnxruntime offers no CUDA provider, or falls back from it), else on CPU (mps: an error);
`meta.device_type` says where it ran and `meta.compute_dtype` is the graph's own float type (float16
for a half-precision export) -- a graph computes in what it was exported in, so a --dtype other
than auto is an error -- and the onnxruntime version joins the cache key.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from embedbench.encoders.fingerprint import folder_fingerprint
from embedbench.encoders.lazy import quiet_transformers
from embedbench.encoders.load_errors import load_failure
from embedbench.encoders.pooling import check_pooling, pool
from embedbench.encoders.protocol import EncoderMeta
from embedbench.encoders.runtime import TORCH_STACK
from embedbench.encoders.settings import EncodeSettings
from embedbench.encoders.tokens import TokenizedEncoder, ensure_pad_token, model_max_length, pad_batch
from embedbench.errors import ModelError

_TOKEN_OUTPUTS = ("last_hidden_state", "token_embeddings")
_FEEDABLE = {"input_ids", "attention_mask", "token_type_ids", "position_ids"}
_ONNX_DTYPES = {"tensor(float)": "float32", "tensor(float16)": "float16", "tensor(bfloat16)": "bfloat16"}


def find_onnx_file(folder: Path) -> Path:
    """model.onnx in the folder or its onnx/ subfolder, else the only .onnx file there."""
    for candidate in (folder / "model.onnx", folder / "onnx" / "model.onnx"):
        if candidate.is_file():
            return candidate
    found = sorted(folder.glob("*.onnx")) + sorted(folder.glob("onnx/*.onnx"))
    if len(found) != 1:
        what = "no .onnx file" if not found else f"{len(found)} .onnx files; pass onnx_file"
        raise ModelError(f"{folder}: {what}")
    return found[0]


def choose_output(outputs: Sequence[tuple[str, str, list]], output_name: str | None) -> tuple[str, bool]:
    """(name, is_token_level) from the graph's (name, type, shape) outputs; see the module docstring."""
    names = [name for name, _, _ in outputs]
    if output_name is not None:
        if output_name not in names:
            raise ModelError(f"ONNX graph has no output {output_name!r} (it has {', '.join(names)})")
        rank = next(len(shape) for name, _, shape in outputs if name == output_name)
        return output_name, rank == 3
    floats = [(name, len(shape)) for name, kind, shape in outputs if kind in ("tensor(float)", "tensor(float16)")]
    pooled = [name for name, rank in floats if rank == 2 and name != "pooler_output"]
    if len(pooled) == 1:
        return pooled[0], False
    tokens = [name for name, rank in floats if rank == 3 and name in _TOKEN_OUTPUTS]
    if len(pooled) == 0 and tokens:
        return tokens[0], True
    raise ModelError(f"cannot tell which ONNX output is the embedding among {', '.join(names)}; pass output_name")


def check_onnx_settings(settings: EncodeSettings) -> None:
    """One line when onnxruntime cannot run as asked: a --dtype (the graph's own is what computes), or mps."""
    if settings.dtype != "auto":
        raise ModelError(f"--dtype {settings.dtype}: an ONNX graph computes in the dtype it was exported in; "
                         f"use --dtype auto (or export the model in that dtype)")
    if settings.device == "mps":
        raise ModelError("--device mps: the ONNX plugin runs on cpu or cuda (onnxruntime's CUDA provider)")


def _providers(device: str) -> list:
    """onnxruntime execution providers for the device: on cuda, CUDA first (one line when onnxruntime here has
    none) and CPU for the nodes it cannot run; else CPU."""
    import onnxruntime as ort

    if not device.startswith("cuda"):
        return ["CPUExecutionProvider"]
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        raise ModelError(f"--device {device}: this onnxruntime ({ort.__version__}) has no CUDA provider; install "
                         f"onnxruntime-gpu or use --device cpu")
    return [("CUDAExecutionProvider", {"device_id": int(device.partition(":")[2] or 0)}), "CPUExecutionProvider"]


def _check_placed(session: object, device: str) -> None:
    """onnxruntime may fall back to CPU when CUDA fails to start: a cuda run must not quietly run on CPU."""
    if device.startswith("cuda") and "CUDAExecutionProvider" not in session.get_providers():  # type: ignore
        raise ModelError(f"--device {device}: onnxruntime could not start its CUDA provider (it fell back to CPU)")


def _open(path: Path, folder: Path, settings: EncodeSettings) -> tuple[object, object]:
    """(onnxruntime session on the graph, the folder's tokenizer with a pad token); one line on failure."""
    quiet_transformers()
    import onnxruntime as ort
    from transformers import AutoTokenizer

    providers = _providers(settings.device)
    try:
        session = ort.InferenceSession(str(path), providers=providers)
        tokenizer = AutoTokenizer.from_pretrained(str(folder), trust_remote_code=settings.trust_remote_code)
    except Exception as exc:  # noqa: BLE001 - any loading failure becomes one line
        raise load_failure("ONNX", str(path), exc) from exc
    _check_placed(session, settings.device)
    ensure_pad_token(tokenizer, folder)
    return session, tokenizer


def _graph_inputs(session: object, path: Path) -> dict[str, str]:
    """The graph's input names and types; only inputs this plugin knows how to feed are accepted."""
    inputs = {i.name: i.type for i in session.get_inputs()}  # type: ignore[attr-defined]
    unknown = sorted(set(inputs) - _FEEDABLE)
    if unknown or "input_ids" not in inputs:
        raise ModelError(f"{path}: cannot feed ONNX inputs {', '.join(unknown) or 'without input_ids'}")
    return inputs


class OnnxEncoder(TokenizedEncoder):
    """Encodes with onnxruntime; returns float32 vectors before normalization."""

    def __init__(
        self,
        model_dir: str | Path,
        *,
        settings: EncodeSettings | None = None,
        onnx_file: str | Path | None = None,
        output_name: str | None = None,
        pooling: str = "mean",
        prompts: dict[str, str] | None = None,
        name: str | None = None,
        revision: str | None = None,
        fingerprint: str | None = None,
        source: str = "",
        license: str | None = None,
    ) -> None:
        folder = Path(model_dir).expanduser()
        if not folder.is_dir():
            raise ModelError(f"ONNX model folder {str(folder)!r} does not exist")
        self._settings = settings = settings or EncodeSettings()
        check_onnx_settings(settings)
        self._pooling, self._prompts = check_pooling(pooling), dict(prompts or {})
        path = folder / onnx_file if onnx_file is not None else find_onnx_file(folder)
        self.session, self.tokenizer = _open(path, folder, settings)
        self._graph_inputs = _graph_inputs(self.session, path)
        outputs = [(o.name, o.type, list(o.shape or [])) for o in self.session.get_outputs()]
        self._output, self._token_level = choose_output(outputs, output_name)
        self.max_length = settings.max_length or model_max_length(self.tokenizer, folder)
        if revision is None:
            revision = f"sha:{folder_fingerprint(folder)}"
        if fingerprint is None:
            where = path.relative_to(folder) if path.is_relative_to(folder) else path.name
            fingerprint = f"{revision}:onnx:{where}:{self._output}"
        self.meta = self._describe(
            next((shape, kind) for n, kind, shape in outputs if n == self._output),
            name=name or str(folder), revision=revision, fingerprint=fingerprint,
            source=source or f"local:{path}", license=license,
        )

    def _describe(self, output: tuple[list, str], **identity: object) -> EncoderMeta:
        """The meta record: what was loaded (`identity`), the chosen output's size and type, where it runs."""
        shape, kind = output
        on_cuda = "CUDAExecutionProvider" in self.session.get_providers()  # a fallback to CPU was refused
        return EncoderMeta(
            dim=shape[-1] if shape and isinstance(shape[-1], int) else None,
            max_tokens=self.max_length,
            pooling=self._pooling if self._token_level else f"graph:{self._output}",
            prompts=self._prompts,
            device_type="cuda" if on_cuda else "cpu",
            compute_dtype=_ONNX_DTYPES.get(kind, "float32"),
            libraries=(*TORCH_STACK, "onnxruntime"),
            **identity,  # type: ignore[arg-type]
        )

    def _feed(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        mask = batch["attention_mask"]
        batch.setdefault("token_type_ids", np.zeros_like(mask))
        batch["position_ids"] = np.clip(np.cumsum(mask, axis=1) - 1, 0, None)
        return {name: batch[name].astype(np.int32 if kind == "tensor(int32)" else np.int64)
                for name, kind in self._graph_inputs.items()}

    def _embed_rows(self, enc: dict[str, list[list[int]]], rows: np.ndarray) -> np.ndarray:
        """float32 vectors of the chosen rows: the graph's pooled output, or its token states pooled here."""
        import torch

        batch = pad_batch(enc, rows, self.tokenizer.pad_token_id, self.tokenizer.padding_side == "left")
        (result,) = self.session.run([self._output], self._feed(batch))
        vecs = np.asarray(result, dtype=np.float32)
        if self._token_level:
            mask = torch.from_numpy(batch["attention_mask"])
            vecs = pool(torch.from_numpy(vecs), mask, self._pooling).numpy()
        return vecs
