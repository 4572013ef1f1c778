"""The precision contract shared by every network: modes, per-method support, float32 islands.

Modes (``PRECISIONS``):

* ``fp32`` -- exact: float32 everywhere, TF32 **off** (the mode every golden test uses; the default).
* ``tf32`` -- float32 tensors, but CUDA matmuls/convolutions may use TF32 tensor cores (10-bit
  mantissa products). No autocast. On CPU identical to ``fp32``.
* ``bf16`` / ``fp16`` -- ``torch.autocast`` with that dtype (CUDA; on CPU torch's CPU autocast).

Steps whose result is a discrete choice (an argmax over codebook entries or dictionary atoms) or a
softmax over long rows must not run in a reduced precision: a bf16 score has ~3 significant digits
while the golden margins between the best and second-best candidate are ~1e-5 relative. Such steps
run in a **float32 island**: :func:`fp32_island` disables every active autocast and casts its
tensor inputs to float32. Outside an autocast region it changes nothing (``Tensor.float()`` of a
float32 tensor is the tensor itself), so fp32 results stay bit-identical.

Each restoration method declares the modes it meets the contract in (``precisions`` class
attribute); :func:`check_precision` refuses the others with a :class:`ConfigError`.
"""

from __future__ import annotations

import contextlib
import functools
from typing import Any, Callable, Iterable, Iterator, TypeVar

import torch

from .errors import ConfigError

PRECISIONS = ("fp32", "tf32", "bf16", "fp16")
AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
_DEVICE_TYPES = ("cuda", "cpu")

F = TypeVar("F", bound=Callable[..., Any])


def check_precision(precision: str, supported: Iterable[str] = PRECISIONS, owner: str = "") -> str:
    """Return ``precision`` when it is a known mode that ``owner`` supports; else a ConfigError naming both."""
    supported = tuple(supported)
    who = f"{owner}: " if owner else ""
    if precision not in PRECISIONS:
        raise ConfigError(f"{who}unknown precision {precision!r} (choose from {', '.join(PRECISIONS)})")
    if precision not in supported:
        raise ConfigError(f"{who}precision {precision!r} is not supported (supported: {', '.join(supported)}); "
                          "identical discrete choices and finite outputs are not established in that mode")
    return precision


def _active_autocast() -> list[str]:
    out = []
    for dev in _DEVICE_TYPES:
        try:
            if torch.is_autocast_enabled(dev):
                out.append(dev)
        except (TypeError, RuntimeError):  # pragma: no cover - very old torch
            pass
    return out


def as_float32(*tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Cast floating tensors to float32 (the same tensor when it already is)."""
    return tuple(t.float() if isinstance(t, torch.Tensor) and t.is_floating_point() else t for t in tensors)


class fp32_island(contextlib.ContextDecorator):
    """Run a block in float32 under any autocast (and with TF32 off).

    As a context manager: every active autocast (CUDA, CPU) is disabled inside the block, and TF32
    when it is on (restored on exit); the caller
    casts its inputs (:func:`as_float32`). As a decorator (``@fp32_island()``): additionally, every
    floating tensor argument is cast to float32 before the call. No-op without an active autocast.
    """

    def __enter__(self) -> "fp32_island":
        self._stack = contextlib.ExitStack()
        for dev in _active_autocast():
            self._stack.enter_context(torch.autocast(dev, enabled=False))
        # TF32 (precision "tf32") rounds float32 products to 10 mantissa bits: off inside the island
        self._tf32 = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
        if any(self._tf32):
            set_exact_math()
        return self

    def __exit__(self, *exc: Any) -> None:
        if any(self._tf32):
            torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = self._tf32
        self._stack.close()

    def __call__(self, fn: F) -> F:  # type: ignore[override]
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            args = as_float32(*args)
            kwargs = {k: (v.float() if isinstance(v, torch.Tensor) and v.is_floating_point() else v) for k, v in kwargs.items()}
            with fp32_island():
                return fn(*args, **kwargs)

        return wrapper  # type: ignore[return-value]


def set_exact_math() -> None:
    """Disable TF32 so float32 matmuls/convs on Ampere+ GPUs are true float32 (golden parity)."""
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False


def set_tf32_math() -> None:
    """Allow TF32 tensor cores for float32 matmuls/convolutions (CUDA; no effect on CPU)."""
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True


@contextlib.contextmanager
def precision_context(device_type: str, precision: str = "fp32") -> Iterator[None]:
    """Context for a forward pass at ``precision`` on a device of type ``device_type`` ('cuda', 'cpu').

    ``fp32`` turns TF32 off, ``tf32`` on (both process-wide backend flags, set on entry); ``bf16`` /
    ``fp16`` enter ``torch.autocast(device_type, dtype)`` with TF32 off for the float32 islands.
    """
    check_precision(precision)
    if precision == "tf32":
        set_tf32_math()
    else:
        set_exact_math()
    if precision in AUTOCAST_DTYPES:
        with torch.autocast(device_type, dtype=AUTOCAST_DTYPES[precision]):
            yield
    else:
        yield

