"""Published degradation recipes as :class:`~degradations.pipeline.Pipeline` data, in one registry.

Each preset re-states, as data, the degradation a paper's official training code applies, with the
facts (ranges, probabilities, op order, libraries, rounding) read from that code. What a test set does
not want from a training loader is left out or made optional and documented per preset (flips,
colour jitter, the GT side of the pair).

::

    PRESETS.names()                                     # ['codeformer', 'dfdnet', 'fixed', 'gfpgan']
    pipe, overrides = get_preset("dfdnet", color_jitter=True)
    pipe, overrides = preset_from_spec("fixed:blur=2,scale=4,jpeg=60")

A preset is a function ``(params) -> Recipe``: ``params`` is an instance of its frozen parameter dataclass
(``NAME:key=value`` strings are parsed into it by :mod:`celebref.params`, with typed validation); the
:class:`Recipe` holds the pipeline and the factors it forces (``overrides``, used by ``fixed`` and by grid
sweeps; see :meth:`Pipeline.sample`). Another distribution adds a preset through the ``celebref.presets``
entry-point group (a function with a ``Params`` attribute, returning a :class:`Recipe`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping

from celebref.errors import ConfigError
from celebref.params import build_params, parse_spec
from celebref.registry import Registry

from .pipeline import Pipeline

__all__ = ["PRESETS", "Recipe", "get_preset", "make_recipe", "preset_from_spec"]

PRESETS = Registry("preset", group="celebref.presets")


@dataclass(frozen=True)
class Recipe:
    """What a preset returns: the ``pipeline`` and the factors it forces (``overrides``; empty for random presets)."""

    pipeline: Pipeline
    overrides: Mapping[str, Any] = field(default_factory=dict)


# -- DFDNet ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class DFDNetParams:
    color_jitter: bool = False
    "torchvision ColorJitter(0.3, 0.3, 0.3, 0) on the LQ (off for test sets: the GT is not jittered)"


@PRESETS.add("dfdnet", params=DFDNetParams,
             description="DFDNet (ECCV 2020): csxmli2016/DFDNet data/aligned_dataset.py (blur, downsample, noise, JPEG)")
def dfdnet(p: DFDNetParams) -> Recipe:
    """DFDNet (Li et al., ECCV 2020), csxmli2016/DFDNet ``data/aligned_dataset.py`` (``AddBlur``,
    ``AddDownSample``, ``AddNoise``, ``AddJPEG``, ``AddUpSample``, applied in that order).

    * blur, p = 0.9: Gaussian with p = 0.65 (``random() > 0.35``): ``cv2.GaussianBlur`` with kernel
      size ``randint(1, 17) * 2 + 1`` (3..35, odd) and sigma ``randint(3, 20) / 10`` (0.3..2.0);
      otherwise a motion kernel (``cv2.filter2D`` with a float32 kernel normalised to 1). DFDNet picks
      one of 32 ``.mat`` kernels (sizes 7..35) that we do not ship; we draw a random camera trajectory
      (:func:`~degradations.kernels.motion_kernel`) on an odd size 7..35 instead.
    * downsample, p = 0.95: Pillow ``BICUBIC`` to ``int(512 / sampler * 10)`` with
      ``sampler = randint(20, 100)``, i.e. a factor 2.0..10.0 in steps of 0.1 (``scale = sampler / 10``).
    * noise, p = 0.9: Gaussian, per channel, sigma ``randint(1, 10)`` on 0..255, added in float,
      clamped to [0, 255] and converted with ``np.uint8`` (truncation).
    * JPEG, p = 0.6: quality ``randint(40, 80)`` with ``cv2.imencode`` on the RGB array (OpenCV takes
      it for BGR: kept, ``treat_rgb_as_bgr``).
    * upsample: Pillow ``BICUBIC`` back to the GT size (DFDNet: ``fineSize`` = 512).
    * ``color_jitter`` (off by default): torchvision ``ColorJitter(0.3, 0.3, 0.3, 0)`` on the input,
      i.e. brightness/contrast/saturation factors in [0.7, 1.3] in random order (Pillow enhancers). In
      DFDNet it is applied before the GT is taken, so GT and LQ share it; here the GT file is not
      rewritten, so enabling it makes the LQ's colours differ from the GT's.
    """
    return Recipe(Pipeline(
        name="dfdnet",
        dtype="uint8",
        description="csxmli2016/DFDNet data/aligned_dataset.py (motion kernels generated, not the 32 .mat files)",
        steps=[
            {"op": "color_enhance", "p": 1.0 if p.color_jitter else 0.0, "brightness": {"uniform": [0.7, 1.3]},
             "contrast": {"uniform": [0.7, 1.3]}, "saturation": {"uniform": [0.7, 1.3]}},
            {"op": "blur", "p": 0.9, "kernel_dtype": "float32", "kernels": [
                {"type": "cv2_gaussian", "p": 0.65, "ksize": {"randint": [1, 17], "mul": 2, "add": 1}, "sigma": {"randint": [3, 20], "div": 10}},
                {"type": "motion", "p": 0.35, "ksize": {"randint": [3, 17], "mul": 2, "add": 1}},
            ]},
            {"op": "downsample", "p": 0.95, "scale": {"randint": [20, 100], "div": 10}, "interp": "pil_bicubic", "size_rule": "dfdnet"},
            {"op": "noise", "p": 0.9, "kind": "gaussian", "sigma": {"randint": [1, 10]}, "gray_p": 0.0, "rounding": "truncate"},
            {"op": "jpeg", "p": 0.6, "quality": {"randint": [40, 80]}, "treat_rgb_as_bgr": True},
            {"op": "upsample", "interp": "pil_bicubic"},
        ],
    ))


# -- GFPGAN / CodeFormer (BasicSR face degradation) ------------------------------------------------------

@dataclass(frozen=True)
class GFPGANParams:
    color_jitter: bool = False
    "per-channel colour shift with p = 0.3 (the recipe's color_jitter_prob; off by default)"
    gray: bool = False
    "grey LQ with p = 0.01 (the recipe's gray_prob; off by default)"


@dataclass(frozen=True)
class CodeFormerParams:
    """CodeFormer's stage-III recipe has no options."""


