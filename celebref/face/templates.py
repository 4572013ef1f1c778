"""FFHQ 5-point template alignment, as GFPGAN and CodeFormer use it (facexlib ``FaceRestoreHelper``).

Facts taken from facexlib (xinntao/facexlib, ``facexlib/utils/face_restoration_helper.py``), re-implemented here:

* the template: five points of a 512x512 FFHQ face, in the order left eye centre, right eye centre, nose tip,
  left mouth corner, right mouth corner (image left first: the RetinaFace/ArcFace order, which is also the order of
  :attr:`celebref.face.Detection.points5`); for another crop size it is scaled by ``size / 512``;
* the crop matrix: ``cv2.estimateAffinePartial2D(points5, template, method=cv2.LMEDS)`` (a 4-degree-of-freedom
  similarity, least-median-of-squares, then refined; deterministic);
* the crop: ``cv2.warpAffine(photo, M, (size, size))``, bilinear, constant border of grey
  ``(135, 133, 132)`` in facexlib's BGR, i.e. ``(132, 133, 135)`` RGB here.

Not reproduced: facexlib's ``template_3points`` variant and its ``pad_blur`` option (both off in GFPGAN's and
CodeFormer's inference scripts).

Coordinates: pixel-index ``(x, y)`` (``(0, 0)`` is the centre of the top-left pixel), as
:mod:`celebref.face.base`. Images: RGB uint8 ``(H, W, 3)``.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..errors import ConfigError
from .base import check_image

__all__ = ["FFHQ5_BORDER_RGB", "FFHQ5_TEMPLATE_512", "ffhq5_align", "ffhq5_matrix", "ffhq5_template", "points5_from_68",
           "warp_crop"]

#: facexlib's ``face_template`` for a 512 crop (``template_3points=False``), order as in the module docstring
FFHQ5_TEMPLATE_512 = np.array([
    [192.98138, 239.94708],
    [318.90277, 240.19360],
    [256.63416, 314.01935],
    [201.26117, 371.41043],
    [313.08905, 371.15118],
], dtype=np.float64)

#: facexlib's border value ``(135, 133, 132)`` (BGR) as RGB
FFHQ5_BORDER_RGB = (132, 133, 135)


def ffhq5_template(size: int = 512) -> np.ndarray:
    """The ``(5, 2)`` template for a ``size`` x ``size`` crop (facexlib: ``template * size / 512``)."""
    if int(size) < 8:
        raise ConfigError(f"size must be >= 8, got {size}")
    return FFHQ5_TEMPLATE_512 * (int(size) / 512.0)


def points5_from_68(landmarks68: np.ndarray) -> np.ndarray:
    """Five points in the template's order from ``(68, 2)`` iBUG landmarks: eye centres (means of 36-41 and
    42-47), nose tip (30), mouth corners (48, 54) -- the same points the dlib backend reports as ``points5``."""
    lm = np.asarray(landmarks68, dtype=np.float64)
    if lm.shape != (68, 2):
        raise ConfigError(f"landmarks68 must have shape (68, 2), got {lm.shape}")
    return np.stack([lm[36:42].mean(0), lm[42:48].mean(0), lm[30], lm[48], lm[54]])


def ffhq5_matrix(points5: np.ndarray, size: int = 512) -> np.ndarray:
    """The ``(2, 3)`` float64 photo -> crop matrix mapping ``points5`` onto :func:`ffhq5_template` (``size``)."""
    pts = np.asarray(points5, dtype=np.float64)
    if pts.shape != (5, 2) or not np.isfinite(pts).all():
        raise ConfigError(f"points5 must be 5 finite (x, y) points, got shape {pts.shape}")
    m, _ = cv2.estimateAffinePartial2D(pts, ffhq5_template(size), method=cv2.LMEDS)
    if m is None or not np.isfinite(m).all() or abs(np.linalg.det(m[:, :2])) < 1e-12:
        raise ConfigError("degenerate points5: no similarity maps them onto the FFHQ template")
    return np.asarray(m, dtype=np.float64)


def warp_crop(img: np.ndarray, matrix: np.ndarray, size: int, border_value: tuple[int, int, int] = (0, 0, 0)) -> np.ndarray:
    """``cv2.warpAffine(img, matrix, (size, size))``: bilinear, constant ``border_value`` (RGB) outside the photo."""
    img = check_image(img)
    return cv2.warpAffine(img, np.asarray(matrix, dtype=np.float64), (int(size), int(size)), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=tuple(int(v) for v in border_value))


def ffhq5_align(img: np.ndarray, points5: np.ndarray, size: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """GFPGAN/CodeFormer crop of the face with ``points5``: ``(crop (size, size, 3) uint8 RGB, matrix 2x3)``."""
    m = ffhq5_matrix(points5, size)
    return warp_crop(img, m, size, FFHQ5_BORDER_RGB), m
