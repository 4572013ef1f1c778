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

Ops: ``blur`` (kernel types ``cv2_gaussian``, ``iso``, ``aniso``, ``generalized_iso``,
``generalized_aniso``, ``plateau_iso``, ``plateau_aniso``, ``motion``), ``downsample``, ``noise``
(``gaussian`` | ``poisson``), ``jpeg``, ``upsample`` (back to the GT size, or the ``lq_size`` asked for;
skipped for native-size output), ``color_enhance`` (Pillow brightness/contrast/saturation in random
order), ``channel_shift`` (float32 pipelines) and ``gray``.

A blur kernel's ``ksize`` may be ``auto``: ``2 * ceil(3 * sigma) + 1``.
A ``<dist>`` is a constant (number) or a dict: ``{uniform: [a, b]}``, ``{randint: [a, b]}`` (both ends
included), ``{choice: [v1, v2, ...], p: [...]}`` (values may themselves be dists), with optional
post-transforms applied in this order: ``mul``, ``div``, ``add``, ``int: true`` (truncate toward zero).

Randomness: :meth:`Pipeline.sample` draws every parameter from ``image_rng(seed, image_id, op)``
(one stream per op): first ``u ~ U[0, 1)`` decides whether the op applies (``u < p``), then its
parameters are always drawn, so a step's draws do not depend on other steps. Noise fields and motion
trajectories come from integer seeds that are themselves drawn and stored (``noise_seed``,
``blur_motion_seed``), so :meth:`Pipeline.apply` is a pure function of (image, parameters).

