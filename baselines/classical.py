"""Classical baselines that need no weights, so every results table has a floor.

* ``lq``: the degraded input exactly as given (a copy of ``RestoreItem.image``).
* ``bicubic``: the test set's native-resolution LQ (``RestoreItem.native``) upsampled to the input size with
  OpenCV's ``cv2.resize(..., interpolation=cv2.INTER_CUBIC)`` (Keys cubic convolution, a = -0.75,
  half-pixel centres, no antialiasing; arrays are RGB uint8, which OpenCV resizes per channel).
  When the test set has no native-resolution LQ for an image (``native is None``: a plain folder of LQ images,
  a whole-photo face, a degrade draw that skipped the downscale) the LQ itself is the bicubic input: it is
  already at the output size, so the output is the LQ unchanged. That row gets status ``fallback_input`` with
  the reason :data:`NO_NATIVE_REASON`, so it is recorded and never silently passes for an upsampling.
"""

from __future__ import annotations

from typing import ClassVar

import cv2
import numpy as np

from baselines.base import STATUS_ERROR, STATUS_FALLBACK_INPUT, RestorationMethod, RestoreItem, RestoreResult

NO_NATIVE_REASON = "no native-resolution LQ for this image: the LQ itself (already at the output size) is the output"


class LQMethod(RestorationMethod):
    name: ClassVar[str] = "lq"
    description: ClassVar[str] = "the degraded input as given (no restoration)"
    input_size: ClassVar[int | None] = None

    def _restore(self, items: list[RestoreItem]) -> list[RestoreResult]:
        return [RestoreResult(it.id, np.array(it.image, copy=True)) for it in items]


def bicubic_upsample(native: np.ndarray, height: int, width: int) -> np.ndarray:
    """``native`` (h, w, 3) uint8 -> (height, width, 3) uint8 with OpenCV INTER_CUBIC."""
    return cv2.resize(np.ascontiguousarray(native), (int(width), int(height)), interpolation=cv2.INTER_CUBIC)


class BicubicMethod(RestorationMethod):
    name: ClassVar[str] = "bicubic"
    description: ClassVar[str] = ("native-resolution LQ upsampled with OpenCV bicubic (INTER_CUBIC); "
                                  "the LQ itself where there is no native LQ (recorded)")
    input_size: ClassVar[int | None] = None

    def _restore(self, items: list[RestoreItem]) -> list[RestoreResult]:
        results = []
        for it in items:
            if it.native is None:
                results.append(RestoreResult(it.id, np.array(it.image, copy=True), STATUS_FALLBACK_INPUT, NO_NATIVE_REASON))
                continue
            nat = np.asarray(it.native)
            if nat.dtype != np.uint8 or nat.ndim != 3 or nat.shape[2] != 3 or min(nat.shape[:2]) < 1:
                results.append(RestoreResult(it.id, None, STATUS_ERROR, f"native LQ must be RGB uint8 (h, w, 3), got {nat.dtype} {nat.shape}"))
                continue
            h, w = np.asarray(it.image).shape[:2]
            results.append(RestoreResult(it.id, bicubic_upsample(nat, h, w)))
        return results
