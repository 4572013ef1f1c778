"""Facial-component boxes for DFDNet from 68 landmarks (official ``get_part_location``).

Conventions: landmarks are ``(68, 2)`` float ``(x, y)`` pixels on the aligned 512x512 face, iBUG
300-W order, 0-based. A box is ``[x1, y1, x2, y2]`` in 512 pixels; rows are ordered left_eye
(image left: 17-21 + 36-41), right_eye (22-26 + 42-47), nose (29-35), mouth (48-67).

For each set: ``mean`` = mean (x, y); ``L = max(max over x,y of (max - min) / 2, 16)`` (one scalar:
boxes are square); ``box = (mean - L + 1, mean + L)`` cast with ``astype(int)`` (truncation toward
zero). At VGG resolution ``f`` the box is ``box // (512 // f)`` (floor division), and the crop is the
Python slice ``feat[..., y1:y2, x1:x2]`` (exclusive ends, negative indices wrap as in Python).
"""

from __future__ import annotations

import numpy as np

PART_LANDMARKS: dict[str, list[int]] = {
    "left_eye": list(range(17, 22)) + list(range(36, 42)),
    "right_eye": list(range(22, 27)) + list(range(42, 48)),
    "nose": list(range(29, 36)),
    "mouth": list(range(48, 68)),
}
MIN_HALF_SIZE = 16.0


class PartLocationError(ValueError):
    """The landmarks cannot give part boxes (wrong shape, non-finite values)."""


def part_locations(landmarks: np.ndarray) -> np.ndarray:
    """``(4, 4)`` int64 boxes ``[x1, y1, x2, y2]`` (rows LE, RE, NO, MO) from 68 landmarks."""
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.shape != (68, 2):
        raise PartLocationError(f"expected (68, 2) landmarks, got shape {lm.shape}")
    if not np.all(np.isfinite(lm)):
        raise PartLocationError("landmarks contain NaN or infinite values")
    rows = []
    for idx in PART_LANDMARKS.values():
        pts = lm[idx]
        mean = np.mean(pts, 0)
        half = np.max((np.max(np.max(pts, 0) - np.min(pts, 0)) / 2, MIN_HALF_SIZE))
        rows.append(np.hstack((mean - half + 1, mean + half)).astype(int))
    return np.stack(rows).astype(np.int64)


def boxes_at_scale(locations: np.ndarray, feature_size: int, image_size: int = 512) -> np.ndarray:
    """Boxes at a VGG resolution: floor division by ``image_size // feature_size`` (int64)."""
    return np.floor_divide(np.asarray(locations, dtype=np.int64), image_size // feature_size)


def boxes_per_scale(locations: np.ndarray, feature_sizes=(256, 128, 64, 32)) -> np.ndarray:
    """``(n_scales, 4, 4)`` boxes, scales in the order given."""
    return np.stack([boxes_at_scale(locations, f) for f in feature_sizes])


def crop_extent(box, feature_size: int) -> tuple[int, int]:
    """(height, width) of the Python slice ``[y1:y2, x1:x2]`` on a ``feature_size`` square map."""
    x1, y1, x2, y2 = (int(v) for v in box)
    h = len(range(*slice(y1, y2).indices(feature_size)))
    w = len(range(*slice(x1, x2).indices(feature_size)))
    return h, w


def invalid_crops(locations: np.ndarray, feature_sizes=(256, 128, 64, 32)) -> list[str]:
    """Names of (part, scale) crops that would be empty; the official forward fails on those."""
    names = list(PART_LANDMARKS)
    bad = []
    for f in feature_sizes:
        for j, box in enumerate(boxes_at_scale(locations, f)):
            h, w = crop_extent(box, f)
            if h == 0 or w == 0:
                bad.append(f"{names[j]}@{f}")
    return bad
