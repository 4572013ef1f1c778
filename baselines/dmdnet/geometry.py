"""DMDNet component geometry: part/scale constants, host-side boxes, ROI crops.

Component locations ``loc``: ``(B, 4, 4)`` rows ``LE, RE, NO, MO``, columns ``x1, y1, x2, y2`` in
pixels of the 512 image (see :mod:`baselines.dmdnet.components`). Boxes live on the host as int32
numpy arrays (official ``locs.int()``: truncation toward zero); they are turned into Python slice
bounds, so no host tensor is created and nothing waits for the device.
"""

from __future__ import annotations

from typing import Any, Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F

PARTS = ("LE", "RE", "MO")
PART_ROWS = {"LE": 0, "RE": 1, "NO": 2, "MO": 3}
SCALES = (256, 128, 64)
SCALE_DIV = {256: 2, 128: 4, 64: 8}  # feature-map stride for each scale
PART_SIZES_512 = {"LE": 80, "RE": 80, "MO": 110}  # official part_sizes (nose 50 unused)
NUM_SLOTS = 128

SpecificDictionary = tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], dict[str, torch.Tensor]]
SpArg = Union[None, dict[str, torch.Tensor], Sequence[dict[str, torch.Tensor]]]


def part_size(part: str, scale: int) -> int:
    """Side of the square ROI crop for ``part`` on the ``scale`` feature map (eyes 40/20/10, mouth 55/27/13)."""
    return PART_SIZES_512[part] // SCALE_DIV[scale]


def boxes_host(loc: Any) -> np.ndarray:
    """``(B, 4, 4)`` int32 boxes on the host, as the official ``locs.int().cpu().numpy()``."""
    if isinstance(loc, torch.Tensor):
        return loc.detach().int().cpu().numpy()
    # numpy's float -> int32 cast truncates toward zero like torch's ``.int()`` (no host tensor needed)
    return np.asarray(loc).astype(np.int32)


def box_slices(box: np.ndarray, div: int) -> tuple[int, int, int, int]:
    x1, y1, x2, y2 = (int(v) for v in (box // div))  # floor division, as numpy on int32
    return x1, y1, x2, y2


def check_boxes(loc: Any, size: int = 512) -> list[str]:
    """Reasons why the official forward would fail for each image (``''`` when it runs).

    The official code crops ``feat[y1//s:y2//s, x1//s:x2//s]`` with Python slicing and pastes a
    part resized to ``(y2//s - y1//s, x2//s - x1//s)`` into the same slice; an empty crop, or a
    slice whose length differs from that size (negative or out-of-range coordinates), raises
    there. Such images are reported instead of crashing the batch.
    """
    boxes = boxes_host(loc)
    out = []
    for b in boxes:
        reason = ""
        for part in PARTS:
            for scale in SCALES:
                div = SCALE_DIV[scale]
                n = size // div
                x1, y1, x2, y2 = box_slices(b[PART_ROWS[part]], div)
                hy, hx = len(range(n)[y1:y2]), len(range(n)[x1:x2])
                if hy <= 0 or hx <= 0 or hy != y2 - y1 or hx != x2 - x1:
                    reason = f"{part} box {b[PART_ROWS[part]].tolist()} is empty or outside the {size}x{size} image at scale 1/{div}"
                    break
            if reason:
                break
        out.append(reason)
    return out


def roi_crop(feat: torch.Tensor, boxes: np.ndarray, div: int, size: int) -> torch.Tensor:
    """Per image: ``feat[i, :, y1//div:y2//div, x1//div:x2//div]`` resized bilinearly to ``size`` x ``size``."""
    crops = []
    for i in range(feat.shape[0]):
        x1, y1, x2, y2 = box_slices(boxes[i], div)
        crops.append(F.interpolate(feat[i : i + 1, :, y1:y2, x1:x2], (size, size), mode="bilinear", align_corners=False))
    return torch.cat(crops, 0)
