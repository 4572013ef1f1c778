"""Colour ops: ``color_enhance`` (Pillow brightness/contrast/saturation enhancers in a drawn order, i.e.
torchvision's ``ColorJitter`` without hue), ``channel_shift`` (per-channel shift ``U[-shift, shift] / 255``,
float32 pipelines) and ``gray`` (grey LQ)."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from celebref.errors import ConfigError

from .. import color as _color
from ..dist import draw
from ..factors import isnan
from .base import ApplyContext, Op, from_uint8, to_uint8

__all__ = ["ChannelShift", "ColorEnhance", "Gray"]


class ColorEnhance(Op):
    name = "color_enhance"

    def sample(self, step: Mapping[str, Any], rng: np.random.Generator, applied: bool, params: dict[str, Any]) -> None:
        names = ["brightness", "contrast", "saturation", "hue"]
        order = [names[i] for i in rng.permutation(4)]
        factors = {n: float(draw(step[n], rng)) for n in ("brightness", "contrast", "saturation") if n in step}
        if applied:
            params.update(color_applied=True, color_order=",".join(o for o in order if o in factors))
            for n, v in factors.items():
                params[f"color_{n}"] = v

    def apply(self, x: np.ndarray, step: Mapping[str, Any], params: Mapping[str, Any], ctx: ApplyContext) -> np.ndarray | None:
        if not params.get("color_applied"):
            return None
        factors = {n: params[f"color_{n}"] for n in ("brightness", "contrast", "saturation") if not isnan(params.get(f"color_{n}"))}
        order = [o for o in str(params.get("color_order", "")).split(",") if o]
        return from_uint8(_color.enhance(to_uint8(x), factors, order), x)


class ChannelShift(Op):
    name = "channel_shift"

    def validate(self, step: Mapping[str, Any], dtype: str) -> None:
        if dtype != "float32":
            raise ConfigError("channel_shift needs a float32 pipeline")

    def sample(self, step: Mapping[str, Any], rng: np.random.Generator, applied: bool, params: dict[str, Any]) -> None:
        shift = float(step.get("shift", 20)) / 255.0
        vals = rng.uniform(-shift, shift, 3)
        if applied:
            params.update(shift_applied=True, shift_r=float(vals[0]), shift_g=float(vals[1]), shift_b=float(vals[2]))

    def apply(self, x: np.ndarray, step: Mapping[str, Any], params: Mapping[str, Any], ctx: ApplyContext) -> np.ndarray | None:
        if not params.get("shift_applied"):
            return None
        return _color.channel_shift(x, [params["shift_r"], params["shift_g"], params["shift_b"]])


class Gray(Op):
    name = "gray"

    def sample(self, step: Mapping[str, Any], rng: np.random.Generator, applied: bool, params: dict[str, Any]) -> None:
        params["gray_applied"] = applied

    def apply(self, x: np.ndarray, step: Mapping[str, Any], params: Mapping[str, Any], ctx: ApplyContext) -> np.ndarray | None:
        return _color.to_gray(x) if params.get("gray_applied") else None