Parameter names (the manifest's standard factor names): ``blur_applied, blur_kernel (gaussian|aniso|
generalized|plateau|motion|none), blur_type (the exact kernel type above), blur_sigma, blur_sigma_x, blur_sigma_y, blur_angle, blur_ksize,
blur_beta, blur_motion_seed, scale_applied, scale, noise_applied, noise_sigma, noise_gray, noise_seed,
jpeg_applied, jpeg_quality, color_applied, color_brightness, color_contrast, color_saturation,
color_order, shift_applied, shift_r, shift_g, shift_b, gray_applied``. A value is NaN when its step
was not applied, except a factor forced to a neutral value by an override (``blur=0``, ``noise=0``,
``scale=1``), which is recorded with ``*_applied = False``. For anisotropic kernels ``blur_sigma`` is
the geometric mean ``sqrt(sigma_x * sigma_y)`` (an equivalent isotropic width, for plotting).
"""

from __future__ import annotations

import copy
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from celebref.errors import ConfigError

from . import blur as _blur
from . import color as _color
from . import jpeg as _jpeg
from . import kernels as _kernels
from . import noise as _noise
from . import resize as _resize
from .rng import generator_from_int, image_rng

OPS = ("color_enhance", "blur", "downsample", "noise", "jpeg", "upsample", "channel_shift", "gray")
KERNEL_TYPES = ("cv2_gaussian", "iso", "aniso", "generalized_iso", "generalized_aniso", "plateau_iso", "plateau_aniso", "motion")
KERNEL_FAMILY = {"cv2_gaussian": "gaussian", "iso": "gaussian", "aniso": "aniso", "generalized_iso": "generalized", "generalized_aniso": "generalized",
                 "plateau_iso": "plateau", "plateau_aniso": "plateau", "motion": "motion"}
OVERRIDE_FACTORS = ("blur", "scale", "noise", "jpeg")
NAN = float("nan")

PARAM_NAMES = (
    "blur_applied", "blur_kernel", "blur_type", "blur_sigma", "blur_sigma_x", "blur_sigma_y", "blur_angle", "blur_ksize", "blur_beta", "blur_motion_seed",
    "scale_applied", "scale", "noise_applied", "noise_kind", "noise_sigma", "noise_gray", "noise_seed", "jpeg_applied", "jpeg_quality",
    "color_applied", "color_brightness", "color_contrast", "color_saturation", "color_order", "shift_applied", "shift_r", "shift_g", "shift_b",
    "gray_applied",
)


# --- distributions -----------------------------------------------------------------------------

def draw(spec: Any, rng: np.random.Generator) -> Any:
    """Draw one value from a ``<dist>`` spec (see module docstring)."""
    if not isinstance(spec, Mapping):
        return spec
    if "uniform" in spec:
        a, b = spec["uniform"]
        value: Any = float(rng.uniform(float(a), float(b)))
    elif "randint" in spec:
        a, b = spec["randint"]
        value = int(rng.integers(int(a), int(b), endpoint=True))
    elif "choice" in spec:
        options = list(spec["choice"])
        probs = spec.get("p")
        if probs is None:
            idx = int(rng.integers(0, len(options)))
        else:
            p = np.asarray(probs, dtype=np.float64)
            idx = int(np.searchsorted(np.cumsum(p / p.sum()), rng.random(), side="right"))
            idx = min(idx, len(options) - 1)
        value = draw(options[idx], rng)
    else:
        raise ConfigError(f"unknown distribution spec {dict(spec)!r} (use uniform, randint or choice)")
    if "mul" in spec:
        value = value * spec["mul"]
    if "div" in spec:
        value = value / spec["div"]
    if "add" in spec:
        value = value + spec["add"]
    if spec.get("int"):
        value = int(value)
    return value


def dist_bounds(spec: Any) -> tuple[float, float]:
    """The (min, max) a ``<dist>`` can produce (for documentation and range checks)."""
    if not isinstance(spec, Mapping):
        return float(spec), float(spec)
    if "uniform" in spec or "randint" in spec:
        lo, hi = (float(v) for v in spec.get("uniform", spec.get("randint")))
    else:
        bounds = [dist_bounds(o) for o in spec["choice"]]
        lo, hi = min(b[0] for b in bounds), max(b[1] for b in bounds)
    for key, fn in (("mul", lambda v, k: v * k), ("div", lambda v, k: v / k), ("add", lambda v, k: v + k)):
        if key in spec:
            lo, hi = sorted((fn(lo, spec[key]), fn(hi, spec[key])))
    if spec.get("int"):
        lo, hi = float(int(lo)), float(int(hi))
    return lo, hi


# --- the pipeline ------------------------------------------------------------------------------

def _empty_params() -> dict[str, Any]:
    p: dict[str, Any] = {name: NAN for name in PARAM_NAMES}
    for flag in ("blur_applied", "scale_applied", "noise_applied", "jpeg_applied", "color_applied", "shift_applied", "gray_applied"):
        p[flag] = False
    p["blur_kernel"] = "none"
    p["blur_type"] = ""
    p["noise_kind"] = ""
    p["color_order"] = ""
    p["noise_gray"] = False
    return p


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
        if self.dtype not in ("uint8", "float32"):
            raise ConfigError(f"pipeline dtype must be uint8 or float32, got {self.dtype!r}")
        seen = set()
        for step in self.steps:
            op = step.get("op")
            if op not in OPS:
                raise ConfigError(f"unknown pipeline op {op!r} (known: {', '.join(OPS)})")
            if op in seen:
                raise ConfigError(f"op {op!r} appears twice in pipeline {self.name!r}")
            seen.add(op)
            if op == "blur":
                if not step.get("kernels"):
                    raise ConfigError("a blur step needs 'kernels'")
                for k in step["kernels"]:
                    if k.get("type") not in KERNEL_TYPES:
                        raise ConfigError(f"unknown kernel type {k.get('type')!r} (known: {', '.join(KERNEL_TYPES)})")
            if op in ("downsample", "upsample") and step.get("interp", "cv2_bicubic") not in _resize.INTERPOLATIONS:
                raise ConfigError(f"unknown interpolation {step.get('interp')!r} (known: {', '.join(_resize.INTERPOLATIONS)})")
            if op == "channel_shift" and self.dtype != "float32":
                raise ConfigError("channel_shift needs a float32 pipeline")
            if op == "noise" and step.get("kind", "gaussian") not in ("gaussian", "poisson"):
                raise ConfigError(f"unknown noise kind {step.get('kind')!r}")

    def step(self, op: str) -> dict | None:
        return next((s for s in self.steps if s["op"] == op), None)

    # -- sampling --
    def sample(self, seed: int, image_id: str, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """All parameters for one image: a pure function of ``(pipeline, seed, image_id, overrides)``.

        ``overrides`` forces factors (``blur`` sigma, ``scale``, ``noise`` sigma, ``jpeg`` quality or None)
        after drawing, leaving every other draw unchanged (grid sweeps, the ``fixed`` preset)."""
        params = _empty_params()
        for step in self.steps:
            op = step["op"]
            rng = image_rng(seed, image_id, op)
            applied = bool(rng.random() < float(step.get("p", 1.0)))
            getattr(self, f"_sample_{op}")(step, rng, applied, params)
        if overrides:
            self._apply_overrides(params, overrides)
        return params

    def _sample_blur(self, step: dict, rng: np.random.Generator, applied: bool, params: dict) -> None:
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

    def _sample_downsample(self, step: dict, rng: np.random.Generator, applied: bool, params: dict) -> None:
        scale = float(draw(step["scale"], rng))
        if applied:
            params.update(scale_applied=True, scale=scale)

    def _sample_noise(self, step: dict, rng: np.random.Generator, applied: bool, params: dict) -> None:
        sigma = float(draw(step["sigma"], rng))
        gray = bool(rng.random() < float(step.get("gray_p", 0.0)))
        nseed = float(rng.integers(0, 2**53))
        params["noise_seed"] = nseed  # kept even when off, so an override can switch noise on
        if applied:
            params.update(noise_applied=True, noise_kind=step.get("kind", "gaussian"), noise_sigma=sigma, noise_gray=gray)

    def _sample_jpeg(self, step: dict, rng: np.random.Generator, applied: bool, params: dict) -> None:
        q = int(draw(step["quality"], rng))
        if applied:
            params.update(jpeg_applied=True, jpeg_quality=float(q))

    def _sample_upsample(self, step: dict, rng: np.random.Generator, applied: bool, params: dict) -> None:
        return None

    def _sample_color_enhance(self, step: dict, rng: np.random.Generator, applied: bool, params: dict) -> None:
        names = ["brightness", "contrast", "saturation", "hue"]
        order = [names[i] for i in rng.permutation(4)]
        factors = {n: float(draw(step[n], rng)) for n in ("brightness", "contrast", "saturation") if n in step}
        if applied:
            params.update(color_applied=True, color_order=",".join(o for o in order if o in factors))
            for n, v in factors.items():
                params[f"color_{n}"] = v

    def _sample_channel_shift(self, step: dict, rng: np.random.Generator, applied: bool, params: dict) -> None:
        shift = float(step.get("shift", 20)) / 255.0
        vals = rng.uniform(-shift, shift, 3)
        if applied:
            params.update(shift_applied=True, shift_r=float(vals[0]), shift_g=float(vals[1]), shift_b=float(vals[2]))

    def _sample_gray(self, step: dict, rng: np.random.Generator, applied: bool, params: dict) -> None:
        params["gray_applied"] = applied

    def _apply_overrides(self, params: dict, overrides: Mapping[str, Any]) -> None:
        for key, value in overrides.items():
            if key not in OVERRIDE_FACTORS:
                raise ConfigError(f"unknown factor {key!r} to override (known: {', '.join(OVERRIDE_FACTORS)})")
            if key != "jpeg" and value is None:
                continue
            op = {"blur": "blur", "scale": "downsample", "noise": "noise", "jpeg": "jpeg"}[key]
            step = self.step(op)
            if step is None:
                raise ConfigError(f"pipeline {self.name!r} has no {op} step to override")
            if key == "blur":
                sigma = float(value)
                for name in ("blur_sigma", "blur_sigma_x", "blur_sigma_y", "blur_angle", "blur_ksize", "blur_beta", "blur_motion_seed"):
                    params[name] = NAN
                params["blur_sigma"] = sigma
                if sigma <= 0:
                    params.update(blur_applied=False, blur_kernel="none", blur_type="")
                    continue
                spec = next((k for k in step["kernels"] if k["type"] in ("cv2_gaussian", "iso")), {"type": "cv2_gaussian"})
                ksize = spec.get("ksize")
                if isinstance(ksize, Mapping) or ksize in (None, "auto"):
                    ksize = auto_ksize(sigma)
                params.update(blur_applied=True, blur_kernel="gaussian", blur_sigma_x=sigma, blur_sigma_y=sigma, blur_ksize=float(ksize))
                params["blur_type"] = spec["type"]
            elif key == "scale":
                scale = float(value)
                params.update(scale=scale, scale_applied=scale != 1.0)
            elif key == "noise":
                sigma = float(value)
                params.update(noise_sigma=sigma, noise_applied=sigma > 0, noise_kind=step.get("kind", "gaussian") if sigma > 0 else "")
            else:
                if value is None or (isinstance(value, str) and value.lower() in ("none", "off")):
                    params.update(jpeg_applied=False, jpeg_quality=NAN)
                else:
                    params.update(jpeg_applied=True, jpeg_quality=float(int(value)))

    # -- applying --
    def kernel(self, params: Mapping[str, Any]) -> np.ndarray | None:
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
        x: np.ndarray = img if self.dtype == "uint8" else img.astype(np.float32) / np.float32(255.0)
        for step in self.steps:
            op = step["op"]
            if op == "color_enhance" and params.get("color_applied"):
                factors = {n: params[f"color_{n}"] for n in ("brightness", "contrast", "saturation") if not _isnan(params.get(f"color_{n}"))}
                order = [o for o in str(params.get("color_order", "")).split(",") if o]
                x = self._as_uint8(_color.enhance(self._to_uint8(x), factors, order), x)
            elif op == "blur" and params.get("blur_applied"):
                if params["blur_type"] == "cv2_gaussian":
                    x = _blur.gaussian_blur_cv2(x, int(params["blur_ksize"]), float(params["blur_sigma"]))
                else:
                    k = self.kernel(params)
                    if step.get("kernel_dtype", "float64") == "float32":
                        k = k.astype(np.float32)
                        k /= np.sum(k)
                    x = _blur.convolve(x, k)
            elif op == "downsample" and params.get("scale_applied"):
                size = _resize.downscaled_size(x.shape[1], x.shape[0], float(params["scale"]), step.get("size_rule", "floordiv"))
                x = _resize.resize(x, size, step.get("interp", "cv2_bicubic"))
            elif op == "noise" and params.get("noise_applied"):
                rng = generator_from_int(int(params["noise_seed"]))
                if params.get("noise_kind", "gaussian") == "poisson":
                    x = _noise.add_poisson_noise(x, float(params["noise_sigma"]), rng, gray=bool(params.get("noise_gray")))
                else:
                    x = _noise.add_gaussian_noise(x, float(params["noise_sigma"]), rng, gray=bool(params.get("noise_gray")), rounding=step.get("rounding", "none"))
            elif op == "jpeg" and params.get("jpeg_applied"):
                x = _jpeg.jpeg_compress(x, int(params["jpeg_quality"]), treat_rgb_as_bgr=bool(step.get("treat_rgb_as_bgr", False)))
            elif op == "upsample" and lq_size != "native":
                if native_out is not None:
                    native_out.append(self._to_uint8(x))
                target = (w, h) if lq_size == "gt" else (int(lq_size), int(lq_size))
                x = _resize.resize(x, target, step.get("interp", "cv2_bicubic"))
            elif op == "channel_shift" and params.get("shift_applied"):
                x = _color.channel_shift(x, [params["shift_r"], params["shift_g"], params["shift_b"]])
            elif op == "gray" and params.get("gray_applied"):
                x = _color.to_gray(x)
            else:
                continue
            if trace is not None:
                trace.append((op, x.copy()))
        return self._to_uint8(x)

    @staticmethod
    def _to_uint8(x: np.ndarray) -> np.ndarray:
        if x.dtype == np.uint8:
            return x
        return np.clip(np.rint(x * np.float32(255.0)), 0, 255).astype(np.uint8)

    def _as_uint8(self, u8: np.ndarray, like: np.ndarray) -> np.ndarray:
        return u8 if like.dtype == np.uint8 else u8.astype(np.float32) / np.float32(255.0)

    def run(self, img: np.ndarray, seed: int, image_id: str, overrides: Mapping[str, Any] | None = None, lq_size: str | int = "gt") -> tuple[np.ndarray, dict]:
        """``sample`` then ``apply``: returns ``(lq uint8 RGB, params)``."""
        params = self.sample(seed, image_id, overrides)
        return self.apply(img, params, lq_size), params


def auto_ksize(sigma: float) -> int:
    """Kernel size ``2 * ceil(3 * sigma) + 1`` (holds +-3 sigma), used for ``ksize: auto`` and for a forced
    blur sigma when the recipe's kernel size is random."""
    return 2 * int(math.ceil(3.0 * float(sigma))) + 1


def _isnan(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def public_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters in :data:`PARAM_NAMES` order."""
    return {k: params[k] for k in PARAM_NAMES}


def load_pipeline(path: str | Path) -> Pipeline:
    """Read a pipeline from a ``.yaml``/``.yml``, ``.toml`` or ``.json`` file (or the ``degrade.json`` of an
    earlier test set, whose ``config.pipeline`` is used)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"cannot read pipeline file {str(path)!r}: {e.strerror or e}") from None
    suffix = path.suffix.lower()
    try:
        if suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        elif suffix == ".toml":
            import tomllib

            data = tomllib.loads(text)
        elif suffix == ".json":
            data = json.loads(text)
        else:
            raise ConfigError(f"pipeline file {str(path)!r}: use .yaml, .toml or .json")
    except ConfigError:
        raise
    except Exception as e:  # noqa: BLE001 - any parse error is a config error
        raise ConfigError(f"cannot parse pipeline file {str(path)!r}: {e}") from None
    if isinstance(data, Mapping) and "steps" not in data and isinstance(data.get("config"), Mapping) and "pipeline" in data["config"]:
        data = data["config"]["pipeline"]  # a degrade.json: reuse the recipe of an earlier test set
    return Pipeline.from_dict(data)
