"""Device handling and fast-network switches, shared by every model and metric.

Precision (see :mod:`celebref.precision` for the contract): ``"fp32"`` (exact: float32 with TF32
disabled, the mode golden tests use; the default), ``"tf32"`` (float32 tensors, TF32 tensor cores
allowed on CUDA), ``"bf16"`` / ``"fp16"`` (``torch.autocast`` on the model's device, CUDA or CPU).

Speed switches (none changes a float32 result beyond the summation order of the kernels):
:func:`convs_to_channels_last` (NHWC convolution weights, layer by layer), :func:`configure_backend`
(``cudnn.benchmark`` for fixed shapes on CUDA), :func:`compile_module` (``torch.compile`` of a
sub-network in place).
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator

import torch
from torch import nn

from .errors import ConfigError
from .precision import PRECISIONS, precision_context, set_exact_math, set_tf32_math

__all__ = ["PRECISIONS", "autocast", "compile_module", "configure_backend", "convs_to_channels_last",
           "resolve_device", "set_exact_math", "set_tf32_math"]


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """``None``/``"auto"`` -> CUDA when available else CPU; ``"cuda"`` without CUDA is an error."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda was requested but no CUDA device is available (torch.cuda.is_available() is False)")
    return dev


@contextlib.contextmanager
def autocast(device: torch.device, precision: str = "fp32") -> Iterator[None]:
    """Context for a forward pass on ``device`` at ``precision`` (:func:`celebref.precision.precision_context`)."""
    with precision_context(torch.device(device).type, precision):
        yield


def configure_backend(device: torch.device, benchmark: bool = True) -> None:
    """On CUDA: ``cudnn.benchmark`` (autotuned convolution algorithms; pays off when the input shape is
    fixed, as for 512x512 faces). Algorithm choice changes summation order only. No effect on CPU."""
    if torch.device(device).type == "cuda":
        torch.backends.cudnn.benchmark = bool(benchmark)


_CONV_WEIGHT_NAMES = ("weight", "weight_orig")


def _inputs_channels_last(module: nn.Module, args: tuple) -> tuple:
    return tuple(a.contiguous(memory_format=torch.channels_last) if isinstance(a, torch.Tensor) and a.dim() == 4 else a
                 for a in args)


def convs_to_channels_last(module: nn.Module, inputs: bool = True) -> int:
    """Convert every 4-D convolution weight of ``module`` to channels-last (NHWC) memory, in place.

    Layer by layer rather than ``module.to(memory_format=...)``, which fails on 5-D parameters
    (GFPGAN's modulated-conv weights, left unchanged here). cuDNN runs a convolution channels-last
    when its weight is; oneDNN (CPU) only when its input is, so ``inputs=True`` also registers a
    forward pre-hook that makes the module's 4-D tensor arguments channels-last. Activations then
    stay channels-last. Values, shapes and ``state_dict`` contents are unchanged; results differ from
    NCHW only by the kernels' summation order. Returns the number of weights converted.
    """
    if inputs and not getattr(module, "_celebref_channels_last_hook", False):
        module.register_forward_pre_hook(_inputs_channels_last)
        module._celebref_channels_last_hook = True
    n = 0
    for mod in module.modules():
        for name in _CONV_WEIGHT_NAMES:
            p = mod._parameters.get(name)
            if p is not None and p.dim() == 4 and p.is_floating_point():
                if not p.is_contiguous(memory_format=torch.channels_last):
                    p.data = p.data.contiguous(memory_format=torch.channels_last)
                n += 1
        reset = getattr(mod, "_cache", None)
        if reset is not None and hasattr(mod, "normalized_weight"):
            mod._cache = None  # DFDNet's SN conv caches its normalised weight
    return n


def compile_module(module: nn.Module, **kwargs: Any) -> nn.Module:
    """``module.compile(**kwargs)`` (``torch.compile`` in place; keys of ``state_dict`` unchanged)."""
    module.compile(**kwargs)
    return module

