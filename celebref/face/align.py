"""FFHQ-style face alignment from 68 landmarks, and pasting a processed face back into its photo.

The crop is the oriented square of the FFHQ dataset script (NVlabs ffhq-dataset, ``recreate_aligned_images``),
which DMDNet's companion repository ASFFNet512 uses to prepare CelebRef-HQ faces:

* ``eye_left``/``eye_right`` = means of points 36-41 / 42-47; ``mouth_left``/``mouth_right`` = points 48 / 54;
* ``eye_to_eye = eye_right - eye_left``; ``eye_to_mouth = mouth_avg - eye_avg``;
* ``x = eye_to_eye - rot90(eye_to_mouth)`` normalised, scaled to ``max(2.0 |eye_to_eye|, 1.8 |eye_to_mouth|)``;
  ``y = rot90(x)``; centre ``c = eye_avg + 0.1 eye_to_mouth``;
* ``quad = [c - x - y, c - x + y, c + x + y, c + x - y]`` (top-left, bottom-left, bottom-right, top-right of the
  output), ``qsize = 2 |x|``.

Rendering (deterministic; same geometry as the script, own resampling):

1. **shrink**: if ``s = floor(qsize / output_size / 2) > 1`` the photo is first reduced by ``s`` (area
   averaging); the quad follows exactly (pixel centres, not the script's plain ``quad / s``);
2. **crop** to the quad plus a border of ``max(rint(0.1 qsize), 3)`` px (a speed-up only);
3. **padding** (``enable_padding=True``, as the script): when the quad leaves the photo by more than
   ``border - 4`` px, every side is reflect-padded by at least ``rint(0.3 qsize)`` px (``numpy.pad`` ``reflect``),
   the padding is blurred with a Gaussian of sigma ``0.02 qsize`` (weight rising from 0 at a third of the pad width
   inside the photo's edge to 1 at that edge and beyond) and faded towards the per-channel median colour with
   distance from the edge. The result records ``padded`` and the pad widths, because this reflect-and-blur
   pattern is visible in aligned datasets (``celebref dataset verify`` checks for it). With
   ``enable_padding=False`` the area outside the photo is black;
4. **warp**: bilinear sampling on an ``output_size * k`` grid (``k = ceil(qsize / output_size)``, at most 4) then
   area averaging by ``k`` (the script samples a 4096 grid and resizes with Lanczos: pixels differ slightly,
   geometry is the same).

Coordinates: pixel-index ``(x, y)``, origin the centre of the top-left pixel. The output pixel ``(u, v)`` is sampled
at ``quad[0] + (u + 0.5) / S * (quad[3] - quad[0]) + (v + 0.5) / S * (quad[1] - quad[0])`` of the original photo,
so the quad's corners are the output's outer pixel edges. ``AlignResult.matrix`` maps original photo coordinates
to aligned coordinates (a 2x3 similarity); ``AlignResult.inverse`` maps back.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from ..errors import ConfigError
from .base import check_image
from .paste import paste_faces

#: largest supersampling factor of the warp (the FFHQ script's 4096 grid for a 1024 output is 4x)
MAX_SUPERSAMPLE = 4


@dataclass(frozen=True)
class AlignResult:
    """``image``: ``(S, S, 3)`` uint8 RGB aligned face. ``matrix``: 2x3 float64, original-photo coordinates ->
    aligned-image coordinates. ``quad``: ``(4, 2)`` corners in the original photo (top-left, bottom-left,
    bottom-right, top-right of the output). ``padded``: whether reflect padding (and its blur) was applied;
    ``pad``: its widths (left, top, right, bottom) in pixels of the photo after shrinking (zeros when none);
    ``shrink``: the integer pre-reduction factor (1 = none)."""

    image: np.ndarray
    matrix: np.ndarray
    quad: np.ndarray
    output_size: int
    padded: bool = False
    pad: tuple[int, int, int, int] = (0, 0, 0, 0)
    shrink: int = 1

    @property
    def inverse(self) -> np.ndarray:
        """2x3 matrix: aligned-image coordinates -> original-photo coordinates."""
        return invert_affine(self.matrix)

    def to_dict(self) -> dict:
        """JSON-ready record of the transform (no pixels)."""
        return {
            "output_size": self.output_size,
            "matrix": self.matrix.tolist(),
            "quad": self.quad.tolist(),
            "padded": self.padded,
            "pad": list(self.pad),
            "shrink": self.shrink,
        }


def invert_affine(m: np.ndarray) -> np.ndarray:
    """Inverse of a 2x3 affine matrix."""
    full = np.vstack([np.asarray(m, dtype=np.float64), [0.0, 0.0, 1.0]])
    return np.linalg.inv(full)[:2]


def apply_affine(m: np.ndarray, points: np.ndarray) -> np.ndarray:
    """``(N, 2)`` points mapped by a 2x3 matrix."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    return pts @ np.asarray(m, dtype=np.float64)[:, :2].T + np.asarray(m, dtype=np.float64)[:, 2]


