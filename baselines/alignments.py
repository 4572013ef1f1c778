"""Face alignments for whole photos, by name: how each method's training crops were made from a photo.

:data:`ALIGNMENTS` is a :class:`celebref.registry.Registry` (entry-point group ``celebref.alignments``). Every
entry is a function ``align(img, points5, landmarks68, size) -> (crop, matrix)``:

* ``img``: the photo, RGB uint8 ``(H, W, 3)``;
* ``points5``: ``(5, 2)`` float pixel coordinates of the photo in the FFHQ 5-point template's order (eye centres,
  nose tip, mouth corners; :func:`celebref.face.templates.points5_from_68`), or ``None``;
* ``landmarks68``: ``(68, 2)`` iBUG landmarks in the photo's pixel coordinates, or ``None``;
* ``crop``: RGB uint8 ``(size, size, 3)``; ``matrix``: the 2x3 affine photo -> crop (pixel coordinates).

The entry's ``needs`` (``"points5"`` or ``"landmarks68"``) says which of the two it reads. A method names its
alignment in its class attribute ``alignment`` (default ``ffhq5``); :func:`alignment_of` reads it.

Entries: ``ffhq5`` (facexlib's FFHQ 5-point template: GFPGAN, CodeFormer), ``ffhq68`` (the FFHQ dataset
alignment from 68 landmarks: DMDNet / CelebRef-HQ) and ``dfdnet`` (DFDNet's official ``test_FaceDict.py``
template alignment from 5 of the 68 landmarks).
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from celebref.errors import ConfigError
from celebref.registry import Registry

__all__ = ["ALIGNMENTS", "AlignFn", "align", "alignment_of"]

AlignFn = Callable[[np.ndarray, "np.ndarray | None", "np.ndarray | None", int], "tuple[np.ndarray, np.ndarray]"]

ALIGNMENTS = Registry("alignment", group="celebref.alignments")


def _need(arr: np.ndarray | None, what: str, name: str) -> np.ndarray:
    if arr is None:
        raise ConfigError(f"alignment {name!r} needs {what} of the face")
    return np.asarray(arr, dtype=np.float64)


def align_ffhq5(img: np.ndarray, points5: np.ndarray | None, landmarks68: np.ndarray | None, size: int = 512
                ) -> tuple[np.ndarray, np.ndarray]:
    """facexlib's FFHQ 5-point template crop (:func:`celebref.face.templates.ffhq5_align`)."""
    from celebref.face.templates import ffhq5_align, points5_from_68

    p5 = points5 if points5 is not None else (None if landmarks68 is None else points5_from_68(landmarks68))
    return ffhq5_align(img, _need(p5, "5 points (or 68 landmarks)", "ffhq5"), size)


def align_ffhq68(img: np.ndarray, points5: np.ndarray | None, landmarks68: np.ndarray | None, size: int = 512
                 ) -> tuple[np.ndarray, np.ndarray]:
    """The FFHQ dataset alignment from 68 landmarks (:func:`celebref.face.align.ffhq_align`)."""
    from celebref.face.align import ffhq_align

    r = ffhq_align(img, _need(landmarks68, "68 landmarks", "ffhq68"), size)
    return r.image, r.matrix


def align_dfdnet(img: np.ndarray, points5: np.ndarray | None, landmarks68: np.ndarray | None, size: int = 512
                 ) -> tuple[np.ndarray, np.ndarray]:
    """DFDNet's official template alignment from five of the 68 landmarks (:mod:`baselines.dfdnet.align`)."""
    from baselines.dfdnet.align import align_face, five_points_from_68

    return align_face(img, five_points_from_68(_need(landmarks68, "68 landmarks", "dfdnet")), size)


ALIGNMENTS.register("ffhq5", "baselines.alignments:align_ffhq5", needs="points5", tags=("template",),
                    description="facexlib FFHQ 5-point template, similarity by LMEDS (GFPGAN, CodeFormer)")
ALIGNMENTS.register("ffhq68", "baselines.alignments:align_ffhq68", needs="landmarks68", tags=("landmarks",),
                    description="FFHQ dataset alignment from 68 landmarks (DMDNet, CelebRef-HQ)")
ALIGNMENTS.register("dfdnet", "baselines.alignments:align_dfdnet", needs="landmarks68", tags=("template",),
                    description="DFDNet's official test_FaceDict.py template alignment from 5 of the 68 landmarks")


def alignment_of(method: Any) -> str:
    """The canonical alignment name ``method`` declares (class attribute ``alignment``; default ``ffhq5``);
    :class:`~celebref.errors.ConfigError` naming the known ones when it is not registered."""
    kind = getattr(method, "alignment", "ffhq5")
    try:
        return ALIGNMENTS.resolve(kind)
    except ConfigError as e:
        raise ConfigError(f"method {getattr(method, 'name', method)!r} declares alignment {kind!r}: {e}") from None


def align(kind: str, img: np.ndarray, points5: np.ndarray | None, landmarks68: np.ndarray | None, size: int = 512
          ) -> tuple[np.ndarray, np.ndarray]:
    """``(crop, matrix photo -> crop)`` of one face with the registered alignment ``kind``."""
    fn: AlignFn = ALIGNMENTS.get(kind)
    return fn(img, points5, landmarks68, size)
