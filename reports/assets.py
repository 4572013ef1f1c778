"""Report assets: thumbnails, landmark detail crops, plots (matplotlib, Agg) and bootstrap intervals.

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


def _box(points: np.ndarray, shape: tuple[int, int], margin: float) -> tuple[int, int, int, int]:
    x1, y1 = points.min(0)
    x2, y2 = points.max(0)
    mx, my = (x2 - x1) * margin + 8, (y2 - y1) * margin + 8
    h, w = shape
    return (int(max(0, x1 - mx)), int(max(0, y1 - my)), int(min(w, x2 + mx)), int(min(h, y2 + my)))


def detail_crops(src: Path, landmarks: np.ndarray, out_dir: Path, width: int = THUMB) -> str | None:
    """Enlarged crops of the eyes (points 36-47) and the mouth (48-67), stacked, as one JPEG."""
    def render(img: np.ndarray) -> np.ndarray | None:
        parts = []
        for idx in (slice(36, 48), slice(48, 68)):
            x1, y1, x2, y2 = _box(landmarks[idx], img.shape[:2], 0.25)
            if x2 - x1 >= 2 and y2 - y1 >= 2:
                parts.append(_fit(img[y1:y2, x1:x2], width))
        return np.concatenate(parts, axis=0) if parts else None

    return _make_asset(out_dir, asset_name("detail", os.path.abspath(src), width, landmarks.round(1).tobytes()), src, render)


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


# --- plots -------------------------------------------------------------------------------------

def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> None:
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight", metadata={"Software": None})
    _plt().close(fig)
    atomic_write_bytes(path, buf.getvalue())


def plot_distributions(data: dict[str, np.ndarray], metric: str, arrow: str, path: Path) -> None:
    """Box plot of one metric per method."""
    plt = _plt()
    labels = list(data)
    fig, ax = plt.subplots(figsize=(1.2 + 0.9 * len(labels), 3.2))
    ax.boxplot([data[k][np.isfinite(data[k])] for k in labels], showmeans=True)
    ax.set_xticks(range(1, len(labels) + 1), labels, rotation=30, ha="right")
    ax.set_title(f"{metric} {arrow}")
    ax.grid(axis="y", alpha=0.3)
    _save(fig, path)


def plot_against_factor(series: dict[str, tuple[np.ndarray, np.ndarray]], factor: str, metric: str, path: Path, bins: int = 6) -> None:
    """Mean metric per bin of a degradation factor, one line per method."""
    plt = _plt()
    allx = np.concatenate([x for x, _ in series.values()])
    allx = allx[np.isfinite(allx)]
    fig, ax = plt.subplots(figsize=(4.2, 3.0))
    if len(allx):
        edges = np.unique(np.quantile(allx, np.linspace(0, 1, bins + 1)))
        if len(edges) < 2:
            edges = np.array([allx.min() - 0.5, allx.max() + 0.5])
        centers = (edges[:-1] + edges[1:]) / 2
        for name, (x, y) in series.items():
            idx = np.clip(np.digitize(x, edges[1:-1]), 0, len(centers) - 1)
            means = [np.nanmean(y[(idx == b) & np.isfinite(x)]) if np.any((idx == b) & np.isfinite(x) & np.isfinite(y)) else np.nan
                     for b in range(len(centers))]
            ax.plot(centers, means, marker="o", label=name)
        ax.legend(fontsize=7)
    ax.set_xlabel(factor)
    ax.set_ylabel(metric)
    ax.grid(alpha=0.3)
    _save(fig, path)


def plot_histograms(data: dict[str, np.ndarray], xlabel: str, path: Path, threshold: float | None = None, bins: int = 30) -> None:
    """Overlaid histograms (e.g. identity similarity per method, or same- vs different-identity distances)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.6, 3.0))
    finite = [v[np.isfinite(v)] for v in data.values()]
    allv = np.concatenate(finite) if finite else np.array([])
    edges = np.linspace(allv.min(), allv.max(), bins + 1) if len(allv) and allv.min() < allv.max() else bins
    for name, v in zip(data, finite):
        if len(v):
            ax.hist(v, bins=edges, alpha=0.5, label=f"{name} (n={len(v)})")
    if threshold is not None:
        ax.axvline(threshold, color="k", linestyle="--", label=f"threshold {threshold:g}")
    ax.set_xlabel(xlabel)
    ax.legend(fontsize=7)
    _save(fig, path)


def plot_bars(counts: dict[str, int], title: str, path: Path) -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(max(3.5, 0.5 * len(counts) + 1), 3.0))
    ax.bar(list(counts), list(counts.values()))
    ax.set_title(title)
    ax.tick_params(axis="x", rotation=30)
    _save(fig, path)
