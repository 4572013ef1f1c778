"""The ``downsample`` and ``upsample`` ops (interpolations and size rules: :mod:`degradations.resize`)."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from celebref.errors import ConfigError

from .. import resize as _resize
from ..dist import draw
from .base import ApplyContext, Op, to_uint8

__all__ = ["Downsample", "Upsample"]


def _check_interp(step: Mapping[str, Any]) -> None:
    if step.get("interp", "cv2_bicubic") not in _resize.INTERPOLATIONS:
        raise ConfigError(f"unknown interpolation {step.get('interp')!r} (known: {', '.join(_resize.INTERPOLATIONS)})")


class Downsample(Op):
    """Resize to ``downscaled_size(w, h, scale, size_rule)`` with ``interp`` (default ``cv2_bicubic``)."""

    name = "downsample"
    factor = "scale"

    def validate(self, step: Mapping[str, Any], dtype: str) -> None:
        _check_interp(step)

    def sample(self, step: Mapping[str, Any], rng: np.random.Generator, applied: bool, params: dict[str, Any]) -> None:
        scale = float(draw(step["scale"], rng))
        if applied:
            params.update(scale_applied=True, scale=scale)

    def override(self, step: Mapping[str, Any], params: dict[str, Any], value: Any) -> None:
        """Force the factor (1: no downsampling); None keeps the draw."""
        if value is None:
            return
        scale = float(value)
        params.update(scale=scale, scale_applied=scale != 1.0)

    def apply(self, x: np.ndarray, step: Mapping[str, Any], params: Mapping[str, Any], ctx: ApplyContext) -> np.ndarray | None:
        if not params.get("scale_applied"):
            return None
        size = _resize.downscaled_size(x.shape[1], x.shape[0], float(params["scale"]), step.get("size_rule", "floordiv"))
        return _resize.resize(x, size, step.get("interp", "cv2_bicubic"))


class Upsample(Op):
    """Resize back to the GT size (``lq_size="gt"``) or to ``n x n``; skipped for ``lq_size="native"``. The
    image before it is the LQ at its native resolution (``ctx.native_out``)."""

    name = "upsample"

    def validate(self, step: Mapping[str, Any], dtype: str) -> None:
        _check_interp(step)

    def apply(self, x: np.ndarray, step: Mapping[str, Any], params: Mapping[str, Any], ctx: ApplyContext) -> np.ndarray | None:
        if ctx.lq_size == "native":
            return None
        if ctx.native_out is not None:
            ctx.native_out.append(to_uint8(x))
        target = ctx.gt_size if ctx.lq_size == "gt" else (int(ctx.lq_size), int(ctx.lq_size))
        return _resize.resize(x, target, step.get("interp", "cv2_bicubic"))
