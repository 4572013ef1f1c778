"""The ``blur`` op: one kernel drawn from the step's list of kernels.

Kernel types: ``cv2_gaussian`` (``cv2.GaussianBlur``), ``iso``, ``aniso``, ``generalized_iso``,
``generalized_aniso``, ``plateau_iso``, ``plateau_aniso`` (BasicSR kernels applied with ``cv2.filter2D``) and
``motion`` (a random camera trajectory). A kernel's ``ksize`` may be ``auto``: ``2 * ceil(3 * sigma) + 1``.
The step's ``kernel_dtype`` (``float64`` default, or ``float32``) is the precision of the filter kernel.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np

from celebref.errors import ConfigError

from .. import blur as _blur
from .. import kernels as _kernels
from ..dist import draw
from ..factors import NAN, auto_ksize
from .base import ApplyContext, Op

__all__ = ["KERNEL_FAMILY", "KERNEL_TYPES", "Blur", "blur_kernel"]

KERNEL_TYPES = ("cv2_gaussian", "iso", "aniso", "generalized_iso", "generalized_aniso", "plateau_iso", "plateau_aniso", "motion")
KERNEL_FAMILY = {"cv2_gaussian": "gaussian", "iso": "gaussian", "aniso": "aniso", "generalized_iso": "generalized", "generalized_aniso": "generalized",
                 "plateau_iso": "plateau", "plateau_aniso": "plateau", "motion": "motion"}


def blur_kernel(params: Mapping[str, Any]) -> np.ndarray | None:
    """The blur kernel the parameters describe (None when blur is off or uses ``cv2.GaussianBlur``)."""
    if not params.get("blur_applied"):
        return None
    ktype = params["blur_type"]
    k = int(params["blur_ksize"])
    if ktype == "cv2_gaussian":
        return None
    if ktype == "motion":
        return _kernels.motion_kernel(k, int(params["blur_motion_seed"]))
    iso = ktype.endswith("iso") and not ktype.endswith("aniso")
    sx = float(params["blur_sigma_x"])
    sy = None if iso else float(params["blur_sigma_y"])
    theta = 0.0 if iso else float(params["blur_angle"])
    if ktype in ("iso", "aniso"):
        return _kernels.bivariate_gaussian(k, sx, sy, theta)
    if ktype.startswith("generalized"):
        return _kernels.generalized_gaussian(k, sx, sy, theta, float(params["blur_beta"]))
    return _kernels.plateau(k, sx, sy, theta, float(params["blur_beta"]))


class Blur(Op):
    name = "blur"
    factor = "blur"

    def validate(self, step: Mapping[str, Any], dtype: str) -> None:
        if not step.get("kernels"):
            raise ConfigError("a blur step needs 'kernels'")
        for k in step["kernels"]:
            if k.get("type") not in KERNEL_TYPES:
                raise ConfigError(f"unknown kernel type {k.get('type')!r} (known: {', '.join(KERNEL_TYPES)})")

    def sample(self, step: Mapping[str, Any], rng: np.random.Generator, applied: bool, params: dict[str, Any]) -> None:
        kernels = step["kernels"]
        index = 0 if len(kernels) == 1 else draw({"choice": list(range(len(kernels))), "p": [float(k.get("p", 1.0)) for k in kernels]}, rng)
        spec = kernels[index]
        ktype = spec["type"]
        ksize_spec = spec.get("ksize", 21)
        auto = ksize_spec == "auto"
        if auto and ktype == "motion":
            raise ConfigError("motion kernels need an explicit ksize")
        ksize = 0 if auto else int(draw(ksize_spec, rng))
        values: dict[str, Any] = {"blur_kernel": KERNEL_FAMILY[ktype], "blur_ksize": float(ksize)}
        if ktype == "motion":
            values["blur_motion_seed"] = float(rng.integers(0, 2**53))
        elif ktype in ("cv2_gaussian", "iso", "generalized_iso", "plateau_iso"):
            s = float(draw(spec["sigma"], rng))
            values.update(blur_sigma=s, blur_sigma_x=s, blur_sigma_y=s)
        else:
            sx, sy = float(draw(spec["sigma_x"], rng)), float(draw(spec["sigma_y"], rng))
            theta = float(draw(spec.get("angle", {"uniform": [-math.pi, math.pi]}), rng))
            values.update(blur_sigma=math.sqrt(sx * sy), blur_sigma_x=sx, blur_sigma_y=sy, blur_angle=theta)
        if ktype.startswith(("generalized", "plateau")):
            values["blur_beta"] = float(draw(spec["beta"], rng))
        if auto:
            values["blur_ksize"] = float(auto_ksize(max(values["blur_sigma_x"], values["blur_sigma_y"])))
        if applied:
            values["blur_type"] = ktype
            params.update(values)
            params["blur_applied"] = True

    def override(self, step: Mapping[str, Any], params: dict[str, Any], value: Any) -> None:
        """Force an isotropic Gaussian of sigma ``value`` (0: no blur); None keeps the draw."""
        if value is None:
            return
        sigma = float(value)
        for name in ("blur_sigma", "blur_sigma_x", "blur_sigma_y", "blur_angle", "blur_ksize", "blur_beta", "blur_motion_seed"):
            params[name] = NAN
        params["blur_sigma"] = sigma
        if sigma <= 0:
            params.update(blur_applied=False, blur_kernel="none", blur_type="")
            return
        spec = next((k for k in step["kernels"] if k["type"] in ("cv2_gaussian", "iso")), {"type": "cv2_gaussian"})
        ksize = spec.get("ksize")
        if isinstance(ksize, Mapping) or ksize in (None, "auto"):
            ksize = auto_ksize(sigma)
        params.update(blur_applied=True, blur_kernel="gaussian", blur_sigma_x=sigma, blur_sigma_y=sigma, blur_ksize=float(ksize))
        params["blur_type"] = spec["type"]

    def apply(self, x: np.ndarray, step: Mapping[str, Any], params: Mapping[str, Any], ctx: ApplyContext) -> np.ndarray | None:
        if not params.get("blur_applied"):
            return None
        if params["blur_type"] == "cv2_gaussian":
            return _blur.gaussian_blur_cv2(x, int(params["blur_ksize"]), float(params["blur_sigma"]))
        k = blur_kernel(params)
        if step.get("kernel_dtype", "float64") == "float32":
            k = k.astype(np.float32)
            k /= np.sum(k)
        return _blur.convolve(x, k)
