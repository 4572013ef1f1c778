"""ITU-R BT.601 luma as MATLAB's ``rgb2ycbcr`` (and BasicSR's ``to_y_channel``) computes it.

``Y = 16 + 65.481 R + 128.553 G + 24.966 B`` with ``R, G, B`` in ``[0, 1]``, giving ``Y`` in ``[16, 235]``.
This is the "studio-swing" Y of SR/face-restoration papers, **not** OpenCV's ``cvtColor(..., YCrCb)``
(full-range JPEG luma). The float types follow the reference exactly, which matters at the 1e-6 level:
``x = float32(u8) / 255`` in float32; the weighted sum and ``+16`` in float64; ``/255`` in float64; cast to
float32; ``*255`` in float32. The result is **not rounded** (PSNR/SSIM) unless the caller rounds it (NIQE).
"""

from __future__ import annotations

import torch

#: BT.601 "MATLAB" coefficients for R, G, B (inputs in [0, 1]) and the offset.
BT601_RGB = (65.481, 128.553, 24.966)
BT601_OFFSET = 16.0


def rgb_to_y(images: torch.Tensor) -> torch.Tensor:
    """``uint8 (N, 3, H, W)`` RGB -> float32 ``(N, 1, H, W)`` BT.601 Y in ``[16, 235]`` (not rounded)."""
    if images.dtype != torch.uint8:
        raise TypeError(f"rgb_to_y expects uint8 RGB images, got {images.dtype}")
    x = images.to(torch.float32).div_(255.0).to(torch.float64)
    r, g, b = x[:, 0:1], x[:, 1:2], x[:, 2:3]
    # the reference's dot product runs in B, G, R order (its images are BGR)
    y = b * BT601_RGB[2] + g * BT601_RGB[1] + r * BT601_RGB[0] + BT601_OFFSET
    return (y / 255.0).to(torch.float32).mul_(255.0)
