"""ASFFNet-512 inference network (Li et al., "Enhanced Blind Face Restoration with Multi-Exemplar Images and
Adaptive Spatial Feature Fusion", CVPR 2020), our own re-implementation of csxmli2016/ASFFNet512's
``models/ASFFNet.py`` (the 512x512 model re-trained on CelebRef-HQ).

Conventions
-----------
* Images: float32 NCHW **RGB in [-1, 1]** (``x/255`` then ``(x-0.5)/0.5``), 512x512 (square).
* Landmarks: ``(B, 68, 2)`` ``(x, y)`` pixels of the 512 image, iBUG 300-W order; only points 17..67 (brows, nose,
  eyes, mouth: 51 points) drive the warp.
* Mask: ``(B, 1, 512, 512)`` float32, 1 in a 6..8 px square around each of the LQ's points 17..67
  (:func:`baselines.asffnet.warp.landmark_mask`).
* ``state_dict()`` keys, shapes and order are the official checkpoint's (``ASFFNet512.pth``, under ``params``):
  spectral-normalised convs as ``bias, weight_orig, weight_u, weight_v`` (no ``bias`` where the official conv has
  ``bias=False``), the landmark-mask encoder as plain convs (``weight`` only).

Forward, as the official one: both feature extractors (LQ, reference) to 128 channels at 1/4 resolution; the
reference features AdaIN-ed to the LQ features' per-channel statistics (unbiased variance + 1e-5), then warped by
the moving-least-squares affine grid from the reference's to the LQ's landmarks (``grid_sample`` bilinear, zero
padding, ``align_corners=False``); the landmark mask and the warped reference through their condition networks;
4 ASFF blocks + the last SFF layer fuse LQ and reference features under learned masks; multi-scale dilated
block, residual with the LQ features, then the up-sampling decoder to a ``tanh`` image.
Spectral norm is eval-mode (stored ``u``, ``v``, no power iteration), as after the official ``eval()``.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from baselines.dmdnet.layers import SNConv2d as _DMDSNConv2d
from baselines.dmdnet.layers import lrelu
from baselines.dmdnet.memory import adain

from .warp import mls_affine_grid

__all__ = ["ASFFNet", "SNConv2d", "FEATURE_STRIDE"]

FEATURE_STRIDE = 4  # 512 image -> 128x128 features
WARP_POINTS = slice(17, 68)  # the official warp ignores the jaw line (points 0..16)


class SNConv2d(_DMDSNConv2d):
    """DMDNet's eval-mode spectral-norm conv (same state-dict layout), with the official ``bias=False`` variant
    (no ``bias`` key) and ``padding`` defaulting to ``(k - 1) // 2 * dilation``."""

    def __init__(self, cin: int, cout: int, k: int = 3, stride: int = 1, dilation: int = 1, bias: bool = True,
                 padding: int | None = None):
        super().__init__(cin, cout, k, stride, (k - 1) // 2 * dilation if padding is None else padding, dilation)
        if not bias:
            self.bias = None  # leaves no `bias` key, like nn.Conv2d(..., bias=False)


def _seq(*mods: nn.Module) -> nn.Sequential:
    return nn.Sequential(*mods)


class _Residual(nn.Module):
    """``x + body(x)``; ``body`` stored under ``name`` (the official attribute)."""

    def __init__(self, name: str, body: nn.Module):
        super().__init__()
        self._name = name
        self.add_module(name, body)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return getattr(self, self._name)(x) + x


class _Model(nn.Module):
    """A sequential body under the official attribute name ``model``."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def resnet_block(dim: int, dilation: Sequence[int]) -> _Residual:
    """Official ``ResnetBlock``: ``stem = SN-conv(d0), lrelu, SN-conv(d1)``; ``stem(x) + x`` (no norm layer)."""
    return _Residual("stem", _seq(SNConv2d(dim, dim, dilation=dilation[0]), lrelu(), SNConv2d(dim, dim, dilation=dilation[1])))


class FeatureExtractor(nn.Module):
    """Official ``FeatureExDilatedResNet(64)``: 3 -> 64 -> 128 (/2) -> 256 (/2) -> 128 channels at 1/4 resolution."""

    def __init__(self, ngf: int = 64):
        super().__init__()
        self.conv1 = _seq(SNConv2d(3, ngf), lrelu())
        self.stem1_1, self.stem1_2 = resnet_block(ngf, (7, 5)), resnet_block(ngf, (7, 5))
        self.conv2 = _seq(SNConv2d(ngf, ngf * 2, stride=2), lrelu())
        self.stem2_1, self.stem2_2 = resnet_block(ngf * 2, (5, 3)), resnet_block(ngf * 2, (5, 3))
        self.conv3 = _seq(SNConv2d(ngf * 2, ngf * 4, stride=2), lrelu())
        self.stem3_1, self.stem3_2 = resnet_block(ngf * 4, (3, 1)), resnet_block(ngf * 4, (3, 1))
        self.conv4 = _seq(SNConv2d(ngf * 4, ngf * 2), lrelu())

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        x = self.stem1_2(self.stem1_1(self.conv1(img)))
        x = self.stem2_2(self.stem2_1(self.conv2(x)))
        x = self.stem3_2(self.stem3_1(self.conv3(x)))
        return self.conv4(x)


def mask_condition(out_ch: int = 128) -> nn.Module:
    """Official ``MaskConditionModel``: plain (not spectral-normalised) bias-free convs, /4, ending in a sigmoid."""
    layers: list[nn.Module] = []
    for cin, cout, k, s in ((1, 16, 9, 2), (16, 32, 7, 1), (32, 64, 5, 2), (64, out_ch, 3, 1), (out_ch, out_ch, 3, 1)):
        layers += [nn.Conv2d(cin, cout, k, s, (k - 1) // 2, 1, bias=False), nn.LeakyReLU(0.2)]
    layers[-1] = nn.Sigmoid()
    return _Model(_seq(*layers))


def _up_res(dim: int) -> _Residual:
    """Official ``UpResBlock``: ``x + (SN-conv, lrelu, SN-conv, lrelu)(x)``."""
    return _Residual("Model", _seq(SNConv2d(dim, dim), lrelu(), SNConv2d(dim, dim), lrelu()))


def component_condition(dim: int = 128) -> nn.Module:
    """Official ``ComponentConditionModel``: 1x1 SN convs and two ``UpResBlock``\\ s on the warped reference."""
    return _Model(_seq(SNConv2d(dim, dim, 1), lrelu(), _up_res(dim), SNConv2d(dim, dim, 1), lrelu(), _up_res(dim),
                       SNConv2d(dim, dim, 1), lrelu()))


class SFFLayer(nn.Module):
    """Official ``SFFLayer`` / ``SFFLayer_last`` (``last``: the mask's second conv is spectral-normalised too).

    ``out = D + (R - D) * M`` with ``D``, ``R`` the processed LQ / reference features and ``M`` the (unbounded)
    mask predicted from the 1x1-reduced mask condition, ``D`` and ``R``."""

    def __init__(self, dim: int = 128, last: bool = False):
        super().__init__()
        half = dim // 2
        second = SNConv2d(dim, dim, bias=False) if last else nn.Conv2d(dim, dim, 3, 1, 1, bias=False)
        self.MaskModel = _seq(SNConv2d(half * 3, dim, bias=False), lrelu(), second)
        self.MaskConcat = _seq(SNConv2d(dim, half, 1))
        self.DegradedModel = _seq(SNConv2d(dim, dim), lrelu(), SNConv2d(dim, dim))
        self.DegradedConcat = _seq(SNConv2d(dim, half, 1))
        self.RefModel = _seq(SNConv2d(dim, dim), lrelu(), SNConv2d(dim, dim))
        self.RefConcat = _seq(SNConv2d(dim, half, 1))

    def forward(self, feat: torch.Tensor, ref: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        d = self.DegradedModel(feat)
        r = self.RefModel(ref)
        m = self.MaskModel(torch.cat((self.MaskConcat(mask), self.DegradedConcat(d), self.RefConcat(r)), 1))
        return d + (r - d) * m


class ASFFBlock(nn.Module):
    """Official ``ASFFBlock``: SFF, conv 5x5 + 3x3, SFF, conv 5x5 + 3x3, residual with the block's input."""

    def __init__(self, dim: int = 128):
        super().__init__()
        self.sff0 = SFFLayer(dim)
        self.conv0 = _seq(SNConv2d(dim, dim, 5), lrelu(), SNConv2d(dim, dim), lrelu())
        self.sff1 = SFFLayer(dim)
        self.conv1 = _seq(SNConv2d(dim, dim, 5), lrelu(), SNConv2d(dim, dim), lrelu())

    def forward(self, feat: torch.Tensor, ref: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = self.conv0(self.sff0(feat, ref, mask))
        x = self.conv1(self.sff1(x, ref, mask))
        return feat + x


class MSDilate(nn.Module):
    """Official ``MSDilateBlock(128, dilation=[4, 3, 2, 1])``: four dilated 3x3 branches to ``dim/2`` channels each,
    concatenated, two convs back to ``dim``, residual."""

    def __init__(self, dim: int = 128, dilations: Sequence[int] = (4, 3, 2, 1)):
        super().__init__()
        for i, d in enumerate(dilations, 1):
            self.add_module(f"conv{i}", _seq(SNConv2d(dim, dim // 2, dilation=d), lrelu()))
        self.convi = _seq(SNConv2d(dim * 2, dim), lrelu(), SNConv2d(dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.convi(torch.cat([self.conv1(x), self.conv2(x), self.conv3(x), self.conv4(x)], 1)) + x


class UpDilateRes(nn.Module):
    """Official ``UpDilateResBlock``: two residual (conv, lrelu, conv, lrelu) stages with dilations ``d0``, ``d1``."""

    def __init__(self, dim: int, dilation: Sequence[int]):
        super().__init__()
        self.Model0 = _seq(*self._stage(dim, dilation[0]))
        self.Model1 = _seq(*self._stage(dim, dilation[1]))

    @staticmethod
    def _stage(dim: int, d: int) -> list[nn.Module]:
        return [SNConv2d(dim, dim, dilation=d), lrelu(), SNConv2d(dim, dim, dilation=d), lrelu()]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.Model0(x)
        return x + self.Model1(x)


def _upsample() -> nn.Upsample:
    return nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True)


class ASFFNet(nn.Module):
    """ASFFNet-512 (official module tree and state-dict names; see the module docstring for conventions)."""

    def __init__(self) -> None:
        super().__init__()
        self.sff_branch = _seq(*[ASFFBlock(128) for _ in range(4)], SFFLayer(128, last=True))
        self.MSDilate = MSDilate(128, (4, 3, 2, 1))
        self.UpModel = _seq(
            _upsample(), SNConv2d(128, 128), lrelu(), UpDilateRes(128, (1, 2)),
            SNConv2d(128, 64), lrelu(), UpDilateRes(64, (1, 2)),
            _upsample(), UpDilateRes(64, (1, 1)), SNConv2d(64, 3), nn.Tanh())
        self.LQ_Model = FeatureExtractor(64)
        self.Ref_Model = FeatureExtractor(64)
        self.Mask_CModel = mask_condition(128)
        self.Component_CModel = component_condition(128)

    def warp_grids(self, lq_landmarks: torch.Tensor | np.ndarray, ref_landmarks: torch.Tensor | np.ndarray,
                   size: int, scale: float) -> torch.Tensor:
        """``(B, size, size, 2)`` float32 ``grid_sample`` grids (x, y in [-1, 1]) warping reference features onto the
        LQ's geometry, from the landmarks (pixels) divided by ``scale`` (points 17..67, MLS affine, float64)."""
        lq = np.asarray(torch.as_tensor(lq_landmarks).detach().cpu().double().numpy())
        ref = np.asarray(torch.as_tensor(ref_landmarks).detach().cpu().double().numpy())
        grids = [mls_affine_grid(ref[i, WARP_POINTS] / scale, lq[i, WARP_POINTS] / scale, size) for i in range(lq.shape[0])]
        return torch.from_numpy(np.stack(grids))

    def forward(self, lq: torch.Tensor, ref: torch.Tensor, mask: torch.Tensor,
                lq_landmarks: torch.Tensor | np.ndarray, ref_landmarks: torch.Tensor | np.ndarray,
                grids: torch.Tensor | None = None) -> torch.Tensor:
        """Restore ``lq`` (B, 3, H, H) with one reference per image ``ref`` (B, 3, H, H), ``mask`` (B, 1, H, H) and
        the (B, 68, 2) landmarks; returns (B, 3, H, H) in [-1, 1]. ``grids``: precomputed :meth:`warp_grids`."""
        lq_feat = self.LQ_Model(lq)
        ref_feat = self.Ref_Model(ref)
        if grids is None:
            scale = lq.shape[2] / lq_feat.shape[2]
            grids = self.warp_grids(lq_landmarks, ref_landmarks, ref_feat.shape[2], scale)
        warped = F.grid_sample(adain(ref_feat, lq_feat), grids.to(ref_feat), mode="bilinear", padding_mode="zeros",
                               align_corners=False)
        mask_c = self.Mask_CModel(mask)
        ref_c = self.Component_CModel(warped)
        x = lq_feat
        for block in self.sff_branch:
            x = block(x, ref_c, mask_c)
        return self.UpModel(self.MSDilate(x) + lq_feat)
