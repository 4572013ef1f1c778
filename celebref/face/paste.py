"""Pasting restored face crops back into their (upscaled) photo: inverse affine warp + feathered mask.

One paste-back for every method, whatever alignment made its crop (FFHQ 5-point, FFHQ 68-point, DFDNet template):
all an alignment has to give is the 2x3 matrix ``photo -> crop`` (pixel-index coordinates, ``(0, 0)`` the centre of
the top-left pixel, as :mod:`celebref.face.base`).

The mask recipe is the one of DFDNet's official ``reverse_align`` and facexlib's ``paste_faces_to_input_image``
(GFPGAN, CodeFormer); see ``baselines/dfdnet/align.py`` for the official DFDNet maths:

1. warp the face, and a ones-mask of its size, with the inverse matrix onto the canvas (bilinear, black border);
2. erode the warped mask with a ``2u x 2u`` square (``u`` = upscale) to drop the interpolated border ("inner mask"),
   and multiply the warped face by it;
3. ``w_edge = int(sqrt(sum(inner mask))) // 20``; erode the inner mask with a ``2 w_edge`` square and blur it with a
   Gaussian of size ``2 w_edge + 1`` (OpenCV's sigma for that size) -> the soft mask;
4. ``canvas = soft * face + (1 - soft) * canvas``, face after face, in float32.

Where this differs from the official code (documented choices, not accidents):

* upscaling maps pixel centres exactly, ``x' = u x + (u - 1) / 2`` (DFDNet estimates its inverse from
  ``points * u`` and rounds it to 3 decimals; facexlib scales the inverse by ``u`` and adds ``0.5 u``);
* faces so small that ``w_edge`` would be 0 use ``w_edge = 1`` (OpenCV reads an empty kernel as 3x3);
* the result is rounded to the nearest integer (the official scripts truncate with ``astype(uint8)``);
* the work is done in the face's bounding box (plus the blur's reach), which gives the full-canvas result.

Pixels no soft mask reaches keep the background's value exactly. The background is the photo resized by ``u``
(:func:`resize_background`). Images are RGB uint8 ``(H, W, 3)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np

from ..errors import ConfigError
from .base import check_image

__all__ = ["BACKGROUND_INTERPOLATIONS", "Pasted", "face_to_canvas_matrix", "paste_face", "paste_faces",
           "resize_background", "soft_mask"]

BACKGROUND_INTERPOLATIONS = {"bilinear": cv2.INTER_LINEAR, "bicubic": cv2.INTER_CUBIC, "lanczos": cv2.INTER_LANCZOS4,
                             "nearest": cv2.INTER_NEAREST, "area": cv2.INTER_AREA}


def _check_upscale(upscale: int) -> int:
    if isinstance(upscale, bool) or int(upscale) != upscale or int(upscale) < 1:
        raise ConfigError(f"upscale must be an integer >= 1, got {upscale!r}")
    return int(upscale)


def _scale(s: float) -> np.ndarray:
    """3x3 pixel-centre scaling by ``s``: ``x' = s x + (s - 1) / 2``."""
    return np.array([[s, 0.0, 0.5 * s - 0.5], [0.0, s, 0.5 * s - 0.5], [0.0, 0.0, 1.0]])


def face_to_canvas_matrix(matrix: np.ndarray, crop_size: int, face_size: int, upscale: int = 1) -> np.ndarray:
    """2x3 map from a restored face's pixels to the canvas (the photo upscaled ``upscale`` times).

    ``matrix``: photo -> aligned crop of ``crop_size``. ``face_size``: side of the restored face (a method may
    return another size than its input crop; the crop grid is rescaled pixel-centre exactly)."""
    m = np.vstack([np.asarray(matrix, dtype=np.float64).reshape(2, 3), [0.0, 0.0, 1.0]])
    photo_to_face = _scale(face_size / crop_size) @ m
    return (_scale(_check_upscale(upscale)) @ np.linalg.inv(photo_to_face))[:2]


def resize_background(img: np.ndarray, upscale: int = 1, interpolation: str = "bilinear") -> np.ndarray:
    """The photo resized ``upscale`` times with ``cv2.resize`` (``interpolation`` one of
    :data:`BACKGROUND_INTERPOLATIONS`); ``upscale = 1`` returns a copy."""
    img = check_image(img)
    u = _check_upscale(upscale)
    if interpolation not in BACKGROUND_INTERPOLATIONS:
        raise ConfigError(f"interpolation must be one of {', '.join(BACKGROUND_INTERPOLATIONS)}, got {interpolation!r}")
    if u == 1:
        return img.copy()
    h, w = img.shape[:2]
    return cv2.resize(img, (w * u, h * u), interpolation=BACKGROUND_INTERPOLATIONS[interpolation])


