"""68-point landmark files in DMDNet's format.

One file per image (DMDNet names it ``<image name>.txt``, e.g. ``0.png.txt``): exactly 68 lines ``"x y"``,
space-separated, 3 decimals, LF line endings, pixel-index coordinates (x right, y down, origin the centre of
the top-left pixel), points in the iBUG 300-W order. DMDNet loads them with ``numpy.loadtxt`` -> ``(68, 2)``.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from ..errors import CelebrefError
from ..fsutil import atomic_write_bytes


class LandmarkFileError(CelebrefError):
    """A landmark file is missing, unreadable or not 68 lines of two numbers."""

    def __init__(self, path: object, reason: str):
        self.path, self.reason = str(path), reason
        super().__init__(f"bad landmark file {self.path!r}: {reason}")


def _fmt(v: float) -> str:
    # "%.3f" as numpy.savetxt(fmt="%.3f") writes it (correctly rounded), except that a value rounding to
    # zero from below is written "0.000", not "-0.000"
    s = f"{v:.3f}"
    return "0.000" if s == "-0.000" else s


def format_landmarks(points: np.ndarray) -> str:
    """The file text for ``(68, 2)`` points (x, y): 68 lines ``"%.3f %.3f"`` each ending in LF, byte-identical
    to ``numpy.savetxt(fmt="%.3f")`` except that ``-0.000`` is written ``0.000``."""
    pts = np.asarray(points, dtype=np.float64)
    if pts.shape != (68, 2):
        raise ValueError(f"landmarks must have shape (68, 2), got {pts.shape}")
    if not np.isfinite(pts).all():
        raise ValueError("landmarks contain NaN or infinity")
    return "".join(f"{_fmt(x)} {_fmt(y)}\n" for x, y in pts.tolist())


def parse_landmarks(text: str, name: str = "<text>") -> np.ndarray:
    """Parse landmark-file text to ``(68, 2) float64``; blank lines are ignored, anything else malformed raises
    :class:`LandmarkFileError`."""
    rows = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2:
            raise LandmarkFileError(name, f"line {lineno} has {len(parts)} fields, expected 2 ('x y')")
        try:
            x, y = float(parts[0]), float(parts[1])
        except ValueError:
            raise LandmarkFileError(name, f"line {lineno} is not two numbers: {line.strip()!r}") from None
        if not (math.isfinite(x) and math.isfinite(y)):
            raise LandmarkFileError(name, f"line {lineno} is not finite: {line.strip()!r}")
        rows.append((x, y))
    if len(rows) != 68:
        raise LandmarkFileError(name, f"{len(rows)} points, expected 68")
    return np.array(rows, dtype=np.float64)


def read_landmarks(path: str | os.PathLike) -> np.ndarray:
    """Read a landmark file -> ``(68, 2) float64`` (the values ``numpy.loadtxt`` gives; a UTF-8 byte-order
    mark is ignored); anything else raises :class:`LandmarkFileError` naming the file and line."""
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except FileNotFoundError:
        raise LandmarkFileError(path, "file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise LandmarkFileError(path, f"cannot read ({exc})") from None
    return parse_landmarks(text, str(path))


def write_landmarks(path: str | os.PathLike, points: np.ndarray) -> None:
    """Write ``(68, 2)`` points in DMDNet's format, atomically."""
    atomic_write_bytes(path, format_landmarks(points).encode("ascii"))  # bytes: LF on every platform


def landmark_path_for(image_path: str | os.PathLike, landmark_dir: str | os.PathLike | None = None) -> Path:
    """DMDNet's naming: ``<dir>/<image file name>.txt`` (``dir`` defaults to the image's folder)."""
    image_path = Path(image_path)
    folder = Path(landmark_dir) if landmark_dir is not None else image_path.parent
    return folder / (image_path.name + ".txt")