def _basicsr_face(name: str, description: str, scale: tuple[float, float], noise: tuple[float, float], color_jitter_p: float, gray_p: float) -> Pipeline:
    return Pipeline(
        name=name,
        dtype="float32",
        description=description,
        steps=[
            {"op": "blur", "p": 1.0, "kernels": [
                {"type": "iso", "p": 0.5, "ksize": 41, "sigma": {"uniform": [0.1, 10.0]}},
                {"type": "aniso", "p": 0.5, "ksize": 41, "sigma_x": {"uniform": [0.1, 10.0]}, "sigma_y": {"uniform": [0.1, 10.0]},
                 "angle": {"uniform": [-math.pi, math.pi]}},
            ]},
            {"op": "downsample", "p": 1.0, "scale": {"uniform": list(scale)}, "interp": "cv2_bilinear", "size_rule": "floordiv"},
            {"op": "noise", "p": 1.0, "kind": "gaussian", "sigma": {"uniform": list(noise)}, "gray_p": 0.0, "rounding": "none"},
            {"op": "jpeg", "p": 1.0, "quality": {"uniform": [60.0, 100.0], "int": True}, "treat_rgb_as_bgr": False},
            {"op": "upsample", "interp": "cv2_bilinear"},
            {"op": "channel_shift", "p": color_jitter_p, "shift": 20},
            {"op": "gray", "p": gray_p},
        ],
    )


@PRESETS.add("gfpgan", params=GFPGANParams,
             description="GFPGAN v1 (CVPR 2021): TencentARC/GFPGAN options/train_gfpgan_v1.yml + ffhq_degradation_dataset.py")