def _check_landmarks(landmarks: np.ndarray) -> np.ndarray:
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.shape != (68, 2):
        raise ConfigError(f"FFHQ alignment needs 68 landmarks of shape (68, 2), got {lm.shape}")
    if not np.isfinite(lm).all():
        raise ConfigError("landmarks contain NaN or infinity")
    return lm


def ffhq_quad(landmarks68: np.ndarray) -> tuple[np.ndarray, float]:
    """The FFHQ crop square ``(quad (4, 2), qsize)`` from 68 iBUG landmarks (see the module docstring)."""
    lm = _check_landmarks(landmarks68)
    eye_left, eye_right = lm[36:42].mean(0), lm[42:48].mean(0)
    eye_avg = (eye_left + eye_right) / 2
    eye_to_eye = eye_right - eye_left
    mouth_avg = (lm[48] + lm[54]) / 2
    eye_to_mouth = mouth_avg - eye_avg
    # rot90 of (dx, dy) as in the script: flipud(v) * [-1, 1] = (-dy, dx)
    x = eye_to_eye - np.array([-eye_to_mouth[1], eye_to_mouth[0]])
    norm = math.hypot(*x)
    if norm == 0:
        raise ConfigError("degenerate landmarks: eyes and mouth coincide")
    x = x / norm * max(math.hypot(*eye_to_eye) * 2.0, math.hypot(*eye_to_mouth) * 1.8)
    y = np.array([-x[1], x[0]])
    c = eye_avg + eye_to_mouth * 0.1
    quad = np.stack([c - x - y, c - x + y, c + x + y, c + x - y])
    return quad, float(math.hypot(*x) * 2)


def quad_matrix(quad: np.ndarray, output_size: int) -> np.ndarray:
    """2x3 matrix from aligned-image coordinates (``output_size`` grid) to the coordinates ``quad`` lives in."""
    q = np.asarray(quad, dtype=np.float64)
    ex = (q[3] - q[0]) / output_size
    ey = (q[1] - q[0]) / output_size
    origin = q[0] + 0.5 * ex + 0.5 * ey
    return np.array([[ex[0], ey[0], origin[0]], [ex[1], ey[1], origin[1]]])


