"""The ``NAME:key=value`` parameters of each shipped restoration method, as frozen dataclasses.

Kept apart from the method modules so that listing methods and parsing ``--methods`` specs imports no torch
model. Each method class points at its dataclass (``RestorationMethod.Params``) and the method registry
(:mod:`baselines.registry`) declares the same one; a string literal after a field is its help text (shown by
``celebref list methods``). Values given as strings are typed by :func:`celebref.params.build_params`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["CodeFormerParams", "DFDNetParams", "DMDNetParams", "DMDNetSpecificParams", "GFPGANParams"]


def _face_backend() -> Any:
    return field(default="auto", metadata={
        "help": "face-analysis backend that finds the 68 landmarks when the input has none "
                "('auto', 'dlib', 'insightface' or a plugin backend; see `celebref list backends`)"})


def _check_face_backend(name: str) -> None:
    from celebref.face import FACE_BACKENDS

    if name != "auto" and name not in FACE_BACKENDS:
        known = ", ".join(["auto", *FACE_BACKENDS.names()])
        raise ValueError(f"parameter 'face_backend' must be one of {known}, got {name!r}")


@dataclass(frozen=True)
class DMDNetParams:
    """``dmdnet`` (generic restoration)."""

    face_backend: str = _face_backend()

    def validate(self) -> None:
        _check_face_backend(self.face_backend)


@dataclass(frozen=True)
class DMDNetSpecificParams:
    """``dmdnet-specific`` (restoration with >= 2 references of the same identity)."""

    face_backend: str = _face_backend()
    dict_cache: int = 4
    "identities whose specific dictionaries stay cached (LRU)"
    ref_chunk: int = 0
    "encode the references this many at a time to bound memory (0: all at once, as the official code)"

    def validate(self) -> None:
        _check_face_backend(self.face_backend)
        if self.dict_cache < 1:
            raise ValueError(f"parameter 'dict_cache' must be >= 1, got {self.dict_cache}")
        if self.ref_chunk < 0:
            raise ValueError(f"parameter 'ref_chunk' must be >= 0, got {self.ref_chunk}")


@dataclass(frozen=True)
class DFDNetParams:
    """``dfdnet``."""

    face_backend: str = _face_backend()
    matching: Literal["fast", "reference"] = "fast"
    "atom matching: 'fast' (precomputed atom statistics) or 'reference' (the official per-crop formulation)"
    channels_last: bool = True
    "NHWC layout for the large convolutions (faster on CPU; false gives the official NCHW run bit for bit)"

    def validate(self) -> None:
        _check_face_backend(self.face_backend)


@dataclass(frozen=True)
class GFPGANParams:
    """``gfpgan``."""

    seed: int | None = None
    "none: the noise maps stored in the checkpoint (deterministic); N: N(0, 1) noise seeded by (N, image id)"


@dataclass(frozen=True)
class CodeFormerParams:
    """``codeformer``."""

    w: float = 0.5
    "fidelity weight in [0, 1] (0: codebook only, 1: most faithful; 0.5 is the official default)"

    def validate(self) -> None:
        if not 0.0 <= self.w <= 1.0:
            raise ValueError(f"parameter 'w' must be a number in [0, 1], got {self.w!r}")