def gfpgan(p: GFPGANParams) -> Recipe:
    """GFPGAN v1 (Wang et al., CVPR 2021), TencentARC/GFPGAN ``options/train_gfpgan_v1.yml`` +
    ``gfpgan/data/ffhq_degradation_dataset.py`` (kernels from BasicSR ``random_mixed_kernels``).

    Float32 [0, 1] throughout: ``cv2.filter2D`` with a 41x41 kernel, isotropic or anisotropic Gaussian
    with p = 0.5 each, sigmas uniform in [0.1, 10], rotation uniform in [-pi, pi]; ``cv2.resize``
    ``INTER_LINEAR`` down to ``int(w // scale)`` with ``scale ~ U[0.8, 8]``; per-channel Gaussian noise
    with sigma ``~ U[0, 20]`` (0..255 scale), clipped to [0, 1], not rounded; JPEG with quality
    ``~ U[60, 100]`` through ``cv2.imencode`` on the BGR image (quality truncated to an integer, as
    CodeFormer writes explicitly); ``INTER_LINEAR`` back to the input size; finally
    ``clamp(round(x * 255))``. Options, off by default: ``color_jitter`` (p = 0.3, per-channel shift
    ``U[-20, 20] / 255``) and ``gray`` (p = 0.01), both on the LQ only, as in the recipe. The training
    loader's random horizontal flip and its torch colour jitter (``color_jitter_pt_prob``) are not
    part of a test set and are not reproduced."""
    return Recipe(_basicsr_face("gfpgan", "TencentARC/GFPGAN options/train_gfpgan_v1.yml + gfpgan/data/ffhq_degradation_dataset.py",
                         (0.8, 8.0), (0.0, 20.0), 0.3 if p.color_jitter else 0.0, 0.01 if p.gray else 0.0))


@PRESETS.add("codeformer", params=CodeFormerParams,
             description="CodeFormer (NeurIPS 2022) stage III: sczhou/CodeFormer options/CodeFormer_stage3.yml")
def codeformer(p: CodeFormerParams) -> Recipe:
    """CodeFormer (Zhou et al., NeurIPS 2022) stage III, sczhou/CodeFormer ``options/CodeFormer_stage3.yml``
    + ``basicsr/data/ffhq_blind_joint_dataset.py`` (the ``in`` image, i.e. the "small degradation").

    As :func:`gfpgan` but downscale factor ``~ U[1, 12]`` (to ``int(512 // scale)``), noise sigma
    ``~ U[0, 15]`` (drawn as ``U[0, 15/255]`` there), JPEG ``int(U[60, 100])``; motion kernels are
    disabled in its code (``use_motion_kernel = False``); no colour jitter and ``gray_prob`` 0 in
    that configuration. Resizing back goes to ``in_size`` = the GT size."""
    return Recipe(_basicsr_face("codeformer", "sczhou/CodeFormer options/CodeFormer_stage3.yml + basicsr/data/ffhq_blind_joint_dataset.py",
                         (1.0, 12.0), (0.0, 15.0), 0.0, 0.0))


# -- fixed --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class FixedParams:
    blur: float = 0.0
    "Gaussian blur sigma (0: none)"
    scale: float = 1.0
    "downscale factor (1: none)"
    noise: float = 0.0
    "Gaussian noise sigma on 0..255 (0: none)"
    jpeg: int | None = None
    "JPEG quality 0..100 (None: no JPEG)"
    interp: str = "cv2_bilinear"
    "resize interpolation: cv2_bilinear, cv2_bicubic, cv2_area, pil_bicubic, ..."
    blur_ksize: int | None = None
    "blur kernel size, positive and odd (None: 2 * ceil(3 * blur) + 1)"

    def validate(self) -> None:
        if self.blur < 0 or self.noise < 0 or self.scale <= 0:
            raise ValueError(f"fixed preset needs blur >= 0, noise >= 0, scale > 0 (got blur={self.blur}, scale={self.scale}, noise={self.noise})")
        if self.jpeg is not None and not 0 <= int(self.jpeg) <= 100:
            raise ValueError(f"JPEG quality must be in 0..100, got {self.jpeg}")
        if self.blur_ksize and (int(self.blur_ksize) % 2 != 1 or int(self.blur_ksize) < 1):
            raise ValueError(f"blur kernel size must be a positive odd integer, got {self.blur_ksize}")


