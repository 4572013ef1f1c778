"""Device and precision handling, shared by every model and metric.

``precision`` is one of ``"fp32"`` (exact: float32 with TF32 disabled, the mode golden tests use),
``"bf16"`` or ``"fp16"`` (autocast on CUDA only; on CPU they fall back to fp32 with a warning).
"""

from __future__ import annotations

import contextlib
import warnings
from typing import Iterator

import torch

from .errors import ConfigError

PRECISIONS = ("fp32", "bf16", "fp16")


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """``None``/``"auto"`` -> CUDA when available else CPU; ``"cuda"`` without CUDA is an error."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda was requested but no CUDA device is available (torch.cuda.is_available() is False)")
    return dev


def set_exact_math() -> None:
    """Disable TF32 so float32 matmuls/convs on Ampere+ GPUs are true float32 (golden parity)."""
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False


@contextlib.contextmanager
def autocast(device: torch.device, precision: str = "fp32") -> Iterator[None]:
    """Context for a forward pass at ``precision``. fp32 also turns TF32 off."""
    if precision not in PRECISIONS:
        raise ConfigError(f"unknown precision {precision!r} (choose from {', '.join(PRECISIONS)})")
    if precision == "fp32":
        set_exact_math()
        yield
        return
    if device.type != "cuda":
        warnings.warn(f"precision {precision} is only used on CUDA; running fp32 on {device.type}", stacklevel=2)
        yield
        return
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    with torch.autocast("cuda", dtype=dtype):
        yield


def batched(items: list, batch_size: int) -> Iterator[list]:
    """Consecutive chunks of ``items`` of at most ``batch_size``."""
    if batch_size < 1:
        raise ConfigError(f"batch size must be >= 1, got {batch_size}")
    for i in range(0, len(items), batch_size):
        yield items[i : i + batch_size]
