"""The ``asffnet:key=value`` parameters (kept apart from the network: listing methods imports no torch)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from baselines.params import _check_face_backend, _face_backend

__all__ = ["ASFFNetParams"]


@dataclass(frozen=True)
class ASFFNetParams:
    """``asffnet`` (specific restoration with >= 2 references of the same identity)."""

    face_backend: str = _face_backend()
    selection: Literal["landmarks", "first"] = "landmarks"
    "which reference guides: 'landmarks' (official: best affine fit of eyes+brows and mouth to the LQ's) or 'first'"
    max_references: int = 0
    "consider only the first N references of the identity, in file-name order (0: all of them, as the official code)"

    def validate(self) -> None:
        _check_face_backend(self.face_backend)
        if self.max_references < 0:
            raise ValueError(f"parameter 'max_references' must be >= 0, got {self.max_references}")
        if self.max_references == 1:
            raise ValueError("parameter 'max_references' must be 0 or >= 2 (the official code needs >= 2 references)")
