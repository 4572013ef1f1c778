"""Metric registry: canonical names, aliases, creation with a profile.

::

    from evaluation.registry import METRICS, create_metric, metric_names, resolve_name
    m = create_metric("psnr", device="cpu", profile=get_profile("sr-y"))   # profile pins crop/Y
    m.load(); m.compute(pred_u8, target_u8)["psnr"]

:data:`METRICS` is a :class:`celebref.registry.Registry` (entry-point group ``celebref.metrics``): ``psnr``,
``ssim``, ``lpips`` (AlexNet), ``lpips-vgg``, ``fid``, ``niqe``, ``identity``, ``identity-input`` (scored against
the LQ input: ``needs_input``), ``lmd``, ``musiq``, ``maniqa``, ``clip-iqa`` (the last three through the optional
pyiqa extra, weights from our store, non-commercial), each a lazy
``module:Class`` with a one-line description, its aliases (case-insensitive, ``_`` = ``-``; ``celebref list
metrics``) and the weight-store files it reads. ``pyiqa:<name>`` reaches any pyiqa metric (optional extra;
``pyiqa:musiq``, ``pyiqa:maniqa`` and ``pyiqa:clipiqa`` mean the named entries).
Another distribution adds a metric by declaring ``[project.entry-points."celebref.metrics"] NAME =
"pkg.module:Class"`` (a :class:`~evaluation.base.Metric` subclass). Explicit ``options`` override the profile's.
"""

from __future__ import annotations

from typing import Any

from celebref.errors import ConfigError, UnknownNameError
from celebref.params import build_params, parse_spec
from celebref.registry import Registry

from .base import Metric
from .profiles import Profile, get_profile

__all__ = ["METRICS", "PYIQA_FORM", "PYIQA_PREFIX", "create_metric", "metric_class", "metric_names", "resolve_name"]

PYIQA_PREFIX = "pyiqa:"
PYIQA_FORM = "pyiqa:<name>"

METRICS = Registry("metric", group="celebref.metrics", extra_known=(PYIQA_FORM,))
METRICS.register("psnr", "evaluation.psnr:PSNR", tags=("full-reference",),
                 description="peak signal-to-noise ratio in dB (BasicSR calculate_psnr)")
METRICS.register("ssim", "evaluation.ssim:SSIM", tags=("full-reference",),
                 description="structural similarity (BasicSR calculate_ssim, 11x11 Gaussian window)")
METRICS.register("lpips", "evaluation.lpips:LPIPS", aliases=("lpips-alex", "lpips-alexnet"),
                 weights=("alexnet", "lpips-alex-v0.1"), tags=("full-reference",),
                 description="LPIPS v0.1 with AlexNet features (the official lpips package's default)")
METRICS.register("lpips-vgg", "evaluation.lpips:LPIPSVGG", aliases=("lpipsvgg", "lpips-vgg16"),
                 weights=("vgg16", "lpips-vgg-v0.1"), tags=("full-reference",),
                 description="LPIPS v0.1 with VGG16 features (BasicSR's LPIPS evaluation)")
METRICS.register("fid", "evaluation.fid:FID", aliases=("frechet-inception-distance",), weights=("fid-inception",),
                 tags=("dataset-level",),
                 description="Frechet Inception Distance over the whole set (pytorch-fid Inception, pool3)")
METRICS.register("niqe", "evaluation.niqe:NIQE", weights=("niqe-params",), tags=("no-reference",),
                 description="NIQE no-reference quality (BasicSR calculate_niqe, MATLAB pristine parameters)")
METRICS.register("identity", "evaluation.identity:Identity",
                 aliases=("id", "idd", "identity-distance", "arcface", "deg"), tags=("full-reference", "face"),
                 description="identity cosine and angle between restored and GT face embeddings (face backend)")
METRICS.register("identity-input", "evaluation.identity:IdentityInput",
                 aliases=("id-input", "identity-lq", "id-sim", "adaface"), weights=("adaface-ir50-ms1mv2",),
                 tags=("no-reference", "needs-input", "face"),
                 description="identity cosine between the restored face and its LQ input (AdaFace IR-50 as NTIRE "
                             "2025; arcface/dlib backends)")
