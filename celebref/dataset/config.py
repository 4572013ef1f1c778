"""Settings of ``celebref build`` and ``celebref verify``: every default is defined here once.

The CLI (:mod:`celebref.app.commands.build`, ``verify``) reads its defaults from these dataclasses with
:func:`default_of`; the library validates them and names the **parameters** (``workers``, not ``--workers``) in
its errors. Thresholds left at ``None`` take the backend's calibrated defaults (see :meth:`BuildConfig.resolved`).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .stages import AnalysisSettings

#: what to do with two person folders whose dominant identities are the same person (distance < merge_threshold)
ON_COLLISION = ("merge", "flag", "reject")


def default_workers() -> int:
    """The number of CPU cores, at most 8."""
    return max(1, min(8, os.cpu_count() or 1))


@dataclass(frozen=True)
class CheckConfig:
    """The identity, duplicate and quality checks shared by build and verify.

    Distances are Euclidean between unit-norm embeddings. ``identity_threshold`` ``None`` = the backend's
    ``same_identity_threshold`` (dlib: 0.40 on normalised descriptors = dlib's 0.6 on raw ones);
    ``collision_threshold`` ``None`` = the identity threshold; ``merge_threshold`` ``None`` = half of it;
    ``near_dup_distance`` ``None`` = half of it. ``max_yaw``: the largest accepted |yaw index| in degrees
    (:func:`celebref.dataset.quality.yaw_degrees`; 80 = the nose tip at 98.5 % of the half jaw width off-centre:
    near-profiles only. Calibrated by ``benchmarks/calibrate_pose.py``: celebref-mini's 76 released references
    reach 53 with dlib landmarks (58 with their own landmark files); 70 rejected usable three-quarter faces).
    """

    backend: str | None = None
    identity_threshold: float | None = None
    collision_threshold: float | None = None
    merge_threshold: float | None = None
    near_dup_distance: float | None = None
    near_dup_hash_bits: int = 10
    min_blur: float = 25.0
    max_yaw: float = 80.0
    use_cache: bool = True

    def identity_thresholds(self, be: Any) -> dict[str, float]:
        t = float(self.identity_threshold if self.identity_threshold is not None else be.same_identity_threshold)
        return {
            "identity_threshold": t,
            "collision_threshold": float(self.collision_threshold if self.collision_threshold is not None else t),
            "merge_threshold": float(self.merge_threshold if self.merge_threshold is not None else 0.5 * t),
            "near_dup_distance": float(self.near_dup_distance if self.near_dup_distance is not None else 0.5 * t),
            "near_dup_hash_bits": int(self.near_dup_hash_bits),
        }


@dataclass(frozen=True, kw_only=True)
class BuildConfig(CheckConfig):
    """Settings of one build (``crawl`` and ``out`` are required).

    ``on_collision``: two folders holding the same person (centroids closer than ``merge_threshold``):
    ``merge`` (default) records them as one identity named after the folder with the larger core, every
    file keeping its ``identity_folder`` and getting ``assigned_folder`` = that folder and ``collision_with``;
    ``flag`` keeps both identities (same split side) with the flag ``identity_collision`` on their files;
    ``reject`` rejects the smaller folder's files (``identity_collision``), the earlier default.
    """

    crawl: Path
    out: Path
    workers: int = field(default_factory=default_workers)
    overrides: Path | None = None
    seed: int = 0
    min_face_size: float = 256.0
    min_per_identity: int = 3
    max_per_identity: int = 21
    test_fraction: float = 0.1
    probes_per_identity: int = 1
    on_collision: str = "merge"
    cache_dir: Path | None = None
    command: str | None = None
    analysis: AnalysisSettings = field(default_factory=AnalysisSettings)

    def resolved(self, be: Any) -> dict:
        """The thresholds of this build with the backend's defaults filled in (recorded in ``build.json``)."""
        return {
            **self.identity_thresholds(be),
            "min_face_size": float(self.min_face_size),
            "min_blur": float(self.min_blur),
            "max_yaw": float(self.max_yaw),
            "min_per_identity": int(self.min_per_identity),
            "max_per_identity": int(self.max_per_identity),
            "test_fraction": float(self.test_fraction),
            "probes_per_identity": int(self.probes_per_identity),
            "seed": int(self.seed),
            "on_collision": self.on_collision,
        }

    def validate(self) -> None:
        if int(self.workers) < 1:
            raise ConfigError(f"workers must be >= 1, got {self.workers}")
        if self.min_per_identity < 1 or self.max_per_identity < self.min_per_identity:
            raise ConfigError(f"need 1 <= min_per_identity <= max_per_identity, got {self.min_per_identity}, {self.max_per_identity}")
        if not 0.0 <= self.test_fraction < 1.0:
            raise ConfigError(f"test_fraction must be in [0, 1), got {self.test_fraction}")
        if self.on_collision not in ON_COLLISION:
            raise ConfigError(f"on_collision must be one of {', '.join(ON_COLLISION)}, got {self.on_collision!r}")


def default_of(cls: type, name: str) -> Any:
    """The default value of field ``name`` of a config dataclass (what the CLI shows and uses)."""
    for f in dataclasses.fields(cls):
        if f.name == name:
            if f.default is not dataclasses.MISSING:
                return f.default
            if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
                return f.default_factory()  # type: ignore[misc]
            break
    raise KeyError(f"{cls.__name__} has no default for {name!r}")


@dataclass(frozen=True, kw_only=True)
class VerifyConfig(CheckConfig):
    """Settings of ``celebref verify``: audit ``dataset`` (CelebRef-HQ layout), write the report to ``out``."""

    dataset: Path
    out: Path
