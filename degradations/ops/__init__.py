"""The degradation ops a pipeline step can name, in one registry (``celebref.degradation_ops`` entry points
add more; see :mod:`degradations.ops.base` for the interface).

========================  =========================================================================
``blur``                  one kernel drawn from a list (Gaussian via ``cv2.GaussianBlur``, BasicSR kernels, motion)
``downsample``            resize down by a drawn factor (cv2 / Pillow interpolations, size rules)
``upsample``              resize back to the GT size or the ``lq_size`` asked for (skipped for native output)
``noise``                 Gaussian or Poisson noise from a stored integer seed
``jpeg``                  JPEG round trip through ``cv2.imencode``
``color_enhance``         Pillow brightness / contrast / saturation in random order
``channel_shift``         per-channel shift (float32 pipelines)
``gray``                  grey LQ
========================  =========================================================================
"""

from __future__ import annotations

from celebref.errors import ConfigError
from celebref.registry import Registry

from .base import ApplyContext, Op

__all__ = ["OPS", "ApplyContext", "Op", "make_op"]

OPS = Registry("degradation op", group="celebref.degradation_ops")

OPS.register("color_enhance", "degradations.ops.color:ColorEnhance",
             description="Pillow brightness/contrast/saturation enhancers in random order (torchvision ColorJitter)")
OPS.register("blur", "degradations.ops.blur:Blur",
             description="one blur kernel drawn from a list: cv2 Gaussian, BasicSR iso/aniso/generalized/plateau, motion")
OPS.register("downsample", "degradations.ops.resize:Downsample", description="resize down by a drawn scale factor")
OPS.register("noise", "degradations.ops.noise:Noise", description="Gaussian or Poisson noise (field from a stored seed)")
OPS.register("jpeg", "degradations.ops.jpeg:Jpeg", description="JPEG round trip at a drawn quality (cv2.imencode)")
OPS.register("upsample", "degradations.ops.resize:Upsample", description="resize back to the GT size (or lq_size)")
OPS.register("channel_shift", "degradations.ops.color:ChannelShift", description="per-channel shift (float32 pipelines)")
OPS.register("gray", "degradations.ops.color:Gray", description="grey LQ (luma repeated on three channels)")


def make_op(name: str) -> Op:
    """The op instance for a step's ``op`` name (unknown names: "did you mean" error)."""
    target = OPS.get(name)
    op = target() if isinstance(target, type) else target
    if not isinstance(op, Op):
        raise ConfigError(f"degradation op {name!r} is a {type(op).__name__}, not a degradations.ops.Op")
    return op
