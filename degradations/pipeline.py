"""A degradation pipeline described as data (a dict; YAML, TOML or JSON on disk).

Schema::

    name: dfdnet                 # free text
    dtype: uint8                 # working representation: uint8 (RGB 0..255) or float32 (RGB [0, 1])
    steps:                       # applied in this order; each op at most once
      - {op: blur, p: 0.9, kernels: [{type: cv2_gaussian, p: 0.65, ksize: <dist>, sigma: <dist>},
                                     {type: motion, p: 0.35, ksize: <dist>}]}
      - {op: downsample, p: 0.95, scale: <dist>, interp: pil_bicubic, size_rule: dfdnet}
      - {op: noise, p: 0.9, sigma: <dist>, kind: gaussian, gray_p: 0, rounding: truncate}
      - {op: jpeg, p: 0.6, quality: <dist>, treat_rgb_as_bgr: true}
      - {op: upsample, interp: pil_bicubic}

Ops (registry :data:`degradations.ops.OPS`; plugins add more): ``blur`` (kernel types ``cv2_gaussian``,
``iso``, ``aniso``, ``generalized_iso``, ``generalized_aniso``, ``plateau_iso``, ``plateau_aniso``,
``motion``), ``downsample``, ``noise`` (``gaussian`` | ``poisson``), ``jpeg``, ``upsample`` (back to the GT
size, or the ``lq_size`` asked for; skipped for native-size output), ``color_enhance`` (Pillow
brightness/contrast/saturation in random order), ``channel_shift`` (float32 pipelines) and ``gray``.
A ``<dist>`` is a constant or a distribution (:mod:`degradations.dist`).

Randomness: :meth:`Pipeline.sample` draws every parameter from ``image_rng(seed, image_id, op)``
(one stream per op): first ``u ~ U[0, 1)`` decides whether the op applies (``u < p``), then its
parameters are always drawn, so a step's draws do not depend on other steps. Noise fields and motion
trajectories come from integer seeds that are themselves drawn and stored (``noise_seed``,
``blur_motion_seed``), so :meth:`Pipeline.apply` is a pure function of (image, parameters). A *redraw*
``k > 0`` (for images that drew no degradation at all) uses the sub-streams ``"<op>/redraw-<k>"``.

Parameter names and their conventions: :mod:`degradations.factors`.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from celebref.errors import ConfigError

from .dist import dist_bounds, draw
from .factors import NAN, OVERRIDE_FACTORS, PARAM_NAMES, auto_ksize, empty_params, is_untouched, public_params
from .ops import OPS, ApplyContext, Op, make_op
from .ops.base import to_uint8
from .ops.blur import blur_kernel
from .rng import image_rng

__all__ = ["NAN", "PARAM_NAMES", "Pipeline", "auto_ksize", "dist_bounds", "draw", "is_untouched", "load_pipeline",
           "public_params", "stream_name"]


def stream_name(op: str, redraw: int = 0) -> str:
    """The random stream of a step: its op name, or ``"<op>/redraw-<k>"`` for redraw ``k``."""
    return op if not redraw else f"{op}/redraw-{int(redraw)}"


@dataclass
class Pipeline:
    """An ordered list of degradation steps with their parameter distributions (see module docstring)."""

    name: str
    dtype: str
    steps: list[dict] = field(default_factory=list)
    description: str = ""

    def __post_init__(self) -> None:
        self.validate()

    # -- (de)serialisation --
    def to_dict(self) -> dict:
        return {"name": self.name, "dtype": self.dtype, "description": self.description, "steps": copy.deepcopy(self.steps)}

    @classmethod
    def from_dict(cls, data: Mapping) -> "Pipeline":
        if not isinstance(data, Mapping) or "steps" not in data:
            raise ConfigError("a pipeline needs 'steps' (a list of {op: ...})")
        return cls(name=str(data.get("name", "custom")), dtype=str(data.get("dtype", "uint8")), steps=[dict(s) for s in data["steps"]],
                   description=str(data.get("description", "")))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    def validate(self) -> None:
        """Check the recipe and bind each step to its op (unknown ops: "did you mean" error)."""
        if self.dtype not in ("uint8", "float32"):
            raise ConfigError(f"pipeline dtype must be uint8 or float32, got {self.dtype!r}")
        seen: dict[str, None] = {}
        ops: list[Op] = []
        for step in self.steps:
            raw = step.get("op")
            if not isinstance(raw, str):
                raise ConfigError(f"pipeline step without an op name: {step!r} (known ops: {', '.join(OPS.names())})")
            name = OPS.resolve(raw)
            if name in seen:
                raise ConfigError(f"op {raw!r} appears twice in pipeline {self.name!r}")
            seen[name] = None
            op = make_op(name)
            op.validate(step, self.dtype)
            ops.append(op)
        self._ops = ops
        self._names = list(seen)

    def step(self, op: str) -> dict | None:
        """The step of op ``op`` (any spelling of its name), or None."""
        name = OPS.resolve(op) if op in OPS else op
        return next((s for n, s in zip(self._names, self.steps) if n == name), None)

    # -- sampling --
    def sample(self, seed: int, image_id: str, overrides: Mapping[str, Any] | None = None, redraw: int = 0) -> dict[str, Any]:
        """All parameters for one image: a pure function of ``(pipeline, seed, image_id, overrides, redraw)``.

        ``overrides`` forces factors (``blur`` sigma, ``scale``, ``noise`` sigma, ``jpeg`` quality or None)
        after drawing, leaving every other draw unchanged (grid sweeps, the ``fixed`` preset). ``redraw`` ``k``
        draws from the sub-streams ``"<op>/redraw-<k>"`` instead (0: the image's own draw)."""
        extra: dict[str, Any] = {}
        for op in self._ops:
            extra.update(op.defaults)
        params = empty_params(extra)
        for op, step in zip(self._ops, self.steps):
            rng = image_rng(seed, image_id, stream_name(step["op"], redraw))
            applied = bool(rng.random() < float(step.get("p", 1.0)))
            op.sample(step, rng, applied, params)
        if overrides:
            self._apply_overrides(params, overrides)
        return params

    def _apply_overrides(self, params: dict, overrides: Mapping[str, Any]) -> None:
        owners = {op.factor: (op, step) for op, step in zip(self._ops, self.steps) if op.factor}
        known = list(dict.fromkeys([*OVERRIDE_FACTORS, *owners]))
        for key, value in overrides.items():
            if key not in known:
                raise ConfigError(f"unknown factor {key!r} to override (known: {', '.join(known)})")
            if key not in owners:
                if value is None and key != "jpeg":  # None keeps a factor as drawn (for jpeg it means "off")
                    continue
                raise ConfigError(f"pipeline {self.name!r} has no {OVERRIDE_FACTORS.get(key, key)} step to override")
            op, step = owners[key]
            op.override(step, params, value)

    # -- applying --
    def kernel(self, params: Mapping[str, Any]) -> np.ndarray | None:
        """The blur kernel the parameters describe (None when blur is off or uses ``cv2.GaussianBlur``)."""
        return blur_kernel(params)

    def apply(self, img: np.ndarray, params: Mapping[str, Any], lq_size: str | int = "gt", trace: list | None = None,
              native_out: list | None = None) -> np.ndarray:
        """Degrade an RGB uint8 ``(H, W, 3)`` image with ``params`` (from :meth:`sample`).

        ``lq_size``: ``"gt"`` upsamples back to the input size, an int ``n`` to ``n x n``, ``"native"``
        skips the ``upsample`` step. Returns RGB uint8. Float32 pipelines end with
        ``clip(rint(x * 255), 0, 255)`` (round half to even, as ``torch.round``). When ``trace`` is a
        list, ``(op, copy of the working array)`` is appended after every applied step. When ``native_out`` is a
        list, the image just before the ``upsample`` step (the LQ at its native low resolution, RGB uint8) is
        appended to it."""
        if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
            raise ValueError(f"expected an RGB uint8 (H, W, 3) array, got {img.dtype} {img.shape}")
        h, w = img.shape[:2]
        ctx = ApplyContext(dtype=self.dtype, gt_size=(w, h), lq_size=lq_size, native_out=native_out)
        x: np.ndarray = img if self.dtype == "uint8" else img.astype(np.float32) / np.float32(255.0)
        for op, step in zip(self._ops, self.steps):
            y = op.apply(x, step, params, ctx)
            if y is None:
                continue
            x = y
            if trace is not None:
                trace.append((step["op"], x.copy()))
        return to_uint8(x)

    def run(self, img: np.ndarray, seed: int, image_id: str, overrides: Mapping[str, Any] | None = None, lq_size: str | int = "gt") -> tuple[np.ndarray, dict]:
        """``sample`` then ``apply``: returns ``(lq uint8 RGB, params)``."""
        params = self.sample(seed, image_id, overrides)
        return self.apply(img, params, lq_size), params


def _toml_module() -> Any:
    """``tomllib`` (Python >= 3.11) or the ``tomli`` backport (a core dependency on Python 3.10)."""
    try:
        import tomllib
    except ModuleNotFoundError:
        try:
            import tomli as tomllib  # type: ignore[no-redef]
        except ModuleNotFoundError:
            raise ConfigError("reading a .toml pipeline file on Python < 3.11 needs the 'tomli' package "
                              "(pip install tomli), or give the pipeline as .yaml or .json") from None
    return tomllib


def load_pipeline(path: str | Path) -> Pipeline:
    """Read a pipeline from a ``.yaml``/``.yml``, ``.toml`` or ``.json`` file (or the ``degrade.json`` of an
    earlier test set, whose ``config.pipeline`` is used)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"cannot read pipeline file {str(path)!r}: {e.strerror or e}") from None
    suffix = path.suffix.lower()
    if suffix in (".yaml", ".yml"):
        import yaml

        parse, errors = yaml.safe_load, (yaml.YAMLError,)
    elif suffix == ".toml":
        tomllib = _toml_module()
        parse, errors = tomllib.loads, (tomllib.TOMLDecodeError,)
    elif suffix == ".json":
        parse, errors = json.loads, (ValueError,)
    else:
        raise ConfigError(f"pipeline file {str(path)!r}: use .yaml, .toml or .json")
    try:
        data = parse(text)
    except errors as e:
        raise ConfigError(f"cannot parse pipeline file {str(path)!r}: {e}") from None
    if isinstance(data, Mapping) and "steps" not in data and isinstance(data.get("config"), Mapping) and "pipeline" in data["config"]:
        data = data["config"]["pipeline"]  # a degrade.json: reuse the recipe of an earlier test set
    return Pipeline.from_dict(data)
