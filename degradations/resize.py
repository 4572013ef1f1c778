"""Resizing with OpenCV or Pillow semantics (they differ, and the published recipes use both).

Images are ``(H, W, 3)`` arrays, RGB ``uint8`` or ``float32`` (any range for OpenCV; Pillow float
images are resized per channel in mode ``"F"``). Sizes are ``(width, height)`` like both libraries.

* OpenCV (``cv2.resize``): ``bicubic`` is ``INTER_CUBIC`` (a = -0.75, no antialiasing when shrinking),
  ``bilinear`` ``INTER_LINEAR``, ``area`` ``INTER_AREA``, ``nearest`` ``INTER_NEAREST``.
* Pillow (``Image.resize``): ``bicubic`` (a = -0.5) and ``bilinear`` widen their support when
  shrinking (antialiasing); this is what DFDNet's ``Image.BICUBIC`` down/upsampling does.
"""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image

CV2_METHODS = {"bicubic": cv2.INTER_CUBIC, "bilinear": cv2.INTER_LINEAR, "area": cv2.INTER_AREA, "nearest": cv2.INTER_NEAREST}
PIL_METHODS = {"bicubic": Image.BICUBIC, "bilinear": Image.BILINEAR, "area": Image.BOX, "nearest": Image.NEAREST, "lanczos": Image.LANCZOS}
INTERPOLATIONS = tuple(f"cv2_{m}" for m in CV2_METHODS) + tuple(f"pil_{m}" for m in PIL_METHODS)


def resize_cv2(img: np.ndarray, size: tuple[int, int], method: str = "bicubic") -> np.ndarray:
    """``cv2.resize(img, (w, h), interpolation=...)``; dtype preserved."""
    if method not in CV2_METHODS:
        raise ValueError(f"unknown OpenCV interpolation {method!r} (known: {', '.join(CV2_METHODS)})")
    return cv2.resize(np.ascontiguousarray(img), (int(size[0]), int(size[1])), interpolation=CV2_METHODS[method])


def resize_pil(img: np.ndarray, size: tuple[int, int], method: str = "bicubic") -> np.ndarray:
    """``PIL.Image.resize((w, h), resample)``. ``uint8`` RGB goes through an RGB image; ``float32``
    through one mode-``"F"`` image per channel (result float32)."""
    if method not in PIL_METHODS:
        raise ValueError(f"unknown Pillow resample {method!r} (known: {', '.join(PIL_METHODS)})")
    w, h = int(size[0]), int(size[1])
    resample = PIL_METHODS[method]
    arr = np.asarray(img)
    if arr.dtype == np.uint8:
        return np.asarray(Image.fromarray(np.ascontiguousarray(arr)).resize((w, h), resample))
    chans = [np.asarray(Image.fromarray(np.ascontiguousarray(arr[:, :, c], dtype=np.float32), mode="F").resize((w, h), resample)) for c in range(arr.shape[2])]
    return np.stack(chans, axis=2).astype(np.float32)


def resize(img: np.ndarray, size: tuple[int, int], interp: str = "cv2_bicubic") -> np.ndarray:
    """Resize with a named interpolation ``"<cv2|pil>_<method>"`` (see :data:`INTERPOLATIONS`)."""
    backend, _, method = interp.partition("_")
    if backend == "cv2":
        return resize_cv2(img, size, method)
    if backend == "pil":
        return resize_pil(img, size, method)
    raise ValueError(f"unknown interpolation {interp!r} (known: {', '.join(INTERPOLATIONS)})")


def downscaled_size(width: int, height: int, scale: float, rule: str = "floordiv") -> tuple[int, int]:
    """The low-resolution size for a downscale factor, by the rule a recipe uses:

    * ``floordiv``: ``int(w // scale)`` (GFPGAN, CodeFormer),
    * ``dfdnet``: ``int(w / sampler * 10.0)`` with ``sampler = round(scale * 10)`` (DFDNet draws
      ``sampler`` in 20..100 and resizes to ``fineSize / sampler * 10``),
    * ``round``: ``round(w / scale)``.
    Never smaller than 1 pixel."""
    if scale <= 0:
        raise ValueError(f"scale must be > 0, got {scale}")
    if rule == "floordiv":
        w, h = int(width // scale), int(height // scale)
    elif rule == "dfdnet":
        sampler = float(round(scale * 10))
        w, h = int(width / sampler * 10.0), int(height / sampler * 10.0)
    elif rule == "round":
        w, h = int(round(width / scale)), int(round(height / scale))
    else:
        raise ValueError(f"unknown size rule {rule!r} (known: floordiv, dfdnet, round)")
    return max(w, 1), max(h, 1)
