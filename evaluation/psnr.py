"""PSNR exactly as BasicSR's ``calculate_psnr`` (``basicsr/metrics/psnr_ssim.py``).

Conventions: images ``uint8`` RGB ``(N, 3, H, W)``; ``crop_border`` pixels are removed on every side
**first**; then, with ``y_channel=True``, BT.601 "MATLAB" Y (:mod:`evaluation.color`, float32, not rounded);
``mse = mean((a - b)^2)`` in float64 over all remaining values (H x W x C); ``PSNR = 10 log10(255^2 / mse)`` dB,
``+inf`` when ``mse == 0``. The peak is 255 for Y as well (BasicSR's choice). Higher is better.
"""

from __future__ import annotations

import numpy as np
import torch

from .base import Metric
from .color import rgb_to_y


def crop(images: torch.Tensor, border: int) -> torch.Tensor:
    """Remove ``border`` pixels on every side of ``(N, C, H, W)`` (BasicSR ``img[c:-c, c:-c]``)."""
    if border < 0:
        raise ValueError(f"crop_border must be >= 0, got {border}")
    if border == 0:
        return images
    if 2 * border >= min(images.shape[-2:]):
        raise ValueError(f"crop_border {border} removes the whole {images.shape[-2]}x{images.shape[-1]} image")
    return images[..., border:-border, border:-border]


def psnr_values(pred: torch.Tensor, target: torch.Tensor, crop_border: int = 0, y_channel: bool = False,
                impl: str = "auto") -> torch.Tensor:
    """``(N,)`` float64 PSNR in dB of uint8 RGB batches (conventions in the module docstring). ``impl``:
    ``"auto"`` (OpenCV/numpy on the CPU, torch elsewhere), ``"opencv"`` or ``"torch"``."""
    a, b = crop(pred, crop_border), crop(target, crop_border)
    if y_channel:
        a, b = rgb_to_y(a), rgb_to_y(b)  # float32, as the reference
    n = a.shape[0]
    count = float(a[0].numel())
    if impl not in ("auto", "opencv", "torch"):
        raise ValueError(f"unknown PSNR implementation {impl!r}")
    if impl == "opencv" or (impl == "auto" and a.device.type == "cpu"):
        import cv2

        a, b = a.cpu(), b.cpu()

        an, bn = a.numpy(), b.numpy()
        sse = []
        for i in range(n):
            if an.dtype == np.uint8:
                # exact: OpenCV sums the integer squared differences in integers (the reference's float64
                # mean of exact integer squares is exact too, so both equal sum/count)
                x, y = np.ascontiguousarray(an[i]), np.ascontiguousarray(bn[i])
                sse.append(float(cv2.norm(x.reshape(-1, x.shape[-1]), y.reshape(-1, y.shape[-1]), cv2.NORM_L2SQR)))
            else:
                d = an[i].astype(np.float64) - bn[i]
                sse.append(float(np.square(d).sum()))
        mse = torch.tensor(sse, dtype=torch.float64) / count
    else:
        d = a.to(torch.float64) - b.to(torch.float64)
        mse = torch.stack([x.square().sum() for x in d]).to("cpu") / count
    out = 10.0 * torch.log10((255.0 * 255.0) / mse)
    return torch.where(mse == 0, torch.full_like(out, float("inf")), out)


class PSNR(Metric):
    """Peak signal-to-noise ratio (dB), BasicSR conventions. Options: ``crop_border`` (int, default 0),
    ``y_channel`` (bool, default False: all three RGB channels)."""

    name = "psnr"
    columns = ("psnr",)
    higher_is_better = {"psnr": True}
    defaults = {"crop_border": 0, "y_channel": False}

    def _describe(self) -> dict:
        return {"reference": "BasicSR calculate_psnr (XPixelGroup/BasicSR basicsr/metrics/psnr_ssim.py)",
                "channels": "Y (BT.601 MATLAB rgb2ycbcr, float32, not rounded)" if self.options["y_channel"] else "RGB",
                "crop_border": int(self.options["crop_border"]), "peak": 255, "precision": "float64",
                "unit": "dB", "identical_images": "inf"}

    def _compute(self, pred, target):
        v = psnr_values(pred.to(self.device), target.to(self.device), int(self.options["crop_border"]),
                        bool(self.options["y_channel"]))
        return {"psnr": v}
