"""Quality scores of a face: size in source pixels, blur, pose.

* ``face_size``: side length, in **source** pixels, of the FFHQ crop square (the region that becomes the 512x512
  aligned face); ``face_size / 512`` is the scale at which the aligned face was sampled, so a face under 512 px is
  upsampled in the output.
* ``blur_var``: variance of the 3x3 Laplacian of the grayscale (BT.601) aligned 512x512 face over its central
  256x256 region (computed after alignment, so it is comparable across source sizes; an upsampled small face
  scores low). Measured on celebref-mini: real HQ faces 50..1035 (median 275), the same blurred with sigma 2: 3..8.
* ``yaw``: a head-yaw *index* in degrees from 68-point landmarks, ``asin((a - b) / (a + b))`` with ``a`` / ``b``
  the horizontal distances from the nose tip (30) to the jaw ends 0 / 16; 0 frontal, positive when the face turns
  towards the image's right. ``sin(index)`` is the nose tip's offset from the jaw's midpoint as a fraction of the
  half jaw width (30 -> 50 %, 60 -> 87 %, 80 -> 98.5 %, 90 -> at the jaw's edge). Under a rigid head turn it is
  ``asin(k tan(yaw))`` with ``k`` the nose-tip depth over the half jaw width, so it overstates the true yaw and
  saturates before profile. Measured (``benchmarks/calibrate_pose.py``): celebref-mini's released faces have
  median 7, p95 32, max 53 with dlib landmarks; the default gate (80) only removes near-profiles.
* ``quality``: one sortable number used to keep the best copy among duplicates:
  ``log2(min(face_size, 2048)) + 0.5 * log2(1 + blur_var)``.
"""

from __future__ import annotations

import math

import cv2
import numpy as np


def blur_variance(aligned: np.ndarray) -> float:
    g = cv2.cvtColor(np.ascontiguousarray(aligned), cv2.COLOR_RGB2GRAY)
    h, w = g.shape
    c = g[h // 4 : h - h // 4, w // 4 : w - w // 4]
    return float(cv2.Laplacian(c, cv2.CV_64F, ksize=1).var())


def yaw_degrees(lm68: np.ndarray) -> float:
    lm = np.asarray(lm68, dtype=np.float64)
    a = abs(lm[30, 0] - lm[0, 0])
    b = abs(lm[16, 0] - lm[30, 0])
    if a + b <= 0:
        return float("nan")
    return float(math.degrees(math.asin(max(-1.0, min(1.0, (a - b) / (a + b))))))


def quad_size(quad: np.ndarray) -> float:
    """Mean side length of the crop quadrilateral ``(4, 2)`` in source pixels."""
    q = np.asarray(quad, dtype=np.float64).reshape(4, 2)
    return float(np.mean([np.linalg.norm(q[(k + 1) % 4] - q[k]) for k in range(4)]))


def outside_fraction(quad: np.ndarray, width: int, height: int, samples: int = 64) -> float:
    """Fraction of the crop square that lies outside the source image (0 = fully inside); a face touching the
    photo's edge gives > 0, and the aligned output then has padded (reflected) borders."""
    q = np.asarray(quad, dtype=np.float64).reshape(4, 2)
    t = (np.arange(samples) + 0.5) / samples
    u, v = np.meshgrid(t, t)
    # bilinear map of the unit square onto the quad (corners in order q0, q1, q2, q3)
    p = ((1 - u) * (1 - v))[..., None] * q[0] + (u * (1 - v))[..., None] * q[3] + (u * v)[..., None] * q[2] + ((1 - u) * v)[..., None] * q[1]
    inside = (p[..., 0] >= -0.5) & (p[..., 0] <= width - 0.5) & (p[..., 1] >= -0.5) & (p[..., 1] <= height - 0.5)
    return float(1.0 - inside.mean())


def quality_score(face_size: float, blur_var: float) -> float:
    return float(math.log2(max(min(face_size, 2048.0), 1.0)) + 0.5 * math.log2(1.0 + max(blur_var, 0.0)))
