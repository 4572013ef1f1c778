"""The output canvas of a whole photo: a memory estimate checked before anything is allocated, and the paste-back
done region by region so that only the faces' surroundings are ever held in float32.

:func:`celebref.face.paste.paste_faces` blends on a float32 copy of the whole canvas (12 bytes per output pixel, and
two more float temporaries when rounding): a 4000x3000 photo at ``--upscale 8`` is 768 Mpx, i.e. 8.6 GiB for that
copy alone. :func:`paste_in_regions` gives the same bytes (the same warps at the same integer offsets, the same
float32 blending, the same rounding; pixels outside every face's region are copied) while allocating float32 only
for the bounding box of each group of overlapping face regions. What remains proportional to the output is the
uint8 canvas itself and its PNG encoding. :func:`needed_bytes` (the input photo, ``BYTES_PER_OUTPUT_PIXEL`` per
output pixel, ``BYTES_PER_REGION_PIXEL`` per pixel of the largest group region) is checked against
:func:`memory_limit`: before face detection without the regions (a lower bound), and again before the canvas is
made, with the regions of the restored faces; a photo over the limit is refused with the size it would need
(status ``too_large``). The constants are measured with ``tracemalloc`` (uint8 canvas 3 + encoding 3.4 bytes per
output pixel; 68-70 bytes per region pixel for the float32 blending and its temporaries).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Sequence

import numpy as np

from celebref.face.paste import Pasted, _roi, paste_faces

#: the uint8 canvas (3) and its PNG encoding (a BGR copy 3 and the encoded bytes; 3.4 measured on a photo)
BYTES_PER_OUTPUT_PIXEL = 7
#: float32 blending of one group region in paste_faces, with its temporaries (68-70 measured)
BYTES_PER_REGION_PIXEL = 72
#: environment variable: the memory one photo may use, in GiB (default: half of the available memory)
MEMORY_ENV = "CELEBREF_WHOLE_PHOTO_MAX_GIB"
GIB = 1024 ** 3


def needed_bytes(height: int, width: int, upscale: int, region_pixels: int = 0) -> int:
    """Bytes a photo of ``height x width`` pixels needs at ``upscale`` (input + output canvas + its encoding +
    the float32 blending of the largest group region, ``region_pixels`` output pixels)."""
    return (int(height) * int(width) * 3 + int(height) * int(width) * int(upscale) ** 2 * BYTES_PER_OUTPUT_PIXEL
            + int(region_pixels) * BYTES_PER_REGION_PIXEL)


def largest_region(faces: Sequence[np.ndarray], inverses: Sequence[np.ndarray], canvas_hw: tuple[int, int]) -> int:
    """Output pixels of the largest group region :func:`paste_in_regions` will blend in float32."""
    rois = [_roi(np.asarray(m, np.float64).reshape(2, 3), f.shape[:2], canvas_hw) for f, m in zip(faces, inverses)]
    groups = _merge([r for r in rois if r is not None])
    return max(((x1 - x0) * (y1 - y0) for (x0, y0, x1, y1), _ in groups), default=0)


def available_bytes() -> int | None:
    """``MemAvailable`` of ``/proc/meminfo`` (Linux), else ``None``."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def memory_limit(limit_gib: float | None = None) -> int:
    """The bytes one photo may use: ``limit_gib``, else ``$CELEBREF_WHOLE_PHOTO_MAX_GIB``, else half of the available
    memory (4 GiB when that is unknown)."""
    if limit_gib is None and os.environ.get(MEMORY_ENV, "").strip():
        try:
            limit_gib = float(os.environ[MEMORY_ENV])
        except ValueError:
            from celebref.errors import ConfigError

            raise ConfigError(f"{MEMORY_ENV} must be a number of GiB, got {os.environ[MEMORY_ENV]!r}") from None
    if limit_gib is not None:
        return int(float(limit_gib) * GIB)
    avail = available_bytes()
    return avail // 2 if avail else 4 * GIB


def too_large_reason(height: int, width: int, upscale: int, limit: int, region_pixels: int = 0) -> str:
    """``""`` when the photo fits in ``limit`` bytes, else the one-line reason with the size it would need."""
    need = needed_bytes(height, width, upscale, region_pixels)
    if need <= limit:
        return ""
    return (f"the {width}x{height} photo at --upscale {upscale} is {width * upscale}x{height * upscale} px and needs about "
            f"{need / GIB:.2f} GiB, over the {limit / GIB:.2f} GiB allowed (lower --upscale, or set {MEMORY_ENV})")


def _merge(boxes: list[tuple[int, int, int, int]]) -> list[tuple[tuple[int, int, int, int], list[int]]]:
    """Bounding boxes of the groups of intersecting ``(x0, y0, x1, y1)`` boxes, with the indices in each group."""
    groups = [(b, [i]) for i, b in enumerate(boxes)]
    merged = True
    while merged:
        merged = False
        for a in range(len(groups)):
            for b in range(a + 1, len(groups)):
                (ax0, ay0, ax1, ay1), (bx0, by0, bx1, by1) = groups[a][0], groups[b][0]
                if min(ax1, bx1) > max(ax0, bx0) and min(ay1, by1) > max(ay0, by0):
                    box = (min(ax0, bx0), min(ay0, by0), max(ax1, bx1), max(ay1, by1))
                    groups[a] = (box, groups[a][1] + groups[b][1])
                    del groups[b]
                    merged = True
                    break
            if merged:
                break
    return groups


def paste_in_regions(canvas: np.ndarray, faces: Sequence[np.ndarray], inverses: Sequence[np.ndarray], upscale: int = 1
                     ) -> list[Pasted | None]:
    """:func:`~celebref.face.paste.paste_faces` of ``faces`` onto ``canvas`` (RGB uint8, already upscaled; modified
    in place), group of overlapping face regions by group, in the order given within each group. Same result as
    ``paste_faces(canvas, faces, inverses, upscale)[0]``; returns the :class:`Pasted` of each face (canvas
    coordinates)."""
    h, w = canvas.shape[:2]
    rois = [_roi(np.asarray(m, np.float64).reshape(2, 3), f.shape[:2], (h, w)) for f, m in zip(faces, inverses)]
    placed: list[Pasted | None] = [None] * len(faces)
    present = [i for i, r in enumerate(rois) if r is not None]
    for (x0, y0, x1, y1), members in _merge([rois[i] for i in present]):
        idx = sorted(present[k] for k in members)  # the caller's order: later faces cover earlier ones
        local = []
        for i in idx:
            m = np.asarray(inverses[i], np.float64).reshape(2, 3).copy()
            m[:, 2] -= (x0, y0)
            local.append(m)
        region, got = paste_faces(np.ascontiguousarray(canvas[y0:y1, x0:x1]), [faces[i] for i in idx], local, upscale)
        canvas[y0:y1, x0:x1] = region
        for i, p in zip(idx, got):
            placed[i] = None if p is None else dataclasses.replace(p, x0=p.x0 + x0, y0=p.y0 + y0)
    return placed
