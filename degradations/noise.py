"""Additive noise. Sigmas are on the 0..255 scale for both image types.

Images: RGB ``uint8`` ``(H, W, 3)`` or ``float32`` ``(H, W, 3)`` in ``[0, 1]``. Every function takes an
explicit :class:`numpy.random.Generator` (never global state) and returns the input's dtype.
"""

from __future__ import annotations

import numpy as np


def gaussian_noise(shape: tuple[int, ...], sigma: float, rng: np.random.Generator, gray: bool = False) -> np.ndarray:
    """float32 noise ``N(0, sigma^2)`` of ``shape`` (H, W, C); ``gray`` draws one (H, W) field shared by all channels."""
    if gray:
        field = rng.standard_normal(shape[:2], dtype=np.float32) * np.float32(sigma)
        return np.repeat(field[:, :, None], shape[2], axis=2)
    return rng.standard_normal(shape, dtype=np.float32) * np.float32(sigma)


def add_gaussian_noise(img: np.ndarray, sigma: float, rng: np.random.Generator, gray: bool = False, rounding: str = "none") -> np.ndarray:
    """Add Gaussian noise of standard deviation ``sigma`` (0..255 scale) and clip to the valid range.

    ``uint8`` input: the sum is computed in float32 on 0..255, clipped to [0, 255] and converted back with
    ``rounding`` = ``"truncate"`` (``np.uint8(x)``, what DFDNet does) or ``"round"`` (to nearest).
    ``float32`` input in [0, 1]: noise ``* sigma / 255`` is added and the result clipped to [0, 1],
    not rounded (BasicSR ``add_gaussian_noise(clip=True, rounds=False)``); ``rounding="round"`` rounds
    to the 1/255 grid as BasicSR's ``rounds=True``."""
    if img.dtype == np.uint8:
        out = np.clip(img.astype(np.float32) + gaussian_noise(img.shape, sigma, rng, gray), 0, 255)
        if rounding == "round":
            return np.rint(out).astype(np.uint8)
        return out.astype(np.uint8)  # truncation toward zero (values are >= 0)
    noise = gaussian_noise(img.shape, sigma, rng, gray) / np.float32(255.0)
    out = np.clip(img.astype(np.float32) + noise, 0, 1)
    if rounding == "round":
        out = np.rint(out * np.float32(255.0)) / np.float32(255.0)
    return out.astype(np.float32)


def add_poisson_noise(img: np.ndarray, scale: float, rng: np.random.Generator, gray: bool = False) -> np.ndarray:
    """Poisson (shot) noise as in BasicSR ``add_poisson_noise``: the image is rounded to the 1/255 grid,
    ``vals = 2**ceil(log2(#unique values))``, ``out = Poisson(img * vals) / vals``, and ``scale`` times
    the difference is added; the result is clipped. ``gray`` uses the luma (BT.601) for one shared field."""
    is_u8 = img.dtype == np.uint8
    f = img.astype(np.float32) / np.float32(255.0) if is_u8 else img.astype(np.float32)
    base = f.astype(np.float64) @ np.array([0.299, 0.587, 0.114]) if gray else f.astype(np.float64)
    base = np.clip(np.rint(base * 255.0), 0, 255) / 255.0
    vals = 2 ** np.ceil(np.log2(max(len(np.unique(base)), 1)))
    noise = (rng.poisson(base * vals) / float(vals) - base).astype(np.float32)
    if gray:
        noise = np.repeat(noise[:, :, None], 3, axis=2)
    out = np.clip(f + noise * np.float32(scale), 0, 1)
    if is_u8:
        return np.rint(out * 255.0).astype(np.uint8)
    return out.astype(np.float32)
