"""What an encoder really computes with: device type, compute dtype and the library versions behind its vectors.

These go into `EncoderMeta` and from there into the embedding cache key, so vectors made on CUDA
under bf16/fp16 autocast are never served to a CPU float32 run (or back), vectors made in one
--dtype are never served to a run in another, and vectors made by one torch / transformers /
sentence-transformers release are not served to another. Nothing here imports torch at module
level: the hashing encoder and BM25 must not pay for it.

How --dtype is honoured, per plugin family, so that each dtype name means one computation:
- transformers pooling and pplx-embed (the "autocasting" plugins) keep float32 weights and, on CUDA,
  run under autocast: auto = bf16 where the GPU supports it else fp16, bf16 / fp16 = that, fp32 = no
  autocast. Off CUDA they run in their weights' dtype: float32, or the weights cast to bf16 / fp16.
- sentence-transformers runs in its weights' dtype everywhere (no autocast): auto = the checkpoint's
  saved dtype, fp32 / bf16 / fp16 = the weights loaded in that dtype (`model_kwargs={"dtype": ...}`),
  exactly as a checkpoint saved in that dtype loads under auto.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
from collections.abc import Iterable

from embedbench.errors import EmbedbenchError

# --dtype names -> torch dtype names ("auto" is each plugin's own choice).
TORCH_DTYPES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}
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
    """The dtype CUDA autocast runs in under --dtype auto: bf16 where the GPU supports it, else fp16."""
    import torch

    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def device_kind(device: object) -> str:
    """'cuda:1' -> 'cuda' (torch.device(...).type, without importing torch)."""
    return str(device).partition(":")[0]


def check_device(device: str, dtype: str = "auto") -> None:
    """One line (EmbedbenchError) when this torch cannot run `device` (in `dtype`): called before a model loads,
    and before CUDA is asked what it supports (a machine without it would answer for a GPU it does not have)."""
    kind = device_kind(device)
    if kind == "cpu":
        return
    import torch

    if kind == "mps" and not torch.backends.mps.is_available():
        raise EmbedbenchError(f"--device mps: this torch {torch.__version__} has no MPS device (Apple GPU); "
                              f"use --device cpu")
    if kind != "cuda":
        return
    if not torch.cuda.is_available():
        raise EmbedbenchError(f"--device {device}: this torch {torch.__version__} sees no CUDA device; "
                              f"use --device cpu")
    index = int(device.partition(":")[2] or 0)
    if index >= torch.cuda.device_count():
        raise EmbedbenchError(f"--device {device}: this machine has {torch.cuda.device_count()} CUDA device(s), "
                              f"numbered from 0")
    if dtype == "bf16" and not torch.cuda.is_bf16_supported():
        raise EmbedbenchError(f"--dtype bf16: the GPU at {device} has no bfloat16 support; use --dtype fp16 or fp32")


def autocast_dtype(device: str, dtype: str) -> str | None:
    """The CUDA autocast dtype of the plugins that autocast (transformers pooling, pplx-embed), None for no autocast.

    auto: bf16 where the GPU supports it, else fp16 (what they always did); bf16 / fp16: that; fp32: none.
    Never off CUDA: there these plugins cast their weights instead (`weights_dtype`).
    """
    if device_kind(device) != "cuda" or dtype == "fp32":
        return None
    return dtype_name(cuda_autocast_dtype()) if dtype == "auto" else TORCH_DTYPES[dtype]


def weights_dtype(device: str, dtype: str) -> str:
    """The dtype the autocasting plugins hold their weights in: float32, except bf16 / fp16 off CUDA (no autocast
    there), where the weights are cast to it."""
    if dtype in ("bf16", "fp16") and device_kind(device) != "cuda":
        return TORCH_DTYPES[dtype]
    return "float32"


def planned_compute(device: str, dtype: str = "auto") -> tuple[str, str]:
    """(device type, compute dtype) of an autocasting plugin's model, before it is loaded: what
    `torch_compute(device, model, autocast=True, dtype=dtype)` gives once it is. Only auto on CUDA asks the GPU
    (and so checks it is there first); otherwise the device is checked when the model loads, so a Ray driver
    without the workers' GPUs can still build the encoder."""
    if device_kind(device) == "cuda" and dtype == "auto":
        check_device(device, dtype)
    return device_kind(device), autocast_dtype(device, dtype) or weights_dtype(device, dtype)


def cuda_autocast(device: object, dtype: str = "auto") -> contextlib.AbstractContextManager:
    """Autocast in `autocast_dtype(device, dtype)` (what `torch_compute(..., autocast=True)` records); nothing
    where that is None."""
    name = autocast_dtype(str(device), dtype)
    if name is None:
        return contextlib.nullcontext()
    import torch

    return torch.autocast(device_type="cuda", dtype=getattr(torch, name))


def parameter_dtype(module: object) -> object:
    """The dtype of a torch module's first floating-point parameter (float32 when it has none)."""
    import torch

    for param in module.parameters():  # type: ignore[attr-defined]
        if param.is_floating_point():
            return param.dtype
    return torch.float32


def torch_compute(device: object, module: object, *, autocast: bool, dtype: str = "auto") -> tuple[str, str]:
    """(device type, compute dtype) of `module` run on `device`; `autocast`: the plugin wraps its forward pass
    in `cuda_autocast(device, dtype)`.

    Under CUDA autocast the matmuls run in the autocast dtype whatever the weights are stored in;
    otherwise the weights' own dtype is what computes (transformers 5 loads a checkpoint in its saved
    dtype unless told otherwise, so a bf16 checkpoint computes in bf16 even on CPU).
    """
    import torch

    kind = torch.device(device).type
    cast = autocast_dtype(str(device), dtype) if autocast else None
    return kind, cast or dtype_name(parameter_dtype(module))
