"""Metric registry: canonical names, aliases, creation with a profile.

::

    from evaluation.registry import create_metric, metric_names, resolve_name
    m = create_metric("psnr", device="cpu", profile=get_profile("sr-y"))   # profile pins crop/Y
    m.load(); m.compute(pred_u8, target_u8)["psnr"]

Names: ``psnr``, ``ssim``, ``lpips`` (AlexNet), ``lpips-vgg``, ``fid``, ``niqe``, ``identity``, ``lmd``, and
``pyiqa:<name>`` for any pyiqa metric (optional extra). Aliases (case-insensitive, ``_`` = ``-``) are listed
in :data:`ALIASES`. Explicit ``options`` override the profile's.
"""

from __future__ import annotations

from typing import Any

from celebref.errors import UnknownNameError

from .base import Metric
from .profiles import Profile, get_profile

_CLASSES = {
    "psnr": ("evaluation.psnr", "PSNR"),
    "ssim": ("evaluation.ssim", "SSIM"),
    "lpips": ("evaluation.lpips", "LPIPS"),
    "lpips-vgg": ("evaluation.lpips", "LPIPSVGG"),
    "fid": ("evaluation.fid", "FID"),
    "niqe": ("evaluation.niqe", "NIQE"),
    "identity": ("evaluation.identity", "Identity"),
    "lmd": ("evaluation.lmd", "LandmarkDistance"),
}

ALIASES = {
    "lpips-alex": "lpips", "lpips-alexnet": "lpips", "lpipsvgg": "lpips-vgg", "lpips-vgg16": "lpips-vgg",
    "frechet-inception-distance": "fid",
    "id": "identity", "idd": "identity", "identity-distance": "identity", "arcface": "identity", "deg": "identity",
    "landmark-distance": "lmd", "lmd68": "lmd", "landmarks": "lmd",
}

PYIQA_PREFIX = "pyiqa:"


def metric_names() -> list[str]:
    """Canonical metric names (``pyiqa:<name>`` is also accepted when pyiqa is installed)."""
    return sorted(_CLASSES)


def resolve_name(name: str, profile: Profile | None = None) -> str:
    """Canonical name of ``name`` (alias, case and ``_``/``-`` insensitive; a profile may redirect a
    generic name such as ``lpips``). Raises :class:`UnknownNameError` with suggestions."""
    raw = str(name).strip()
    if raw.lower().startswith(PYIQA_PREFIX):
        inner = raw[len(PYIQA_PREFIX):].strip()
        if not inner:
            raise UnknownNameError("metric", raw, metric_names() + ["pyiqa:<name>"])
        return PYIQA_PREFIX + inner.lower()
    key = raw.lower().replace("_", "-")
    key = ALIASES.get(key, key)
    if profile is not None:
        key = profile.resolve(key)
    if key not in _CLASSES:
        raise UnknownNameError("metric", raw, metric_names() + sorted(ALIASES) + ["pyiqa:<name>"])
    return key


def metric_class(name: str) -> type[Metric]:
    import importlib

    module, cls = _CLASSES[resolve_name(name)]
    return getattr(importlib.import_module(module), cls)


def create_metric(name: str, device: Any = "cpu", profile: Profile | str | None = None, **options: Any) -> Metric:
    """A metric instance (weights not loaded yet: call ``load()``). ``profile``: a :class:`Profile`, a profile
    name or ``None`` (no pinned options: each metric's own defaults)."""
    prof = get_profile(profile) if profile is not None else None
    canonical = resolve_name(name, prof)
    if canonical.startswith(PYIQA_PREFIX):
        from .pyiqa_bridge import PyiqaMetric

        return PyiqaMetric(canonical[len(PYIQA_PREFIX):], device=device, **options)
    merged = {**(prof.options_for(canonical) if prof is not None else {}), **options}
    return metric_class(canonical)(device=device, **merged)
