"""Run-time settings every model plugin receives."""

from __future__ import annotations

from dataclasses import dataclass

from embedbench.errors import EmbedbenchError


@dataclass(frozen=True)
class EncodeSettings:
    device: str = "cpu"
    batch_size: int = 32
    max_length: int | None = None  # None: the model's own limit
    trust_remote_code: bool = False
    show_progress: bool = True

    def __post_init__(self) -> None:
        if self.device not in ("cpu", "cuda") and not self.device.startswith("cuda:"):
            raise EmbedbenchError(f"device must be cpu or cuda, got {self.device!r}")
        if self.batch_size < 1:
            raise EmbedbenchError("batch size must be at least 1")
        if self.max_length is not None and self.max_length < 1:
            raise EmbedbenchError("max length must be at least 1")
