"""What a degradation op is: one kind of pipeline step, with the draws of its parameters (``sample``), the
factor an override can force (``override``) and the pure function that applies it (``apply``).

A plugin op subclasses :class:`Op` and is declared in the ``celebref.degradation_ops`` entry-point group
(``myblur = "mypkg.ops:MyBlur"``); a pipeline then uses it as ``{op: myblur, ...}``. An op records its
parameters in the per-image ``params`` dict: the standard names (:mod:`degradations.factors`) or its own,
declared in ``defaults`` with their "not applied" values (they become extra manifest columns).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Mapping

import numpy as np

from celebref.errors import ConfigError

__all__ = ["ApplyContext", "Op", "from_uint8", "to_uint8"]


@dataclass
class ApplyContext:
    """What an op may need besides its step and the parameters: the working ``dtype`` (``uint8``: RGB 0..255,
    ``float32``: RGB [0, 1]), the GT size ``(w, h)``, the ``lq_size`` asked for (``"gt"``, ``"native"`` or
    an int) and ``native_out`` (a list that receives the LQ at its native resolution, or None)."""

    dtype: str
    gt_size: tuple[int, int]
    lq_size: str | int = "gt"
    native_out: list | None = None


class Op:
    """Base class of a degradation op. Subclasses set ``name`` and override what they need."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    #: the override factor this op owns (``blur``, ``scale``, ``noise``, ``jpeg``), or None
    factor: ClassVar[str | None] = None
    #: parameters beyond the standard ones, with their values when the op is not applied
    defaults: ClassVar[Mapping[str, Any]] = {}

    def validate(self, step: Mapping[str, Any], dtype: str) -> None:
        """Raise :class:`ConfigError` for a step this op cannot run (``dtype`` is the pipeline's)."""

    def sample(self, step: Mapping[str, Any], rng: np.random.Generator, applied: bool, params: dict[str, Any]) -> None:
        """Draw this step's parameters from ``rng`` (always the same draws, whether ``applied`` or not) and
        record them in ``params`` when ``applied``."""

    def override(self, step: Mapping[str, Any], params: dict[str, Any], value: Any) -> None:
        """Force this op's factor to ``value`` after drawing (grid sweeps, the ``fixed`` preset)."""
        raise ConfigError(f"op {self.name!r} has no factor to override")

    def apply(self, x: np.ndarray, step: Mapping[str, Any], params: Mapping[str, Any], ctx: ApplyContext) -> np.ndarray | None:
        """The degraded working array, or None when the step does nothing for these parameters."""
        return None


def to_uint8(x: np.ndarray) -> np.ndarray:
    """A working array as RGB uint8: float32 [0, 1] becomes ``clip(rint(x * 255), 0, 255)``."""
    if x.dtype == np.uint8:
        return x
    return np.clip(np.rint(x * np.float32(255.0)), 0, 255).astype(np.uint8)


def from_uint8(u8: np.ndarray, like: np.ndarray) -> np.ndarray:
    """A uint8 result back in the working representation of ``like``."""
    return u8 if like.dtype == np.uint8 else u8.astype(np.float32) / np.float32(255.0)
