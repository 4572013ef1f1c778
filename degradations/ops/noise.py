"""The ``noise`` op: Gaussian (``kind: gaussian``, per channel or grey with ``gray_p``) or Poisson noise. The
noise field comes from an integer seed that is itself drawn and stored (``noise_seed``), so applying is a pure
function of the parameters; ``rounding`` (``none`` or ``truncate``) is how a uint8 pipeline returns to integers."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from celebref.errors import ConfigError

from .. import noise as _noise
from ..dist import draw
from ..rng import generator_from_int
from .base import ApplyContext, Op

__all__ = ["Noise"]


class Noise(Op):
    name = "noise"
    factor = "noise"

    def validate(self, step: Mapping[str, Any], dtype: str) -> None:
        if step.get("kind", "gaussian") not in ("gaussian", "poisson"):
            raise ConfigError(f"unknown noise kind {step.get('kind')!r}")

    def sample(self, step: Mapping[str, Any], rng: np.random.Generator, applied: bool, params: dict[str, Any]) -> None:
        sigma = float(draw(step["sigma"], rng))
        gray = bool(rng.random() < float(step.get("gray_p", 0.0)))
        nseed = float(rng.integers(0, 2**53))
        params["noise_seed"] = nseed  # kept even when off, so an override can switch noise on
        if applied:
            params.update(noise_applied=True, noise_kind=step.get("kind", "gaussian"), noise_sigma=sigma, noise_gray=gray)

    def override(self, step: Mapping[str, Any], params: dict[str, Any], value: Any) -> None:
        """Force sigma ``value`` (0: no noise); None keeps the draw."""
        if value is None:
            return
        sigma = float(value)
        params.update(noise_sigma=sigma, noise_applied=sigma > 0, noise_kind=step.get("kind", "gaussian") if sigma > 0 else "")

    def apply(self, x: np.ndarray, step: Mapping[str, Any], params: Mapping[str, Any], ctx: ApplyContext) -> np.ndarray | None:
        if not params.get("noise_applied"):
            return None
        rng = generator_from_int(int(params["noise_seed"]))
        if params.get("noise_kind", "gaussian") == "poisson":
            return _noise.add_poisson_noise(x, float(params["noise_sigma"]), rng, gray=bool(params.get("noise_gray")))
        return _noise.add_gaussian_noise(x, float(params["noise_sigma"]), rng, gray=bool(params.get("noise_gray")),
                                         rounding=step.get("rounding", "none"))
