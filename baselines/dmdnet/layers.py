"""DMDNet building blocks (official ``models/DMDNet.py`` layer layout and state-dict names).

All convolutions are spectral-normalised (eval mode, stored ``u``, ``v``), zero padding; LeakyReLU 0.2.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

class SNConv2d(nn.Module):
    """Conv2d with eval-mode spectral normalisation, state-dict compatible with
    ``torch.nn.utils.spectral_norm(nn.Conv2d(...))``: ``bias, weight_orig, weight_u, weight_v``.

    The effective weight is ``weight_orig / dot(u, W_mat @ v)`` with ``W_mat = weight_orig.reshape(out, -1)``
    and the stored ``u``, ``v``. There is no power iteration in any mode (this is an inference port).
    Zero padding.
    """

    def __init__(self, cin: int, cout: int, k: int = 3, stride: int = 1, padding: int = 1, dilation: int = 1):
        super().__init__()
        self.stride, self.padding, self.dilation = stride, padding, dilation
        # registration order gives the official state-dict order: bias, weight_orig, weight_u, weight_v
        self.bias = nn.Parameter(torch.zeros(cout))
        self.weight_orig = nn.Parameter(torch.zeros(cout, cin, k, k))
        self.register_buffer("weight_u", torch.zeros(cout))
        self.register_buffer("weight_v", torch.zeros(cin * k * k))

    def effective_weight(self) -> torch.Tensor:
        w = self.weight_orig
        with torch.autocast(w.device.type, enabled=False):  # sigma always in the weights' dtype
            sigma = torch.dot(self.weight_u, torch.mv(w.reshape(w.shape[0], -1), self.weight_v))
            return w / sigma

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.effective_weight(), self.bias, self.stride, self.padding, self.dilation)


def lrelu() -> nn.LeakyReLU:
    return nn.LeakyReLU(0.2)


def conv_pair(cin: int, cmid: int, dil1: int = 1, dil2: int = 1) -> nn.Sequential:
    """conv(cin->cmid) - lrelu - conv(cmid->cmid); indices 0 and 2 carry weights."""
    return nn.Sequential(SNConv2d(cin, cmid, padding=dil1, dilation=dil1), lrelu(), SNConv2d(cmid, cmid, padding=dil2, dilation=dil2))


def down_pair(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(SNConv2d(cin, cout, stride=2), lrelu(), SNConv2d(cout, cout))


class Residual(nn.Module):
    """``x + body(x)``; the body is stored under ``attr`` (``Res`` or ``Model``)."""

    def __init__(self, attr: str, body: nn.Module):
        super().__init__()
        self._attr = attr
        self.add_module(attr, body)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + getattr(self, self._attr)(x)


def dilate_res(dim: int, d1: int, d2: int) -> Residual:
    return Residual("Res", conv_pair(dim, dim, d1, d2))


def up_res(dim: int) -> Residual:
    return Residual("Model", conv_pair(dim, dim))


class QueryHead(nn.Module):
    def __init__(self, cin: int, cq: int):
        super().__init__()
        self.Query = conv_pair(cin, cq)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.Query(x)


class KeyValue(nn.Module):
    def __init__(self, cin: int, ck: int, cv: int):
        super().__init__()
        self.Key = conv_pair(cin, ck)
        self.Value = conv_pair(cin, cv)


class MaskAttention(nn.Module):
    """Mixing mask from (feature, specific read, generic read): a raw conv output (no sigmoid)."""

    def __init__(self, dim: int):
        super().__init__()
        third = dim // 3
        self.conv1 = conv_pair(dim, third)
        self.conv2 = conv_pair(dim, third)
        self.conv3 = conv_pair(dim, third)
        self.convCat = nn.Sequential(SNConv2d(third * 3, dim), lrelu(), SNConv2d(dim, dim))

    def forward(self, f: torch.Tensor, mem_s: torch.Tensor, mem_g: torch.Tensor) -> torch.Tensor:
        return self.convCat(torch.cat([self.conv1(f), self.conv2(mem_s), self.conv3(mem_g)], dim=1))


class MSDilateBlock(nn.Module):
    def __init__(self, dim: int, dilations: Sequence[int] = (4, 3, 2, 1)):
        super().__init__()
        for i, d in enumerate(dilations, 1):
            self.add_module(f"conv{i}", conv_pair(dim, dim, d, d))
        self.convi = SNConv2d(dim * 4, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cat = torch.cat([self.conv1(x), self.conv2(x), self.conv3(x), self.conv4(x)], 1)
        return self.convi(cat) + x


class StyledUpBlock(nn.Module):
    """``lrelu(conv-lrelu-conv(x)) * Scale(style) + Shift(style)``, then bilinear x2, conv, lrelu, conv."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv1 = conv_pair(cin, cout)
        self.convup = nn.Sequential(
            nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False), SNConv2d(cout, cout), lrelu(), SNConv2d(cout, cout)
        )
        self.lrelu1 = lrelu()
        self.ScaleModel1 = conv_pair(cin, cout)
        self.ShiftModel1 = conv_pair(cin, cout)

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        out = self.lrelu1(self.conv1(x))
        shift = self.ShiftModel1(style)
        scale = self.ScaleModel1(style)
        out = out * scale + shift
        return self.convup(out)
