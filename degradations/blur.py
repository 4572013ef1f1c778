"""Blurring: convolution of an image with a 2-D kernel (OpenCV ``filter2D``) and OpenCV's Gaussian blur.

Images are ``(H, W, 3)`` arrays, either RGB ``uint8`` or ``float32`` in ``[0, 1]``; the result has the
input's dtype (``uint8`` results are rounded to nearest and saturated by OpenCV). Borders use OpenCV's
default ``BORDER_REFLECT_101`` (``gfedcb|abcdefgh|gfedcba``), as in every published recipe. Channels are
filtered independently, so channel order does not matter.
"""

from __future__ import annotations

import cv2
import numpy as np


def convolve(img: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """``cv2.filter2D(img, -1, kernel)``: correlation with ``kernel`` (equal to convolution for the
    centrally symmetric Gaussian kernels; motion kernels are used as DFDNet uses its kernels)."""
    kernel = np.asarray(kernel)
    if kernel.ndim != 2:
        raise ValueError(f"kernel must be 2-D, got shape {kernel.shape}")
    return cv2.filter2D(np.ascontiguousarray(img), -1, kernel)


def gaussian_blur_cv2(img: np.ndarray, ksize: int, sigma: float) -> np.ndarray:
    """``cv2.GaussianBlur(img, (ksize, ksize), sigma)`` (DFDNet's Gaussian blur step)."""
    return cv2.GaussianBlur(np.ascontiguousarray(img), (int(ksize), int(ksize)), float(sigma))
