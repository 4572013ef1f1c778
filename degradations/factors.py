"""The parameters a pipeline records per image (the manifest's standard factor names) and their conventions.

``blur_applied, blur_kernel (gaussian|aniso|generalized|plateau|motion|none), blur_type (the exact kernel
type), blur_sigma, blur_sigma_x, blur_sigma_y, blur_angle, blur_ksize, blur_beta, blur_motion_seed,
scale_applied, scale, noise_applied, noise_kind, noise_sigma, noise_gray, noise_seed, jpeg_applied,
jpeg_quality, color_applied, color_brightness, color_contrast, color_saturation, color_order,
shift_applied, shift_r, shift_g, shift_b, gray_applied``.

A value is NaN when its step was not applied, except a factor forced to a neutral value by an override
(``blur=0``, ``noise=0``, ``scale=1``), which is recorded with ``*_applied = False``. For anisotropic kernels
``blur_sigma`` is the geometric mean ``sqrt(sigma_x * sigma_y)`` (an equivalent isotropic width, for plotting).
An image is *untouched* when no ``*_applied`` flag is set: no degradation was drawn for it (its LQ equals
its GT when the LQ has the GT's size).
"""

from __future__ import annotations

import math
from typing import Any, Mapping

__all__ = ["NAN", "OVERRIDE_FACTORS", "PARAM_NAMES", "auto_ksize", "empty_params", "is_untouched", "isnan",
           "public_params"]

NAN = float("nan")

PARAM_NAMES = (
    "blur_applied", "blur_kernel", "blur_type", "blur_sigma", "blur_sigma_x", "blur_sigma_y", "blur_angle", "blur_ksize", "blur_beta", "blur_motion_seed",
    "scale_applied", "scale", "noise_applied", "noise_kind", "noise_sigma", "noise_gray", "noise_seed", "jpeg_applied", "jpeg_quality",
    "color_applied", "color_brightness", "color_contrast", "color_saturation", "color_order", "shift_applied", "shift_r", "shift_g", "shift_b",
    "gray_applied",
)

#: factors a grid sweep or the ``fixed`` preset can force, and the op that owns each
OVERRIDE_FACTORS = {"blur": "blur", "scale": "downsample", "noise": "noise", "jpeg": "jpeg"}

_NEUTRAL: dict[str, Any] = {"blur_applied": False, "scale_applied": False, "noise_applied": False, "jpeg_applied": False,
                            "color_applied": False, "shift_applied": False, "gray_applied": False, "blur_kernel": "none",
                            "blur_type": "", "noise_kind": "", "color_order": "", "noise_gray": False}


def empty_params(extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Every standard parameter at its "step not applied" value (NaN, ``False`` or ""), plus ``extra`` (the
    parameters of plugin ops, with their own neutral values)."""
    p: dict[str, Any] = {name: _NEUTRAL.get(name, NAN) for name in PARAM_NAMES}
    if extra:
        p.update(extra)
    return p


def public_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """The standard parameters in :data:`PARAM_NAMES` order."""
    return {k: params[k] for k in PARAM_NAMES}


def isnan(v: Any) -> bool:
    """``None`` or a float NaN."""
    return v is None or (isinstance(v, float) and math.isnan(v))


def is_untouched(params: Mapping[str, Any]) -> bool:
    """True when no step was applied (every ``*_applied`` flag is false)."""
    return not any(bool(v) and not isnan(v) for k, v in params.items() if k.endswith("_applied"))


def auto_ksize(sigma: float) -> int:
    """Kernel size ``2 * ceil(3 * sigma) + 1`` (holds +-3 sigma), used for ``ksize: auto`` and for a forced
    blur sigma when the recipe's kernel size is random."""
    return 2 * int(math.ceil(3.0 * float(sigma))) + 1
