"""Building blocks of the DFDNet generator (our own code; the maths follow the official
``models/networks.py`` of csxmli2016/DFDNet, branch ``whole``).

Tensors are NCHW. Every module keeps the parameter/buffer names of the official checkpoint so that
``latest_net_G.pth`` loads unchanged (``strict=True``).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["SNConv2d", "Blur", "ShapeOnly", "attention_block", "conv_pair"]


class SNConv2d(nn.Module):
    """A 2-D convolution with spectral normalisation, **evaluation mode only**.

    State-dict layout is that of ``torch.nn.utils.spectral_norm(nn.Conv2d(...))``: ``bias``,
    ``weight_orig`` (parameters, in that order) and the buffers ``weight_u`` ``(out,)`` and
    ``weight_v`` ``(in*kh*kw,)``. The effective weight is ``weight_orig / sigma`` with
    ``sigma = u . (W_mat @ v)`` from the *stored* ``u``, ``v`` (no power iteration), exactly what
    torch's spectral norm computes in ``eval()``. The official test script never calls ``eval()``
    (it runs one power iteration per forward and updates u, v in place); we deliberately do not
    reproduce that drift: outputs do not depend on how many images were processed before.

    The normalised weight is cached per (device, dtype, parameter version) so repeated forwards do not
    recompute it.
    """

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int = 3, padding: int = 1, dilation: int = 1, bias: bool = True):
        super().__init__()
        self.in_ch, self.out_ch, self.kernel_size = in_ch, out_ch, kernel_size
        self.padding, self.dilation = padding, dilation
        # registration order gives the official key order: bias, weight_orig, weight_u, weight_v
        self.bias = nn.Parameter(torch.zeros(out_ch)) if bias else None
        w = torch.empty(out_ch, in_ch, kernel_size, kernel_size)
        nn.init.kaiming_uniform_(w, a=math.sqrt(5))
        self.weight_orig = nn.Parameter(w)
        u = F.normalize(torch.randn(out_ch), dim=0, eps=1e-12)
        v = F.normalize(torch.randn(in_ch * kernel_size * kernel_size), dim=0, eps=1e-12)
        self.register_buffer("weight_u", u)
        self.register_buffer("weight_v", v)
        self._cache: tuple[Any, torch.Tensor] | None = None

    def _compute_weight(self) -> torch.Tensor:
        w_mat = self.weight_orig.reshape(self.weight_orig.shape[0], -1)
        sigma = torch.dot(self.weight_u, torch.mv(w_mat, self.weight_v))
        return self.weight_orig / sigma

    def normalized_weight(self) -> torch.Tensor:
        """``weight_orig / sigma`` (torch's eval-mode spectral norm, same op order). Cached while
        gradients are off; recomputed when a parameter/buffer changes (load, ``.to()``)."""
        if torch.is_grad_enabled():
            return self._compute_weight()
        w, u, v = self.weight_orig, self.weight_u, self.weight_v
        key = (id(w), id(u), id(v), w._version, u._version, v._version)
        if self._cache is None or self._cache[0] != key:
            self._cache = (key, self._compute_weight())
        return self._cache[1]

    def _apply(self, fn, recurse=True):  # device/dtype moves invalidate the cache
        self._cache = None
        return super()._apply(fn, recurse)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.normalized_weight(), self.bias, 1, self.padding, self.dilation)


class Blur(nn.Module):
    """Depthwise 3x3 blur ``[1,2,1] x [1,2,1] / 16`` with zero padding 1.

    Buffers ``weight`` and ``weight_flip`` ``(C,1,3,3)`` as in the checkpoint; ``weight_flip`` only
    served the official backward pass and is unused here.
    """

    def __init__(self, channels: int):
        super().__init__()
        k = torch.tensor([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]])
        k = (k / k.sum()).view(1, 1, 3, 3)
        self.register_buffer("weight", k.repeat(channels, 1, 1, 1))
        self.register_buffer("weight_flip", torch.flip(k, [2, 3]).repeat(channels, 1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight, padding=1, groups=x.shape[1])


class ShapeOnly(nn.Module):
    """Checkpoint entries the forward never reads (the VGG classifier, the ``to_rgb`` heads).

    They hold no memory: :meth:`state_dict` lists them as ``meta`` tensors of the right shape, and
    loading validates their shapes (mismatch -> the usual ``load_state_dict`` error) and discards
    the values. This keeps ``load_state_dict(checkpoint, strict=True)`` meaningful without spending
    0.5 GB on never-used weights.
    """

    def __init__(self, shapes: dict[str, tuple[int, ...]]):
        super().__init__()
        self.shapes = dict(shapes)

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        for name, shape in self.shapes.items():
            destination[prefix + name] = torch.empty(shape, device="meta")

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs):
        for name, shape in self.shapes.items():
            key = prefix + name
            if key not in state_dict:
                missing_keys.append(key)
            elif tuple(state_dict[key].shape) != tuple(shape):
                error_msgs.append(f"size mismatch for {key}: copying a param with shape {tuple(state_dict[key].shape)} "
                                  f"from checkpoint, the shape in current model is {tuple(shape)}.")


def conv_pair(channels: int, dilation: int = 1) -> nn.Sequential:
    """SNconv3x3 -> LeakyReLU(0.2) -> SNconv3x3 (same dilation and padding for both convs)."""
    return nn.Sequential(
        SNConv2d(channels, channels, 3, padding=dilation, dilation=dilation),
        nn.LeakyReLU(0.2),
        SNConv2d(channels, channels, 3, padding=dilation, dilation=dilation),
    )


def attention_block(channels: int) -> nn.Sequential:
    """The per-component attention block: SNconv, LeakyReLU(0.2), SNconv, **no sigmoid**."""
    return conv_pair(channels, 1)
