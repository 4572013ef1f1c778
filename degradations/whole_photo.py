"""Seeded degradation presets on whole photos (``celebref degrade --whole-photo``), for synthetic whole-photo
benchmarks made from any HQ photo collection.

The recipe is applied to the photo exactly as to an aligned face: the same preset, the same per-image draws from
``(seed, photo id)``, the same pixel-level parameters (blur kernels in pixels, downscale factors, noise levels, JPEG
qualities), so the same command on the same photos gives the same bytes. Because the parameters are in pixels and a
face in a photo is usually smaller than a 512 crop, a face in a degraded photo is degraded more, relative to its
size, than an aligned 512 face with the same draw; record the photos' face sizes (``celebref restore --whole-photo``
writes them in ``faces.csv``) when comparing the two settings.

What differs from a face test set: the LQ keeps the photo's size and aspect (``lq_size`` must be ``"gt"`` or
``"native"``: a square ``N`` would distort the photo) and no per-identity reference folders are written (photos
have no identity grouping). The output is a normal degrade folder (``lq/<id>.png``, ``manifest.csv``), which
``celebref restore --whole-photo`` and ``celebref evaluate --whole-photo`` read, pairing by photo id.
"""

from __future__ import annotations

from typing import Any

from celebref.errors import ConfigError

WHOLE_PHOTO_LQ_SIZES = ("gt", "native")


def whole_photo_options(job: Any, options: dict[str, Any]) -> dict[str, Any]:
    """Check that ``job`` (a :class:`degradations.synthesize.Job`) suits whole photos and return the
    :func:`degradations.synthesize.synthesize` keyword ``options`` for them (no reference folders)."""
    if job.lq_size not in WHOLE_PHOTO_LQ_SIZES:
        raise ConfigError(f"whole photos keep their size and aspect: lq_size must be gt or native, got {job.lq_size!r}")
    return {**options, "refs": "none"}


def synthesize_photos(inputs: Any, out: Any, job: Any, **options: Any) -> Any:
    """Degrade every photo of ``inputs`` (a folder, manifest or :class:`celebref.testset.HQSet`) into ``out``;
    returns the manifest (one row per photo, rejections with their reason)."""
    from .synthesize import synthesize

    return synthesize(inputs, out, job, **whole_photo_options(job, options))
