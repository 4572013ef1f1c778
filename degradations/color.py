"""Colour changes (optional in every preset, off by default for test sets).

* :func:`channel_shift` adds one value per channel and clips (GFPGAN/CodeFormer ``color_jitter``;
  ``float32`` RGB in [0, 1], shifts on the same scale).
* :func:`to_gray` luma (OpenCV BT.601 weights) repeated on 3 channels (GFPGAN ``gray_prob``); dtype kept.
* :func:`enhance` brightness / contrast / saturation factors applied in a given order with Pillow's
  ``ImageEnhance`` (what ``torchvision.transforms.ColorJitter`` does on PIL images, as in DFDNet);
  RGB ``uint8`` in and out.
"""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np
from PIL import Image, ImageEnhance

ENHANCERS = {"brightness": ImageEnhance.Brightness, "contrast": ImageEnhance.Contrast, "saturation": ImageEnhance.Color}


def channel_shift(img: np.ndarray, shifts: Sequence[float]) -> np.ndarray:
    """``clip(img + shifts, 0, 1)`` for float32 RGB in [0, 1]; ``shifts`` is 3 values in RGB order."""
    out = img.astype(np.float32) + np.asarray(shifts, dtype=np.float32).reshape(1, 1, 3)
    return np.clip(out, 0, 1).astype(np.float32)


def to_gray(img: np.ndarray) -> np.ndarray:
    """``cv2.cvtColor(RGB2GRAY)`` tiled to 3 channels (uint8 or float32 RGB)."""
    g = cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_RGB2GRAY)
    return np.repeat(g[:, :, None], 3, axis=2)


def enhance(img: np.ndarray, factors: dict[str, float], order: Sequence[str]) -> np.ndarray:
    """Apply Pillow enhancers (``brightness``, ``contrast``, ``saturation``) in ``order`` with ``factors``
    (1.0 = unchanged). RGB uint8 ``(H, W, 3)`` in and out."""
    pil = Image.fromarray(np.ascontiguousarray(img))
    for name in order:
        if name in factors:
            pil = ENHANCERS[name](pil).enhance(float(factors[name]))
    return np.asarray(pil)