def _reflect_pad_blur(img: np.ndarray, pad: tuple[int, int, int, int], qsize: float) -> np.ndarray:
    """The FFHQ script's padding: reflect pad, blur the padding, fade it to the median colour (uint8 out)."""
    left, top, right, bottom = pad
    out = np.pad(img.astype(np.float32), ((top, bottom), (left, right), (0, 0)), mode="reflect")
    h, w = out.shape[:2]
    xs = np.arange(w, dtype=np.float32)[None, :]
    ys = np.arange(h, dtype=np.float32)[:, None]
    mask = np.maximum(
        1.0 - np.minimum(xs / left, (w - 1 - xs) / right),
        1.0 - np.minimum(ys / top, (h - 1 - ys) / bottom),
    )[:, :, None]
    sigma = qsize * 0.02
    radius = int(4.0 * sigma + 0.5)  # scipy.ndimage.gaussian_filter's default truncation (4 sigma)
    blurred = cv2.GaussianBlur(out, (2 * radius + 1, 2 * radius + 1), sigmaX=sigma, sigmaY=sigma,
                               borderType=cv2.BORDER_REFLECT)
    out += (blurred - out) * np.clip(mask * 3.0 + 1.0, 0.0, 1.0)
    out += (np.median(out, axis=(0, 1)) - out) * np.clip(mask, 0.0, 1.0)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def ffhq_align(img: np.ndarray, landmarks68: np.ndarray, output_size: int = 512,
               enable_padding: bool = True) -> AlignResult:
    """Align the face with ``landmarks68`` (iBUG order, pixel coordinates of ``img``) to ``output_size`` square,
    FFHQ style. ``img``: RGB uint8 ``(H, W, 3)``. See the module docstring for every step."""
    img = check_image(img)
    if int(output_size) < 8:
        raise ConfigError(f"output_size must be >= 8, got {output_size}")
    size = int(output_size)
    quad0, qsize0 = ffhq_quad(landmarks68)
    quad, qsize = quad0.copy(), qsize0
    work = img

    # 1. shrink
    shrink = int(np.floor(qsize / size * 0.5))
    if shrink > 1:
        h, w = img.shape[:2]
        nw, nh = max(int(np.rint(w / shrink)), 1), max(int(np.rint(h / shrink)), 1)
        work = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_AREA)
        sx, sy = nw / w, nh / h
        quad = (quad + 0.5) * np.array([sx, sy]) - 0.5
        qsize = qsize * (sx + sy) / 2
    else:
        shrink = 1
    # photo (after shrink) -> working-image offset, tracked so the final matrix refers to the original photo
    offset = np.zeros(2)

    # 2. crop
    border = max(int(np.rint(qsize * 0.1)), 3)
    h, w = work.shape[:2]
    x0, y0 = int(np.floor(quad[:, 0].min())), int(np.floor(quad[:, 1].min()))
    x1, y1 = int(np.ceil(quad[:, 0].max())), int(np.ceil(quad[:, 1].max()))
    cx0, cy0 = max(x0 - border, 0), max(y0 - border, 0)
    cx1, cy1 = min(x1 + border, w), min(y1 + border, h)
    if cx1 <= cx0 or cy1 <= cy0:
        raise ConfigError("the face quad lies entirely outside the image")
    if cx1 - cx0 < w or cy1 - cy0 < h:
        work = work[cy0:cy1, cx0:cx1]
        offset -= (cx0, cy0)

    # 3. pad
    h, w = work.shape[:2]
    q = quad + offset
    pad = (
        max(-int(np.floor(q[:, 0].min())) + border, 0),
        max(-int(np.floor(q[:, 1].min())) + border, 0),
        max(int(np.ceil(q[:, 0].max())) - w + border, 0),
        max(int(np.ceil(q[:, 1].max())) - h + border, 0),
    )
    padded = bool(enable_padding and max(pad) > border - 4)
    if padded:
        floor_pad = int(np.rint(qsize * 0.3))
        pad = tuple(max(p, floor_pad) for p in pad)
        work = _reflect_pad_blur(work, pad, qsize)
        offset += pad[:2]
    else:
        pad = (0, 0, 0, 0)

    # 4. warp (supersample k, then area-average)
    k = int(min(max(math.ceil(qsize / size), 1), MAX_SUPERSAMPLE))
    grid = size * k
    to_work = quad_matrix(quad + offset, grid)  # supersampled grid -> working image
    big = cv2.warpAffine(work, to_work, (grid, grid), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                         borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
    out = big if k == 1 else cv2.resize(big, (size, size), interpolation=cv2.INTER_AREA)

    matrix = invert_affine(quad_matrix(quad0, size))  # original photo -> aligned
    return AlignResult(np.ascontiguousarray(out), matrix, quad0, size, padded, tuple(int(p) for p in pad), shrink)


def _scaled_matrix(matrix: np.ndarray, from_size: int, to_size: int) -> np.ndarray:
    """Compose a photo->aligned(``from_size``) matrix with the pixel-centre rescale to ``to_size``."""
    s = to_size / from_size
    scale = np.array([[s, 0.0, 0.5 * s - 0.5], [0.0, s, 0.5 * s - 0.5], [0.0, 0.0, 1.0]])
    return (scale @ np.vstack([matrix, [0.0, 0.0, 1.0]]))[:2]


def paste_back(original: np.ndarray, restored_aligned: np.ndarray, transform: AlignResult | np.ndarray) -> np.ndarray:
    """Put a processed aligned face back into the photo it was aligned from (the one paste-back,
    :mod:`celebref.face.paste`: inverse warp, eroded and feathered mask).

    ``original``: the photo (RGB uint8). ``restored_aligned``: the processed face, RGB uint8, square; it may be
    larger or smaller than the aligned crop (e.g. a 512 result of a 256 crop), the transform is rescaled.
    ``transform``: the :class:`AlignResult` (or its 2x3 ``matrix``, then the face must have the aligned size).
    Pixels the face's mask does not reach are unchanged. Returns a new RGB uint8 array.
    """
    original = check_image(original)
    face = check_image(restored_aligned)
    if face.shape[0] != face.shape[1]:
        raise ConfigError(f"the aligned face must be square, got {face.shape[1]}x{face.shape[0]}")
    if isinstance(transform, AlignResult):
        matrix = _scaled_matrix(transform.matrix, transform.output_size, face.shape[0])
    else:
        matrix = np.asarray(transform, dtype=np.float64)
        if matrix.shape != (2, 3):
            raise ConfigError(f"transform must be an AlignResult or a 2x3 matrix, got shape {matrix.shape}")
    inverse = cv2.invertAffineTransform(matrix)  # face -> photo
    out, _ = paste_faces(original, [face], [inverse])
    return out