@dataclass(frozen=True)
class Pasted:
    """Where one face went: ``soft`` is its ``(h, w)`` float32 blending mask in ``[0, 1]`` placed at ``(x0, y0)`` of
    the canvas; ``inner`` the eroded hard mask (step 2) there; ``w_edge`` the feather width used."""

    x0: int
    y0: int
    soft: np.ndarray
    inner: np.ndarray
    w_edge: int

    def full(self, shape: tuple[int, int], which: str = "soft") -> np.ndarray:
        """The mask on a canvas of ``shape`` ``(H, W)`` (zeros elsewhere)."""
        out = np.zeros(tuple(shape[:2]), np.float32)
        m = self.soft if which == "soft" else self.inner
        out[self.y0:self.y0 + m.shape[0], self.x0:self.x0 + m.shape[1]] = m
        return out


def _roi(inv: np.ndarray, face_hw: tuple[int, int], canvas_hw: tuple[int, int]) -> tuple[int, int, int, int] | None:
    fh, fw = face_hw
    corners = np.array([[-0.5, -0.5], [fw - 0.5, -0.5], [-0.5, fh - 0.5], [fw - 0.5, fh - 0.5]])
    mapped = corners @ inv[:, :2].T + inv[:, 2]
    x0, y0 = np.floor(mapped.min(0)).astype(int)
    x1, y1 = np.ceil(mapped.max(0)).astype(int)
    reach = int(math.sqrt(max(x1 - x0, 1) * max(y1 - y0, 1))) // 20 + 4  # >= the blur's radius
    H, W = canvas_hw
    x0, y0, x1, y1 = max(x0 - reach, 0), max(y0 - reach, 0), min(x1 + reach + 1, W), min(y1 + reach + 1, H)
    if x1 <= x0 or y1 <= y0:
        return None
    return x0, y0, x1, y1


def soft_mask(inv: np.ndarray, face_hw: tuple[int, int], out_hw: tuple[int, int], upscale: int = 1
              ) -> tuple[np.ndarray, np.ndarray, int]:
    """Steps 1-3 of the module docstring for a face of ``face_hw`` warped by ``inv`` (face -> output pixels) onto an
    ``out_hw`` grid: ``(soft, inner, w_edge)``, float32 ``(H, W)`` masks."""
    u = _check_upscale(upscale)
    h, w = out_hw
    ones = np.ones(tuple(face_hw), np.float32)
    warped = cv2.warpAffine(ones, inv, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    inner = cv2.erode(warped, np.ones((2 * u, 2 * u), np.uint8))
    w_edge = max(int(float(inner.sum()) ** 0.5) // 20, 1)
    center = cv2.erode(inner, np.ones((2 * w_edge, 2 * w_edge), np.uint8))
    soft = cv2.GaussianBlur(center, (2 * w_edge + 1, 2 * w_edge + 1), 0)
    return soft, inner, w_edge


def paste_face(canvas: np.ndarray, face: np.ndarray, inv: np.ndarray, upscale: int = 1) -> Pasted | None:
    """Blend ``face`` (RGB uint8 ``(h, w, 3)``) into ``canvas`` (float32 ``(H, W, 3)``, modified in place) with the
    face -> canvas matrix ``inv`` (:func:`face_to_canvas_matrix`). Returns where it went, or ``None`` when the face
    lands entirely outside the canvas."""
    face = check_image(face)
    inv = np.asarray(inv, dtype=np.float64).reshape(2, 3)
    roi = _roi(inv, face.shape[:2], canvas.shape[:2])
    if roi is None:
        return None
    x0, y0, x1, y1 = roi
    local = inv.copy()
    local[:, 2] -= (x0, y0)
    size = (x1 - x0, y1 - y0)
    warped = cv2.warpAffine(face, local, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                            borderValue=(0, 0, 0)).astype(np.float32)
    soft, inner, w_edge = soft_mask(local, face.shape[:2], (y1 - y0, x1 - x0), upscale)
    region = canvas[y0:y1, x0:x1]
    s = soft[:, :, None]
    region[...] = s * (inner[:, :, None] * warped) + (1.0 - s) * region
    return Pasted(x0, y0, soft, inner, w_edge)


def paste_faces(background: np.ndarray, faces: Sequence[np.ndarray], inverses: Sequence[np.ndarray], upscale: int = 1
                ) -> tuple[np.ndarray, list[Pasted | None]]:
    """Paste ``faces[i]`` with ``inverses[i]`` (face -> canvas matrices) onto ``background`` (RGB uint8, already
    upscaled) in the order given (later faces cover earlier ones where they overlap). Returns the RGB uint8 result
    (rounded) and one :class:`Pasted` (or ``None``) per face."""
    background = check_image(background)
    if len(faces) != len(inverses):
        raise ConfigError(f"got {len(faces)} faces but {len(inverses)} matrices")
    canvas = background.astype(np.float32)
    placed = [paste_face(canvas, f, m, upscale) for f, m in zip(faces, inverses)]
    return np.clip(np.rint(canvas), 0, 255).astype(np.uint8), placed
