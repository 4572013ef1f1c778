"""The ``jpeg`` op: a JPEG round trip through ``cv2.imencode`` at a drawn quality (``treat_rgb_as_bgr``: encode
the RGB array as OpenCV's BGR, as DFDNet's loader does)."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from .. import jpeg as _jpeg
from ..dist import draw
from ..factors import NAN
from .base import ApplyContext, Op

__all__ = ["Jpeg"]


class Jpeg(Op):
    name = "jpeg"
    factor = "jpeg"

    def sample(self, step: Mapping[str, Any], rng: np.random.Generator, applied: bool, params: dict[str, Any]) -> None:
        q = int(draw(step["quality"], rng))
        if applied:
            params.update(jpeg_applied=True, jpeg_quality=float(q))

    def override(self, step: Mapping[str, Any], params: dict[str, Any], value: Any) -> None:
        """Force quality ``value``; None (or "none"/"off") switches JPEG off."""
        if value is None or (isinstance(value, str) and value.lower() in ("none", "off")):
            params.update(jpeg_applied=False, jpeg_quality=NAN)
        else:
            params.update(jpeg_applied=True, jpeg_quality=float(int(value)))

    def apply(self, x: np.ndarray, step: Mapping[str, Any], params: Mapping[str, Any], ctx: ApplyContext) -> np.ndarray | None:
        if not params.get("jpeg_applied"):
            return None
        return _jpeg.jpeg_compress(x, int(params["jpeg_quality"]), treat_rgb_as_bgr=bool(step.get("treat_rgb_as_bgr", False)))
