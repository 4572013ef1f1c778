"""Metric profiles: named bundles that pin every convention, so a number is never ambiguous.

A profile maps each metric to the options it is created with (crop border, Y or RGB, LPIPS backbone, FID
extractor and resize, identity backend and mode, ...) and may redirect a generic name (``lpips`` ->
``lpips-vgg``). Options given explicitly to :func:`evaluation.registry.create_metric` override the profile.
Print :meth:`Profile.describe` (or :meth:`Profile.summary`) with every results table.

Profiles:

* ``default``: PSNR/SSIM on RGB, no border crop (BasicSR ``calculate_psnr/ssim(crop_border=0,
  test_y_channel=False)``, the convention of GFPGAN/CodeFormer-style face-restoration evaluation); LPIPS v0.1
  AlexNet (the official package's default); FID pytorch-fid; NIQE on Y; identity cosine/angle from the
  best available face backend on the aligned 512x512 faces; LMD at 512 px.
* ``basicsr``: as ``default`` but ``lpips`` means LPIPS v0.1 VGG16 (BasicSR's LPIPS evaluation script).
* ``sr-y``: super-resolution convention: PSNR/SSIM on BT.601 Y with a 4-pixel border crop; LPIPS AlexNet.
* ``ntire2025``: the NTIRE 2025 real-world face restoration challenge (``eval.py``): no-reference NIQE, CLIP-IQA,
  MANIQA, MUSIQ, identity to the LQ input, FID against the FFHQ 512 statistics (``fid_reference``), the weighted
  total from :func:`evaluation.ntire2025.ntire2025_score` (``score``); differences listed in ``notes``.

:data:`PROFILES` is a :class:`celebref.registry.Registry` of :class:`Profile` objects (``celebref list profiles``);
another distribution adds a profile through the entry-point group ``celebref.profiles`` (the target is a
:class:`Profile`).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from celebref.errors import ConfigError
from celebref.registry import Registry


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    options: dict[str, dict[str, Any]] = field(default_factory=dict)  # canonical metric -> options
    aliases: dict[str, str] = field(default_factory=dict)  # generic name -> canonical metric
    default_metrics: tuple[str, ...] = ("psnr", "ssim", "lpips", "fid", "identity")
    fid_reference: str | None = None  # named FID statistics (evaluation.fid.REFERENCES) when no file is given
    score: str | None = None  # "module:function" (per-image table, {method: FID}) -> {method: result}: the overall score
    notes: tuple[str, ...] = ()  # what differs from the reference protocol, printed with the profile

    def options_for(self, metric: str) -> dict[str, Any]:
        """Options this profile pins for the canonical metric name (a copy)."""
        return copy.deepcopy(self.options.get(metric, {}))

    def resolve(self, name: str) -> str:
        """A generic metric name as this profile reads it (e.g. ``lpips`` -> ``lpips-vgg``)."""
        return self.aliases.get(name, name)

    def describe(self) -> dict[str, Any]:
        """Every pinned convention (JSON-ready)."""
        return {"profile": self.name, "description": self.description, "aliases": dict(self.aliases),
                "metrics": copy.deepcopy(self.options), "default_metrics": list(self.default_metrics),
                "fid_reference": self.fid_reference, "score": self.score, "notes": list(self.notes)}

    def summary(self) -> str:
        """One line per metric, for printing under a table."""
        lines = [f"profile {self.name}: {self.description}"]
        for k, v in self.aliases.items():
            lines.append(f"  {k} = {v}")
        for metric, opts in self.options.items():
            lines.append(f"  {metric}: " + ", ".join(f"{k}={v}" for k, v in opts.items()))
        if self.fid_reference:
            lines.append(f"  fid reference: {self.fid_reference}")
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


_COMMON = {
    "psnr": {"crop_border": 0, "y_channel": False},
    "ssim": {"crop_border": 0, "y_channel": False},
    "niqe": {"crop_border": 0, "convert_to": "y"},
    "identity": {"backend": "auto", "mode": "aligned"},
    "lmd": {"backend": "auto", "size": 512},
}

PROFILES = Registry("metric profile", group="celebref.profiles")


def _register(profile: Profile, aliases: tuple[str, ...] = (), weights: tuple[str, ...] = ()) -> None:
    """``weights``: weight-store files the profile itself names (e.g. its FID reference statistics)."""
    PROFILES.register(profile.name, profile, description=profile.description, aliases=aliases, weights=weights)


_register(Profile(
    "default",
    "PSNR/SSIM RGB crop 0 (BasicSR, float64); LPIPS v0.1 AlexNet [-1,1]; FID pytorch-fid Inception "
    "(bilinear 299); NIQE Y; identity cosine+angle (insightface ArcFace if present, else dlib) on aligned faces",
    options=copy.deepcopy(_COMMON), aliases={"lpips": "lpips"}))
_register(Profile(
    "basicsr",
    "BasicSR evaluation scripts: PSNR/SSIM RGB crop 0; LPIPS v0.1 VGG16; FID pytorch-fid; NIQE Y",
    options=copy.deepcopy(_COMMON), aliases={"lpips": "lpips-vgg"}))
_register(Profile(
    "sr-y",
    "super-resolution convention: PSNR/SSIM on BT.601 Y (MATLAB rgb2ycbcr) with a 4-px border crop; "
    "LPIPS v0.1 AlexNet; NIQE Y crop 4",
    options={**copy.deepcopy(_COMMON), "psnr": {"crop_border": 4, "y_channel": True},
             "ssim": {"crop_border": 4, "y_channel": True}, "niqe": {"crop_border": 4, "convert_to": "y"}},
    aliases={"lpips": "lpips"}))

_register(Profile(
    "ntire2025",
    "NTIRE 2025 real-world face restoration eval.py: NIQE, CLIP-IQA, MANIQA, MUSIQ (pyiqa, non-commercial), "
    "identity to the LQ input (AdaFace IR-50 cosine, per-set thresholds), FID of all outputs vs FFHQ 512 "
    "(BasicSR inception_FFHQ_512); weighted total by evaluation.ntire2025",
    options={"niqe": {"crop_border": 0, "convert_to": "y"}},
    default_metrics=("niqe", "clip-iqa", "maniqa", "musiq", "identity-input", "fid"),
    fid_reference="ffhq-512", score="evaluation.ntire2025:score_table",
    notes=("NIQE is BasicSR's calculate_niqe (MATLAB parameters); eval.py uses pyiqa's niqe",
           "Q-Align (pyiqa:qalign) is added only when requested; without it the total has no QALIGN/5 term",
           "eval.py computes FID on the first 3000 outputs; here on all outputs",
           "test-set names and thresholds: CelebA 0.5, LFW-Test 0.6, CelebChild-Test 0.6, Wider-Test 0.3, "
           "WebPhoto-Test 0.3 (evaluation.ntire2025.THRESHOLDS)")),
    weights=("fid-stats-ffhq-512-basicsr",))


def profile_names() -> list[str]:
    return PROFILES.names()


def get_profile(name: str | Profile | None = None) -> Profile:
    """The named profile (``None`` -> ``default``); a :class:`Profile` is returned as is. Unknown names raise
    :class:`~celebref.errors.UnknownNameError` with "did you mean"."""
    if isinstance(name, Profile):
        return name
    profile = PROFILES.get("default" if name is None else str(name))
    if not isinstance(profile, Profile):
        raise ConfigError(f"metric profile {name!r} is a {type(profile).__name__}, not an evaluation.profiles.Profile")
    return profile
