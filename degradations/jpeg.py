"""JPEG compression with OpenCV's encoder (libjpeg as bundled with opencv-python-headless).

Input: RGB ``uint8`` ``(H, W, 3)`` or ``float32`` in ``[0, 1]``; output has the input's dtype. Float
images are converted to 8 bits by ``rint(clip(x, 0, 1) * 255)`` first, which is what ``cv2.imencode``
does with a float image (saturate + round half to even), so BasicSR's ``add_jpg_compression`` is matched.
"""

from __future__ import annotations

import cv2
import numpy as np


def jpeg_compress(img: np.ndarray, quality: int, treat_rgb_as_bgr: bool = False) -> np.ndarray:
    """Encode at ``quality`` (0..100, integer) and decode.

    OpenCV's encoder assumes BGR. By default the RGB array is converted so the encoder sees true
    colours (as GFPGAN/CodeFormer do with their BGR images). ``treat_rgb_as_bgr=True`` hands the RGB
    array to the encoder unchanged, as DFDNet does (``np.array(PIL image)`` into ``cv2.imencode``): the
    encoder's YCbCr conversion then swaps the roles of R and B."""
    q = int(quality)
    if not 0 <= q <= 100:
        raise ValueError(f"JPEG quality must be in 0..100, got {quality}")
    is_u8 = img.dtype == np.uint8
    u8 = img if is_u8 else np.rint(np.clip(img, 0, 1) * np.float32(255.0)).astype(np.uint8)
    arr = u8 if treat_rgb_as_bgr else u8[:, :, ::-1]
    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(arr), [int(cv2.IMWRITE_JPEG_QUALITY), q])
    if not ok:
        raise RuntimeError("OpenCV could not encode JPEG")
    dec = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    out = dec if treat_rgb_as_bgr else dec[:, :, ::-1]
    out = np.ascontiguousarray(out)
    return out if is_u8 else out.astype(np.float32) / np.float32(255.0)
