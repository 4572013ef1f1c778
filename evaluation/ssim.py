"""SSIM exactly as BasicSR's ``calculate_ssim`` (= the MATLAB reference of Wang et al. 2004).

Conventions: images ``uint8`` RGB ``(N, 3, H, W)``; ``crop_border`` first, then optional BT.601 Y
(:mod:`evaluation.color`); float64 throughout; per channel an 11x11 Gaussian window (sigma 1.5, normalised,
``cv2.getGaussianKernel(11, 1.5)`` outer itself) applied as a **'valid'** filter (the output loses 5 px on
each side, so padding never matters); ``C1 = (0.01*255)^2``, ``C2 = (0.03*255)^2`` (data range 255, also for
Y); SSIM = mean of the SSIM map, then the mean over channels (3 for RGB, 1 for Y). Higher is better.

Only four filtered maps per channel are needed: ``mu_a``, ``mu_b``, ``E[a^2 + b^2]`` and ``E[ab]`` (the
reference filters ``a^2`` and ``b^2`` separately but only ever uses ``sigma_a^2 + sigma_b^2``); the Gaussian is
separable and runs as two 1-D passes. Both are exact rewrites; the result agrees with the reference's 2-D
filter to ~1e-14. On the CPU the filter is OpenCV's float64 ``sepFilter2D`` (in row strips, images one by
one); on other devices grouped float64 convolutions in torch (``impl="torch"`` forces that path anywhere).
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from .base import Metric
from .color import rgb_to_y
from .psnr import crop

WINDOW = 11
SIGMA = 1.5
K1, K2 = 0.01, 0.03
DATA_RANGE = 255.0


def gaussian_kernel_1d(size: int = WINDOW, sigma: float = SIGMA, dtype=torch.float64) -> torch.Tensor:
    """Normalised 1-D Gaussian ``exp(-(i - c)^2 / (2 sigma^2))``, ``c = (size-1)/2`` (cv2.getGaussianKernel)."""
    c = (size - 1) / 2.0
    g = [math.exp(-((i - c) ** 2) / (2.0 * sigma * sigma)) for i in range(size)]
    s = math.fsum(g)
    return torch.tensor([v / s for v in g], dtype=dtype)


def _filter_torch(maps: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """'valid' separable filter of float64 ``(B, C, H, W)`` with grouped 1-D convolutions (any device)."""
    c = maps.shape[1]
    k = g.numel()
    out = torch.nn.functional.conv2d(maps, g.view(1, 1, k, 1).expand(c, 1, k, 1), groups=c)
    return torch.nn.functional.conv2d(out, g.view(1, 1, 1, k).expand(c, 1, 1, k), groups=c)


def gaussian_filter_valid(maps: torch.Tensor, g: torch.Tensor | None = None) -> torch.Tensor:
    """Separable 'valid' Gaussian filter of float64 ``(B, C, H, W)`` -> ``(B, C, H-10, W-10)`` for the
    default 11-tap window (grouped 1-D convolutions, any device)."""
    g = gaussian_kernel_1d() if g is None else g
    return _filter_torch(maps, g.to(maps.device))


def _ssim_map(mu1, mu2, e_sq, e12):
    """The SSIM map from the four filtered maps (numpy or torch, float64)."""
    c1, c2 = (K1 * DATA_RANGE) ** 2, (K2 * DATA_RANGE) ** 2
    mu12 = mu1 * mu2
    mu_sq = mu1 * mu1
    mu_sq += mu2 * mu2
    num = 2 * mu12 + c1
    num *= 2 * (e12 - mu12) + c2
    den = mu_sq + c1
    den *= (e_sq - mu_sq) + c2
    num /= den
    return num


def _ssim_map_numpy(mu1: np.ndarray, mu2: np.ndarray, e_sq: np.ndarray, e12: np.ndarray) -> np.ndarray:
    """:func:`_ssim_map` with in-place numpy operations (same arithmetic, fewer temporaries)."""
    c1, c2 = (K1 * DATA_RANGE) ** 2, (K2 * DATA_RANGE) ** 2
    mu12 = mu1 * mu2
    mu_sq = mu1 * mu1
    mu_sq += mu2 * mu2
    num = np.subtract(e12, mu12)
    num *= 2.0
    num += c2
    mu12 *= 2.0
    mu12 += c1
    num *= mu12
    var = np.subtract(e_sq, mu_sq)
    var += c2
    mu_sq += c1
    mu_sq *= var
    num /= mu_sq
    return num


def _ssim_one_opencv(a: np.ndarray, b: np.ndarray, strip: int = 64) -> float:
    """SSIM of one image pair on the CPU: ``a``, ``b`` ``(H, W, C)`` (uint8 or float32 Y). Each filtered map
    is OpenCV's float64 ``sepFilter2D`` of a contiguous ``(rows, W, C)`` array; the work goes in strips of
    ``strip`` output rows (plus the 10-row halo, whose filtered values are discarded: 'valid') so the data
    stays in cache. Products of integer pixels are exact in float64."""
    import cv2

    h, w, c = a.shape
    gk = _KERNEL_NP
    r = gk.size // 2

    def filt(x: np.ndarray) -> np.ndarray:
        return cv2.sepFilter2D(x, cv2.CV_64F, gk, gk, borderType=cv2.BORDER_REFLECT_101).reshape(x.shape)[r:-r, r:-r]

    total = np.zeros(c)
    for r0 in range(0, h - 2 * r, strip):
        r1 = min(r0 + strip, h - 2 * r)
        a64 = a[r0:r1 + 2 * r].astype(np.float64)
        b64 = b[r0:r1 + 2 * r].astype(np.float64)
        sq = a64 * a64
        sq += b64 * b64
        m = _ssim_map_numpy(filt(a64), filt(b64), filt(sq), filt(a64 * b64))
        total += np.array(cv2.sumElems(m)[:c]) if c <= 4 else m.sum(axis=(0, 1))
    return float(np.mean(total / ((h - 2 * r) * (w - 2 * r))))


_KERNEL_NP = gaussian_kernel_1d().numpy()


def ssim_values(pred: torch.Tensor, target: torch.Tensor, crop_border: int = 0, y_channel: bool = False,
                impl: str = "auto") -> torch.Tensor:
    """``(N,)`` float64 SSIM of uint8 RGB batches (conventions in the module docstring). ``impl``: ``"auto"``
    (OpenCV on the CPU, torch elsewhere), ``"opencv"`` or ``"torch"`` (same numbers to ~1e-14)."""
    a, b = crop(pred, crop_border), crop(target, crop_border)
    if min(a.shape[-2:]) < WINDOW:
        raise ValueError(f"SSIM needs images of at least {WINDOW}x{WINDOW} after cropping, got {a.shape[-2]}x{a.shape[-1]}")
    if y_channel:
        a, b = rgb_to_y(a), rgb_to_y(b)  # float32, as the reference
    if impl not in ("auto", "opencv", "torch"):
        raise ValueError(f"unknown SSIM implementation {impl!r}")
    if impl == "opencv" or (impl == "auto" and a.device.type == "cpu"):
        a, b = a.cpu(), b.cpu()
        an = a.permute(0, 2, 3, 1).contiguous().numpy()  # HWC (a cheap uint8 copy): contiguous rows
        bn = b.permute(0, 2, 3, 1).contiguous().numpy()
        n = an.shape[0]
        workers = min(n, os.cpu_count() or 1)
        if workers <= 1:
            vals = [_ssim_one_opencv(an[i], bn[i]) for i in range(n)]
        else:  # OpenCV and numpy release the GIL: images of a batch run on all cores (same values, same order)
            with ThreadPoolExecutor(max_workers=workers) as ex:
                vals = list(ex.map(_ssim_one_opencv, an, bn))
        return torch.tensor(vals, dtype=torch.float64)
    a, b = a.to(torch.float64), b.to(torch.float64)
    c = a.shape[1]
    stats = gaussian_filter_valid(torch.cat([a, b, a * a + b * b, a * b], dim=1))
    m = _ssim_map(stats[:, :c], stats[:, c:2 * c], stats[:, 2 * c:3 * c], stats[:, 3 * c:])
    # reduce image by image so that a value never depends on the batch it was computed in
    return torch.stack([x.flatten(1).mean(dim=1).mean() for x in m])


class SSIM(Metric):
    """Structural similarity, BasicSR/MATLAB conventions. Options: ``crop_border`` (int, default 0),
    ``y_channel`` (bool, default False: the mean over the three RGB channels)."""

    name = "ssim"
    columns = ("ssim",)
    higher_is_better = {"ssim": True}
    defaults = {"crop_border": 0, "y_channel": False}

    def _describe(self) -> dict:
        return {"reference": "BasicSR calculate_ssim (XPixelGroup/BasicSR basicsr/metrics/psnr_ssim.py)",
                "channels": "Y (BT.601 MATLAB rgb2ycbcr, float32, not rounded)" if self.options["y_channel"] else "RGB, mean over channels",
                "crop_border": int(self.options["crop_border"]), "window": "11x11 Gaussian sigma 1.5, 'valid'",
                "C1": (K1 * DATA_RANGE) ** 2, "C2": (K2 * DATA_RANGE) ** 2, "data_range": DATA_RANGE,
                "precision": "float64"}

    def _compute(self, pred, target):
        v = ssim_values(pred.to(self.device), target.to(self.device), int(self.options["crop_border"]),
                        bool(self.options["y_channel"]))
        return {"ssim": v}