@PRESETS.add("fixed", params=FixedParams, description="celebref fixed setting for sweeps: blur -> downsample -> noise -> JPEG -> upsample")
def fixed(p: FixedParams) -> Recipe:
    """One deterministic setting for controlled sweeps (our own, not a published recipe).

    Float32 [0, 1] like the BasicSR recipes, in the classic order blur -> downsample -> noise -> JPEG ->
    upsample: ``cv2.GaussianBlur`` with sigma ``blur`` and kernel size ``blur_ksize`` (default
    ``2 * ceil(3 * blur) + 1``); ``cv2``/Pillow resize by ``interp`` to ``int(w // scale)`` and back;
    per-channel Gaussian noise ``noise`` (0..255 scale, clipped, not rounded; its field comes from the
    per-image ``noise_seed``); JPEG at quality ``jpeg`` (None: off) on the true-colour (BGR) image;
    final ``clip(rint(x * 255))``. ``blur = 0``, ``scale = 1``, ``noise = 0`` are the identity and are
    recorded with ``*_applied = False``."""
    blur, scale, noise, jpeg, interp, blur_ksize = p.blur, p.scale, p.noise, p.jpeg, p.interp, p.blur_ksize
    ksize: int | str = int(blur_ksize) if blur_ksize else "auto"
    pipe = Pipeline(
        name="fixed",
        dtype="float32",
        description="celebref fixed setting: blur -> downsample -> noise -> jpeg -> upsample",
        steps=[
            {"op": "blur", "p": float(blur > 0), "kernels": [{"type": "cv2_gaussian", "ksize": ksize, "sigma": float(blur)}]},
            {"op": "downsample", "p": float(scale != 1), "scale": float(scale), "interp": interp, "size_rule": "floordiv"},
            {"op": "noise", "p": float(noise > 0), "kind": "gaussian", "sigma": float(noise), "gray_p": 0.0, "rounding": "none"},
            {"op": "jpeg", "p": float(jpeg is not None), "quality": int(jpeg) if jpeg is not None else 100, "treat_rgb_as_bgr": False},
            {"op": "upsample", "interp": interp},
        ],
    )
    return Recipe(pipe, {"blur": float(blur), "scale": float(scale), "noise": float(noise), "jpeg": None if jpeg is None else int(jpeg)})


# -- lookup --------------------------------------------------------------------------------------------------

def make_recipe(name: str, options: Mapping[str, Any] | None = None) -> tuple[str, Recipe]:
    """``(canonical name, Recipe)`` of preset ``name`` with ``options`` (values or strings, typed by the preset's
    parameter dataclass; a bad or unknown parameter is a :class:`ConfigError` naming it)."""
    entry = PRESETS.entry(name)
    params_type = entry.params_type()
    options = dict(options or {})
    if params_type is None:
        if options:
            raise ConfigError(f"preset {entry.name!r} takes no parameters (got {', '.join(sorted(options))})")
        params = None
    else:
        params = build_params(params_type, options, owner=f"preset {entry.name!r}")
    recipe = entry.load()(params)
    if not isinstance(recipe, Recipe):
        raise ConfigError(f"preset {entry.name!r} ({entry.source}) returned a {type(recipe).__name__}, not a Recipe")
    return entry.name, recipe


def get_preset(name: str, **options: Any) -> tuple[Pipeline, dict[str, Any]]:
    """``(pipeline, overrides)`` for a preset name; ``options`` are the preset's parameters."""
    recipe = make_recipe(name, options)[1]
    return recipe.pipeline, dict(recipe.overrides)


def preset_from_spec(spec: str, **options: Any) -> tuple[str, Recipe]:
    """``"NAME:key=value,..."`` plus ``options`` (a parameter given in both is an error) -> ``(name, Recipe)``."""
    name, raw = parse_spec(spec)
    both = sorted(set(raw) & set(options))
    if both:
        raise ConfigError(f"preset parameter {', '.join(repr(b) for b in both)} is given twice (in {spec!r} and as an option)")
    return make_recipe(name, {**raw, **options})
