"""What an encoder really computes with: device type, compute dtype and the library versions behind its vectors.

These go into `EncoderMeta` and from there into the embedding cache key, so vectors made on CUDA
under bf16/fp16 autocast are never served to a CPU float32 run (or back), and vectors made by one
torch / transformers / sentence-transformers release are not served to another. Nothing here
imports torch at module level: the hashing encoder and BM25 must not pay for it.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
from collections.abc import Iterable

# The libraries whose code computes a torch-based model's vectors; their major.minor versions key its cache.
TORCH_STACK = ("torch", "transformers", "sentence-transformers")


def major_minor(version: str) -> str:
    """'2.13.0+cpu' -> '2.13': patch releases are kept out so a bug-fix upgrade does not discard a cache."""
    parts = version.split("+", 1)[0].split(".")
    return ".".join(parts[:2])


def library_versions(names: Iterable[str]) -> dict[str, str | None]:
    """major.minor of each installed distribution (None when it is not installed), read at call time."""
    out: dict[str, str | None] = {}
    for name in names:
        try:
            out[name] = major_minor(importlib.metadata.version(name))
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def dtype_name(dtype: object) -> str:
    """torch.bfloat16 -> 'bfloat16'."""
    return str(dtype).removeprefix("torch.")


def cuda_autocast_dtype() -> object:
    """The dtype CUDA autocast runs in here: bf16 where the GPU supports it, else fp16."""
    import torch

    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def cuda_autocast(device: object) -> contextlib.AbstractContextManager:
    """Autocast in `cuda_autocast_dtype()` on a CUDA device (what `torch_compute(..., autocast=True)` records);
    nothing elsewhere."""
    import torch

    if torch.device(device).type != "cuda":
        return contextlib.nullcontext()
    return torch.autocast(device_type="cuda", dtype=cuda_autocast_dtype())


def parameter_dtype(module: object) -> object:
    """The dtype of a torch module's first floating-point parameter (float32 when it has none)."""
    import torch

    for param in module.parameters():  # type: ignore[attr-defined]
        if param.is_floating_point():
            return param.dtype
    return torch.float32


def torch_compute(device: object, module: object, *, autocast: bool) -> tuple[str, str]:
    """(device type, compute dtype) of `module` run on `device`; `autocast`: the loader wraps CUDA runs in autocast.

    Under CUDA autocast the matmuls run in the autocast dtype whatever the weights are stored in;
    otherwise the weights' own dtype is what computes (transformers 5 loads a checkpoint in its saved
    dtype unless told otherwise, so a bf16 checkpoint computes in bf16 even on CPU).
    """
    import torch

    kind = torch.device(device).type
    dtype = cuda_autocast_dtype() if autocast and kind == "cuda" else parameter_dtype(module)
    return kind, dtype_name(dtype)


def float32_compute(device: str) -> tuple[str, str]:
    """What `torch_compute(device, module, autocast=True)` gives for a float32 module, before it is loaded:
    the autocast dtype on CUDA (torch is imported only there), float32 elsewhere."""
    kind = device.partition(":")[0]
    return (kind, dtype_name(cuda_autocast_dtype())) if kind == "cuda" else (kind, "float32")
