"""Plumbing shared by the methods driven by 68-point landmarks on an aligned face (DMDNet, DFDNet).

* :meth:`LandmarkMethod.from_network`: a loaded method around an existing network (tests, benchmarks);
* :meth:`LandmarkMethod._detect`: the 68 landmarks from the face-analysis backend named by the method's
  ``face_backend`` parameter (``auto``: :func:`celebref.face.get_backend`'s choice) when the input has none;
* :func:`scale_landmarks`: landmarks follow an image resized to ``size`` x ``size`` (the official recipes
  upscale a small input to 512x512 before finding the component boxes);
* :meth:`LandmarkMethod._landmark_failure`: the landmark-failure policy for an input whose landmarks are
  missing or unusable (``skip``: no output with the failure status; ``input`` and ``generic``: the input is
  copied with status ``fallback_input``, since neither network has a landmark-free mode; the reason says so).

Landmarks are ``(68, 2)`` arrays of ``(x, y)`` pixel coordinates in iBUG 300-W order.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from .base import STATUS_FALLBACK_INPUT, RestorationMethod, RestoreItem, RestoreResult

FACE_SIZE = 512


def scale_landmarks(landmarks: np.ndarray, shape: tuple[int, ...], size: int = FACE_SIZE) -> np.ndarray:
    """Landmarks on an image of ``shape`` ``(h, w, ...)`` -> on that image resized to ``size`` x ``size``
    (float64, ``x * size / w``, ``y * size / h``); returned unchanged when the image already has that size."""
    h, w = shape[:2]
    if (h, w) == (size, size):
        return landmarks
    return np.asarray(landmarks, dtype=np.float64) * np.array([size / w, size / h])


class LandmarkMethod(RestorationMethod):
    """Base of the landmark-driven networks: subclasses set ``net`` in :meth:`load` and name the reason the
    ``generic`` policy cannot apply in :attr:`no_generic_reason`."""

    needs_landmarks: ClassVar[bool] = True
    input_size: ClassVar[int | None] = FACE_SIZE
    #: why policy ``generic`` falls back to copying the input (completes "policy 'generic': ..., so the input is copied")
    no_generic_reason: ClassVar[str] = "the method has no landmark-free mode"

    net: Any = None

    @classmethod
    def from_network(cls, net: Any, **kwargs: Any) -> "LandmarkMethod":
        """A loaded method around an existing network (tests, benchmarks, synthetic weights); ``kwargs`` as for
        the constructor. The network is moved to the method's device and put in evaluation mode."""
        m = cls(**kwargs)
        m.net = net.to(m.device).eval()
        m.loaded = True
        return m

    def _detect(self, img: np.ndarray) -> np.ndarray | None:
        """68 landmarks of the largest face of ``img`` (RGB uint8) from the ``face_backend`` parameter's backend,
        or ``None`` when no face is found."""
        from celebref.face import get_backend

        name = self.params.get("face_backend") or None
        return get_backend(None if name == "auto" else name).detect_landmarks68(img)

    def _landmark_failure(self, item: RestoreItem, status: str, reason: str) -> RestoreResult:
        """The result for ``item`` whose landmarks failed with ``status``/``reason``, under the landmark policy."""
        if self.landmark_policy == "skip":
            return RestoreResult(item.id, None, status, reason)
        note = (f" (policy 'generic': {self.no_generic_reason}, so the input is copied)"
                if self.landmark_policy == "generic" else "")
        return RestoreResult(item.id, np.array(item.image, copy=True), STATUS_FALLBACK_INPUT, f"{status}: {reason}{note}")
