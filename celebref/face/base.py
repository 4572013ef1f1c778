"""The face-analysis contract shared by every backend.

Conventions (all backends):

* images are the toolkit's canonical arrays: ``uint8``, ``(H, W, 3)``, **RGB** (see :mod:`celebref.imageio`);
* coordinates are **pixel-index** coordinates ``(x, y)``: x to the right, y down, ``(0, 0)`` the centre of the
  top-left pixel;
* a :class:`Detection` box is ``(x1, y1, x2, y2)`` in those coordinates (floats); ``points5`` are, in this
  order, the centre of the eye on the image's left, the centre of the eye on the image's right, the nose,
  the mouth corner on the image's left and the mouth corner on the image's right (the ArcFace/RetinaFace order);
* 68-point landmarks are ``(68, 2) float64`` in the iBUG 300-W order (0-16 jaw from the image's left,
  17-26 eyebrows, 27-35 nose, 36-47 eyes with 36/45 the outer corners, 48-67 mouth);
* embeddings are ``(D,) float32`` vectors with unit L2 norm; :meth:`FaceBackend.distance` is the Euclidean
  distance between two such vectors (``0`` identical, ``2`` opposite; ``sqrt(2 - 2 cos)``), and
  :attr:`FaceBackend.same_identity_threshold` is the distance below which two faces are called the same person.

Every detection carries ``backend`` and ``model`` (which made it) and every backend exposes
:attr:`FaceBackend.models` (model file names with a sha256 prefix) so outputs can record their provenance.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from ..errors import CelebrefError


class FaceAnalysisError(CelebrefError):
    """A face-analysis backend cannot run (missing package or model files) or got unusable input."""


@dataclass(frozen=True, eq=False)  # eq=False: compared by identity (numpy fields make == ambiguous)
class Detection:
    """One detected face.

    ``box``: ``(x1, y1, x2, y2)`` floats, pixel-index coordinates. ``score``: detector confidence (its scale is
    the detector's own: a probability for RetinaFace, an SVM/MMOD margin for dlib). ``points5``: ``(5, 2)``
    float64 in the order documented in :mod:`celebref.face.base`, or ``None`` when the detector gives none.
    ``backend`` / ``model``: who produced it (e.g. ``"dlib"`` / ``"hog"``).
    """

    box: tuple[float, float, float, float]
    score: float
    points5: np.ndarray | None = None
    backend: str = ""
    model: str = ""

    @property
    def width(self) -> float:
        return float(self.box[2] - self.box[0])

    @property
    def height(self) -> float:
        return float(self.box[3] - self.box[1])

    @property
    def area(self) -> float:
        return max(self.width, 0.0) * max(self.height, 0.0)

    def to_dict(self) -> dict:
        """A JSON-ready record (box, score, points5, backend, model)."""
        return {
            "box": [float(v) for v in self.box],
            "score": float(self.score),
            "points5": None if self.points5 is None else np.asarray(self.points5, dtype=float).tolist(),
            "backend": self.backend,
            "model": self.model,
        }


def check_image(img: np.ndarray) -> np.ndarray:
    """Validate a canonical RGB uint8 ``(H, W, 3)`` array; returns it C-contiguous."""
    if not isinstance(img, np.ndarray):
        raise FaceAnalysisError(f"expected a numpy image array, got {type(img).__name__}")
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        raise FaceAnalysisError(
            f"expected an RGB uint8 array of shape (H, W, 3), got dtype {img.dtype} shape {tuple(img.shape)}"
        )
    if img.shape[0] < 1 or img.shape[1] < 1:
        raise FaceAnalysisError(f"empty image of shape {tuple(img.shape)}")
    return np.ascontiguousarray(img)


def largest(dets: Sequence[Detection]) -> Detection | None:
    """The detection with the largest box area (ties: the higher score, then the first)."""
    if not dets:
        return None
    return max(dets, key=lambda d: (d.area, d.score))


def l2_normalise(v: np.ndarray) -> np.ndarray:
    """``v / ||v||`` as float32 along the last axis (a zero vector stays zero)."""
    v = np.asarray(v, dtype=np.float64)
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return (v / np.where(n > 0, n, 1.0)).astype(np.float32)


class LazyModel:
    """Loads a model once, on first use, under a lock (safe to share between threads)."""

    def __init__(self, loader: Callable[[], object]):
        self._loader = loader
        self._value: object | None = None
        self._lock = threading.Lock()

    def get(self) -> object:
        if self._value is None:
            with self._lock:
                if self._value is None:
                    self._value = self._loader()
        return self._value

    @property
    def loaded(self) -> bool:
        return self._value is not None


class FaceBackend:
    """Base class of face-analysis backends. Subclasses implement :meth:`detect`, :meth:`landmarks68`,
    :meth:`embed` and :meth:`embed_aligned`; the batched variants default to a loop and may be overridden
    with real batching. See the module docstring for every convention."""

    #: short backend name, recorded with every output
    name: str = "base"
    #: embedding length
    embedding_dim: int = 0
    #: Euclidean distance between unit-norm embeddings below which two faces are called the same person
    same_identity_threshold: float = 1.0
    #: keyword options the constructor accepts (:func:`celebref.face.get_backend` refuses others; ``None``: not declared)
    option_names: tuple[str, ...] | None = None
    #: how :func:`celebref.face.get_backend` chose this backend (e.g. ``"auto -> dlib (insightface unavailable: ...)"``)
    selection: str = ""

    @property
    def models(self) -> dict[str, str]:
        """Model ids this backend uses, ``{role: "file-name@sha256-prefix"}`` (recorded with outputs)."""
        return {}

    # --- single image ------------------------------------------------------------------------
    def detect(self, img: np.ndarray) -> list[Detection]:
        """All faces in ``img``, highest score first."""
        raise NotImplementedError

    def landmarks68(self, img: np.ndarray, det: Detection) -> np.ndarray:
        """68 points ``(68, 2) float64`` for the face ``det`` of ``img``."""
        raise NotImplementedError

    def embed(self, img: np.ndarray, det: Detection) -> np.ndarray:
        """Unit-norm identity embedding ``(D,) float32`` of the face ``det`` of ``img``."""
        raise NotImplementedError

    def embed_aligned(self, img: np.ndarray) -> np.ndarray:
        """Embedding of an already-aligned face crop (e.g. a 512x512 FFHQ-aligned face)."""
        raise NotImplementedError

    def detect_landmarks68(self, img: np.ndarray) -> np.ndarray | None:
        """68 points of the largest face in ``img``, or ``None`` when no face is found."""
        det = largest(self.detect(img))
        return None if det is None else self.landmarks68(img, det)

    def distance(self, a: np.ndarray, b: np.ndarray) -> float:
        """Euclidean distance between two embeddings after L2 normalisation (0 = identical, max 2)."""
        a = l2_normalise(np.asarray(a).ravel()).astype(np.float64)
        b = l2_normalise(np.asarray(b).ravel()).astype(np.float64)
        if a.shape != b.shape:
            raise FaceAnalysisError(f"embeddings of different lengths: {a.shape[0]} vs {b.shape[0]}")
        return float(np.linalg.norm(a - b))

    def same_identity(self, a: np.ndarray, b: np.ndarray) -> bool:
        """``distance(a, b) < same_identity_threshold``."""
        return self.distance(a, b) < self.same_identity_threshold

    # --- batched -----------------------------------------------------------------------------
    def detect_batch(self, images: Sequence[np.ndarray]) -> list[list[Detection]]:
        return [self.detect(img) for img in images]

    def landmarks68_batch(self, images: Sequence[np.ndarray], dets: Sequence[Detection]) -> list[np.ndarray]:
        _same_length(images, dets)
        return [self.landmarks68(img, d) for img, d in zip(images, dets)]

    def detect_landmarks68_batch(self, images: Sequence[np.ndarray]) -> list[np.ndarray | None]:
        return [self.detect_landmarks68(img) for img in images]

    def embed_batch(self, images: Sequence[np.ndarray], dets: Sequence[Detection]) -> np.ndarray:
        """``(N, D) float32`` embeddings, one per (image, detection) pair."""
        _same_length(images, dets)
        out = [self.embed(img, d) for img, d in zip(images, dets)]
        return np.stack(out) if out else np.zeros((0, self.embedding_dim), np.float32)

    def embed_aligned_batch(self, images: Sequence[np.ndarray]) -> np.ndarray:
        out = [self.embed_aligned(img) for img in images]
        return np.stack(out) if out else np.zeros((0, self.embedding_dim), np.float32)

    # --- provenance ----------------------------------------------------------------------------
    def describe(self) -> dict:
        """``{"backend": name, "models": {...}, "same_identity_threshold": t}`` for recording with outputs."""
        return {"backend": self.name, "models": dict(self.models), "same_identity_threshold": self.same_identity_threshold}

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} models={sorted(self.models)}>"


def _same_length(a: Sequence, b: Sequence) -> None:
    if len(a) != len(b):
        raise FaceAnalysisError(f"got {len(a)} images but {len(b)} detections")
