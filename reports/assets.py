"""Report assets: thumbnails, landmark detail crops and bootstrap intervals (plots: :mod:`reports.plots`).

All images are written as JPEG thumbnails (quality 90) under the report's ``assets/`` folder with names
derived from a hash of their source, so file names from crawls never appear in asset paths.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from celebref.errors import ImageReadError
from celebref.fsutil import atomic_write_bytes
from celebref.imageio import encode_image, read_image

THUMB = 160


def asset_name(*parts: object, ext: str = ".jpg") -> str:
    return hashlib.sha256("\0".join(map(str, parts)).encode()).hexdigest()[:20] + ext


def _fit(img: np.ndarray, width: int) -> np.ndarray:
    h, w = img.shape[:2]
    height = max(1, round(h * width / w))
    interp = cv2.INTER_AREA if width < w else cv2.INTER_CUBIC
    return cv2.resize(img, (width, height), interpolation=interp)


def _make_asset(out_dir: Path, name: str, src: Path, render) -> str | None:
    """Write ``render(image of src)`` (an RGB array, or None for nothing) as ``out_dir/name`` JPEG unless it
    exists; returns ``name``, or None when ``src`` is unreadable or nothing was rendered."""
    if (out_dir / name).is_file():
        return name
    try:
        img = read_image(src)
    except ImageReadError:
        return None
    out = render(img)
    if out is None:
        return None
    atomic_write_bytes(out_dir / name, encode_image(out, ".jpg", 90))
    return name


def thumbnail(src: Path, out_dir: Path, width: int = THUMB) -> str | None:
    """Write a thumbnail of ``src`` into ``out_dir``; returns its file name, or None if unreadable."""
    return _make_asset(out_dir, asset_name("thumb", os.path.abspath(src), width), src, lambda img: _fit(img, width))


def full_image(src: Path, out_dir: Path, max_width: int = 1024) -> str | None:
    """Write ``src`` at its own size (at most ``max_width`` wide) as a JPEG (quality 95) into ``out_dir``, for
    the gallery's enlarged view; returns its file name, or None if unreadable."""
    def render(img: np.ndarray) -> np.ndarray:
        return _fit(img, max_width) if img.shape[1] > max_width else img

    return _make_asset(out_dir, asset_name("full", os.path.abspath(src), max_width), src, render)


def _box(points: np.ndarray, shape: tuple[int, int], margin: float) -> tuple[int, int, int, int]:
    x1, y1 = points.min(0)
    x2, y2 = points.max(0)
    mx, my = (x2 - x1) * margin + 8, (y2 - y1) * margin + 8
    h, w = shape
    return (int(max(0, x1 - mx)), int(max(0, y1 - my)), int(min(w, x2 + mx)), int(min(h, y2 + my)))


#: white band between the eye and the mouth crop, so that the two never read as one (chopped) face
GAP = 6


def detail_crops(src: Path, landmarks: np.ndarray, out_dir: Path, width: int = THUMB) -> str | None:
    """Enlarged crops of the eyes (points 36-47) and the mouth (48-67), stacked with a white band of
    :data:`GAP` pixels between them, as one JPEG."""
    def render(img: np.ndarray) -> np.ndarray | None:
        parts = []
        for idx in (slice(36, 48), slice(48, 68)):
            x1, y1, x2, y2 = _box(landmarks[idx], img.shape[:2], 0.25)
            if x2 - x1 >= 2 and y2 - y1 >= 2:
                if parts:
                    parts.append(np.full((GAP, width, 3), 255, np.uint8))
                parts.append(_fit(img[y1:y2, x1:x2], width))
        return np.concatenate(parts, axis=0) if parts else None

    return _make_asset(out_dir, asset_name("detail", os.path.abspath(src), width, GAP, landmarks.round(1).tobytes()), src, render)


def bootstrap_ci(values: Sequence[float], n_boot: int = 2000, seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean (seeded: the same data gives the same interval)."""
    x = np.asarray([v for v in values if np.isfinite(v)], dtype=np.float64)
    if len(x) == 0:
        return float("nan"), float("nan")
    if len(x) == 1:
        return float(x[0]), float(x[0])
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, len(x), size=(n_boot, len(x)))].mean(axis=1)
    a = (1 - level) / 2
    return float(np.quantile(means, a)), float(np.quantile(means, 1 - a))