METRICS.register("identity-refs", "evaluation.identity_refs:IdentityToReferences",
                 aliases=("identity-ref", "id-refs"), tags=("no-reference", "face"),
                 description="identity cosine of each face to the closest of a folder of reference faces (refs=DIR)")
METRICS.register("lmd", "evaluation.lmd:LandmarkDistance", aliases=("landmark-distance", "lmd68", "landmarks"),
                 tags=("full-reference", "face"),
                 description="mean distance in px at 512 between restored and GT 68 landmarks (face backend)")
_PYIQA_TAGS = ("no-reference", "pyiqa", "optional-extra", "non-commercial")
METRICS.register("musiq", "evaluation.pyiqa_bridge:MUSIQ", aliases=("musiq-koniq",), weights=("pyiqa-musiq-koniq",),
                 tags=_PYIQA_TAGS,
                 description="MUSIQ (KonIQ-10k) through the optional pyiqa extra; NON-COMMERCIAL (PolyForm Noncommercial)")
METRICS.register("maniqa", "evaluation.pyiqa_bridge:MANIQA", aliases=("maniqa-koniq",), weights=("pyiqa-maniqa-koniq",),
                 tags=_PYIQA_TAGS,
                 description="MANIQA (KonIQ-10k) through the optional pyiqa extra; NON-COMMERCIAL (PolyForm Noncommercial)")
METRICS.register("clip-iqa", "evaluation.pyiqa_bridge:CLIPIQA", aliases=("clipiqa",), weights=("clip-rn50",),
                 tags=_PYIQA_TAGS,
                 description="CLIP-IQA (CLIP RN50) through the optional pyiqa extra; NON-COMMERCIAL (PolyForm Noncommercial)")
#: ``pyiqa:<name>`` forms that mean one of the named metrics above (weights from our store)
PYIQA_NAMED = {"musiq": "musiq", "maniqa": "maniqa", "clipiqa": "clip-iqa"}


def metric_names() -> list[str]:
    """Canonical metric names, plugins included (``pyiqa:<name>`` is also accepted when pyiqa is installed)."""
    return METRICS.names()


def resolve_name(name: str, profile: Profile | None = None) -> str:
    """Canonical name of ``name`` (alias, case and ``_``/``-`` insensitive; a profile may redirect a
    generic name such as ``lpips``). Raises :class:`UnknownNameError` with suggestions."""
    raw = str(name).strip()
    if raw.lower().startswith(PYIQA_PREFIX):
        inner = raw[len(PYIQA_PREFIX):].strip()
        if not inner:
            raise UnknownNameError("metric", raw, metric_names() + [PYIQA_FORM])
        return PYIQA_NAMED.get(inner.lower(), PYIQA_PREFIX + inner.lower())
    key = METRICS.resolve(raw)
    if profile is not None:
        key = METRICS.resolve(profile.resolve(key))
    return key


def metric_class(name: str) -> type[Metric]:
    """The class of a registered metric (not ``pyiqa:<name>``)."""
    return METRICS.get(resolve_name(name))


def create_metric(name: str, device: Any = "cpu", profile: Profile | str | None = None, **options: Any) -> Metric:
    """A metric instance (weights not loaded yet: call ``load()``). ``name`` may carry options as for methods
    (``identity-input:backend=dlib``; typed by the metric's options, which override the profile's). ``profile``: a
    :class:`Profile`, a profile name or ``None`` (no pinned options: each metric's own defaults)."""
    prof = get_profile(profile) if profile is not None else None
    if ":" in name and not name.strip().lower().startswith(PYIQA_PREFIX):  # NAME:k=v, as for methods
        name, raw = parse_spec(name)
        cls = METRICS.get(resolve_name(name, prof))
        ptype = cls.params_type()
        if ptype is None:
            raise ConfigError(f"metric {cls.name!r} takes no options, got {', '.join(sorted(raw))}")
        given = build_params(ptype, raw, owner=f"metric {cls.name!r}")
        options = {**{k: getattr(given, k) for k in raw}, **options}
    canonical = resolve_name(name, prof)
    if canonical.startswith(PYIQA_PREFIX):
        from .pyiqa_bridge import PyiqaMetric

        return PyiqaMetric(canonical[len(PYIQA_PREFIX):], device=device, **options)
    merged = {**(prof.options_for(canonical) if prof is not None else {}), **options}
    return METRICS.get(canonical)(device=device, **merged)
