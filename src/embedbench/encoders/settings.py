"""Run-time settings every model plugin receives."""

from __future__ import annotations

import re
from dataclasses import dataclass

from embedbench.errors import EmbedbenchError

DEVICES = "cpu, cuda, cuda:N or mps"
# --dtype values: auto keeps each plugin's own choice (see encoders.runtime); the others force the compute dtype.
DTYPES = ("auto", "fp32", "bf16", "fp16")
_DEVICE = re.compile(r"cpu|cuda(:\d+)?|mps")


@dataclass(frozen=True)
class EncodeSettings:
    """What a run asks of a model: where it runs, in what dtype, in what batches, up to what length.

    Checked here, without torch: the device's spelling and the dtype's name, and that fp16 is asked
    of a GPU only (torch's CPU kernels lack or crawl through half precision; bf16 on CPU is exact
    bfloat16 arithmetic, only slow). Whether the device exists is checked where the model loads
    (`encoders.runtime.check_device`): a Ray driver may well have no GPU its workers have.
    """

    device: str = "cpu"
    batch_size: int = 32
    max_length: int | None = None  # None: the model's own limit
    trust_remote_code: bool = False
    show_progress: bool = True
    dtype: str = "auto"

    def __post_init__(self) -> None:
        if not isinstance(self.device, str) or not _DEVICE.fullmatch(self.device):
            raise EmbedbenchError(f"device must be {DEVICES}, got {self.device!r}")
        if self.dtype not in DTYPES:
            raise EmbedbenchError(f"dtype must be one of {', '.join(DTYPES)}, got {self.dtype!r}")
        if self.dtype == "fp16" and self.device == "cpu":
            raise EmbedbenchError("--dtype fp16 needs a GPU (--device cuda or mps); on cpu use --dtype auto, fp32 "
                                  "or bf16")
        if self.batch_size < 1:
            raise EmbedbenchError("batch size must be at least 1")
        if self.max_length is not None and self.max_length < 1:
            raise EmbedbenchError("max length must be at least 1")
