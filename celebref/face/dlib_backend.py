"""dlib face analysis: HOG or CNN (MMOD) detector, 5- and 68-point shape predictors, 128-d ResNet descriptor.

Works fully offline with the ``dlib`` extra (``dlib-bin`` + ``face-recognition-models``; dlib is
Boost-licensed; the 68-point predictor was trained on iBUG 300-W, whose terms exclude commercial use — see
``celebref weights list`` for each model file's licence). ``face_recognition_models`` is **not imported** (its
``__init__`` imports ``pkg_resources``, which setuptools >= 81 removed): its ``models/*.dat`` files are found
with :func:`importlib.util.find_spec`. ``CELEBREF_DLIB_MODELS`` may point at another folder holding the same
file names.

Conventions (see :mod:`celebref.face.base` for the shared ones):

* boxes are dlib rectangles as floats ``(left, top, right, bottom)`` (dlib's right/bottom are the last pixel
  inside the box, so they round-trip exactly);
* ``points5`` come from the 68-point predictor: eye centres (mean of 36-41 / 42-47), nose tip (30), mouth corners
  (48, 54);
* embeddings are dlib's face descriptor computed from the **5-point** shape (``padding=0.25``, no jitter), then
  L2-normalised. dlib's raw descriptors are *not* unit norm (their norm is about 1.5: 1.44-1.66 on
  celebref-mini), and dlib's documented same-person threshold, 0.6, is on the raw Euclidean distance. Here
  :meth:`~DlibBackend.distance` is on the normalised vectors, so the matching threshold is 0.6 / 1.5 = 0.40
  (:attr:`~DlibBackend.same_identity_threshold`); :meth:`~DlibBackend.raw_descriptor` and
  :func:`raw_distance` give dlib's own convention (threshold :data:`RAW_THRESHOLD`).
"""

from __future__ import annotations

import importlib.util
import os
import threading
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np

from ..fsutil import sha256_file
from .base import Detection, FaceAnalysisError, FaceBackend, LazyModel, check_image, l2_normalise
from .templates import points5_from_68

MODEL_FILES = {
    "cnn": "mmod_human_face_detector.dat",
    "landmarks5": "shape_predictor_5_face_landmarks.dat",
    "landmarks68": "shape_predictor_68_face_landmarks.dat",
    "embedding": "dlib_face_recognition_resnet_model_v1.dat",
}

# Box that dlib's HOG detector (upsample 0) draws around an FFHQ-aligned face, as fractions of the image side
# (mean over the 76 aligned 512x512 faces of celebref-mini; std 1-3 % of the side). Used by
# :meth:`DlibBackend.embed_aligned` when the detector finds no face in an aligned crop.
ALIGNED_FACE_BOX = (0.188, 0.308, 0.791, 0.910)

#: dlib's documented same-person threshold on raw (unnormalised) descriptor distances
RAW_THRESHOLD = 0.6


def raw_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Euclidean distance between two raw dlib descriptors (dlib's convention; same person below 0.6)."""
    return float(np.linalg.norm(np.asarray(a, np.float64).ravel() - np.asarray(b, np.float64).ravel()))


# dlib-HOG-like box from 5 points (fitted on celebref-mini with points from its FAN landmark files: centre residual
# 10 px, side std 4 % at a 309 px side). Lets dlib's 68-point predictor, which was trained on HOG boxes, run on
# faces found by another detector (RetinaFace's boxes are taller and placed differently).
_BOX_CENTRE_ALONG_EYE_TO_MOUTH = 0.52
_BOX_SIDE_PER_EYE_AND_MOUTH_SPAN = 1.168


def box_from_points5(points5: np.ndarray) -> tuple[float, float, float, float]:
    """A square box as dlib's HOG detector would draw it, from ArcFace-order 5 points.

    Centre: the eye midpoint plus 0.52 of the eye-midpoint-to-mouth-midpoint vector; side: 1.168 x (eye distance +
    eye-to-mouth distance). Returns ``(x1, y1, x2, y2)`` floats.
    """
    p = np.asarray(points5, dtype=np.float64).reshape(5, 2)
    eyes, mouth = (p[0] + p[1]) / 2, (p[3] + p[4]) / 2
    centre = eyes + _BOX_CENTRE_ALONG_EYE_TO_MOUTH * (mouth - eyes)
    side = _BOX_SIDE_PER_EYE_AND_MOUTH_SPAN * (np.linalg.norm(p[1] - p[0]) + np.linalg.norm(mouth - eyes))
    half = side / 2
    return (float(centre[0] - half), float(centre[1] - half), float(centre[0] + half), float(centre[1] + half))


def dlib_model_dir() -> Path:
    """Folder holding dlib's ``.dat`` model files (``CELEBREF_DLIB_MODELS`` or face-recognition-models')."""
    env = os.environ.get("CELEBREF_DLIB_MODELS")
    if env:
        return Path(env)
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise FaceAnalysisError(
            "dlib model files not found: install the dlib extra (pip install 'celebref[dlib]', which brings "
            "face-recognition-models) or set CELEBREF_DLIB_MODELS to a folder with "
            + ", ".join(sorted(MODEL_FILES.values()))
        )
    return Path(list(spec.submodule_search_locations)[0]) / "models"


def dlib_model_path(role: str) -> Path:
    path = dlib_model_dir() / MODEL_FILES[role]
    if not path.is_file():
        raise FaceAnalysisError(f"dlib model file {MODEL_FILES[role]} not found at {path}")
    return path


@lru_cache(maxsize=None)
def _model_id(path: str, size: int, mtime: float) -> str:
    return f"{Path(path).name}@sha256:{sha256_file(path)[:12]}"


def model_id(path: Path) -> str:
    """``"<file name>@sha256:<first 12 hex digits>"`` (hashed once per process)."""
    st = path.stat()
    return _model_id(str(path), st.st_size, st.st_mtime)


def _import_dlib():
    try:
        import dlib  # noqa: PLC0415
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise FaceAnalysisError("the dlib backend needs the dlib extra: pip install 'celebref[dlib]'") from exc
    return dlib


class DlibBackend(FaceBackend):
    """dlib backend. ``detector``: ``"hog"`` (default; fast frontal detector) or ``"cnn"`` (MMOD CNN, slower on
    CPU, more robust to pose). ``upsample``: how many times the detector doubles the image first (0 finds faces
    of about 80x80 px and larger; 1 about 40x40)."""

    name = "dlib"
    option_names = ("detector", "upsample")
    embedding_dim = 128
    #: on L2-normalised descriptors: dlib's raw 0.6 divided by the typical raw norm (1.5). On celebref-mini
    #: (578 same / 2272 different pairs) same-identity distances are 0.263 +- 0.044 (max 0.397), different
    #: 0.572 +- 0.054 (min 0.345); at 0.40 every same pair matches and 7 different pairs (0.3 %) do too.
    same_identity_threshold = 0.40

    def __init__(self, detector: str = "hog", upsample: int = 0):
        if detector not in ("hog", "cnn"):
            raise FaceAnalysisError(f"unknown dlib detector {detector!r} (choose 'hog' or 'cnn')")
        if upsample < 0:
            raise FaceAnalysisError(f"upsample must be >= 0, got {upsample}")
        self.detector_kind = detector
        self.upsample = int(upsample)
        dlib = _import_dlib()
        self._dlib = dlib
        self._lock = threading.Lock()  # dlib's networks keep per-call buffers: one call at a time per model
        self._detector = LazyModel(
            dlib.get_frontal_face_detector
            if detector == "hog"
            else (lambda: dlib.cnn_face_detection_model_v1(str(dlib_model_path("cnn"))))
        )
        self._sp5 = LazyModel(lambda: dlib.shape_predictor(str(dlib_model_path("landmarks5"))))
        self._sp68 = LazyModel(lambda: dlib.shape_predictor(str(dlib_model_path("landmarks68"))))
        self._rec = LazyModel(lambda: dlib.face_recognition_model_v1(str(dlib_model_path("embedding"))))
        self._models: dict[str, str] | None = None
        # fail early, with a clear message, when the model files are missing
        for role in ("landmarks5", "landmarks68", "embedding") + (("cnn",) if detector == "cnn" else ()):
            dlib_model_path(role)

    @property
    def detector_model(self) -> str:
        return "hog" if self.detector_kind == "hog" else "mmod"

    @property
    def models(self) -> dict[str, str]:
        if self._models is None:
            det = (
                f"dlib-{self._dlib.__version__}:frontal_face_detector(hog)"
                if self.detector_kind == "hog"
                else model_id(dlib_model_path("cnn"))
            )
            self._models = {
                "detector": f"{det};upsample={self.upsample}",
                "landmarks5": model_id(dlib_model_path("landmarks5")),
                "landmarks68": model_id(dlib_model_path("landmarks68")),
                "embedding": model_id(dlib_model_path("embedding")),
            }
        return dict(self._models)

    # --- helpers -------------------------------------------------------------------------------
    def _rect(self, det: Detection):
        x1, y1, x2, y2 = (int(round(float(v))) for v in det.box)
        return self._dlib.rectangle(x1, y1, x2, y2)

    def _shape(self, predictor: LazyModel, img: np.ndarray, det: Detection):
        model = predictor.get()
        with self._lock:
            return model(img, self._rect(det))

    @staticmethod
    def _points(shape) -> np.ndarray:
        return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)

    points5_from_68 = staticmethod(points5_from_68)  # eye centres, nose tip (30), mouth corners (48, 54)

    def _make(self, box, score: float, img: np.ndarray) -> Detection:
        det = Detection(tuple(float(v) for v in box), float(score), None, self.name, self.detector_model)
        p5 = self.points5_from_68(self._points(self._shape(self._sp68, img, det)))
        return Detection(det.box, det.score, p5, self.name, self.detector_model)

    # --- API -----------------------------------------------------------------------------------
    def detect(self, img: np.ndarray) -> list[Detection]:
        img = check_image(img)
        model = self._detector.get()
        with self._lock:
            if self.detector_kind == "hog":
                rects, scores, _ = model.run(img, self.upsample, 0.0)
                found = [((r.left(), r.top(), r.right(), r.bottom()), s) for r, s in zip(rects, scores)]
            else:
                found = [
                    ((m.rect.left(), m.rect.top(), m.rect.right(), m.rect.bottom()), m.confidence)
                    for m in model(img, self.upsample)
                ]
        dets = [self._make(box, score, img) for box, score in found]
        return sorted(dets, key=lambda d: -d.score)

    def detect_batch(self, images: Sequence[np.ndarray]) -> list[list[Detection]]:
        images = [check_image(im) for im in images]
        if self.detector_kind != "cnn" or len(images) < 2 or len({im.shape for im in images}) != 1:
            return [self.detect(im) for im in images]
        model = self._detector.get()  # the CNN detector batches same-sized images in one forward pass
        with self._lock:
            batches = model(images, self.upsample, batch_size=len(images))
        out = []
        for img, found in zip(images, batches):
            dets = [
                self._make((m.rect.left(), m.rect.top(), m.rect.right(), m.rect.bottom()), m.confidence, img)
                for m in found
            ]
            out.append(sorted(dets, key=lambda d: -d.score))
        return out

    def landmarks68(self, img: np.ndarray, det: Detection) -> np.ndarray:
        img = check_image(img)
        return self._points(self._shape(self._sp68, img, det))

    def landmarks5_dlib(self, img: np.ndarray, det: Detection) -> np.ndarray:
        """dlib's own 5-point shape (two corners per eye, nose base), in dlib's order."""
        img = check_image(img)
        return self._points(self._shape(self._sp5, img, det))

    def raw_descriptor(self, img: np.ndarray, det: Detection) -> np.ndarray:
        """dlib's unnormalised 128-d descriptor (5-point shape, padding 0.25, no jitter), float64."""
        img = check_image(img)
        shape = self._shape(self._sp5, img, det)
        rec = self._rec.get()
        with self._lock:
            return np.asarray(rec.compute_face_descriptor(img, shape, 0), dtype=np.float64)

    def embed(self, img: np.ndarray, det: Detection) -> np.ndarray:
        return l2_normalise(self.raw_descriptor(img, det))

    def embed_batch(self, images: Sequence[np.ndarray], dets: Sequence[Detection]) -> np.ndarray:
        if len(images) != len(dets):
            raise FaceAnalysisError(f"got {len(images)} images but {len(dets)} detections")
        if not images:
            return np.zeros((0, self.embedding_dim), np.float32)
        images = [check_image(im) for im in images]
        shapes = [self._shape(self._sp5, im, d) for im, d in zip(images, dets)]
        rec = self._rec.get()
        batch_shapes = []
        for s in shapes:
            fod = self._dlib.full_object_detections()
            fod.append(s)
            batch_shapes.append(fod)
        with self._lock:
            descs = rec.compute_face_descriptor(images, batch_shapes, 0)
        return l2_normalise(np.array([np.asarray(d[0], dtype=np.float64) for d in descs]))

    def aligned_detection(self, img: np.ndarray) -> Detection:
        """The face of an aligned crop: the detector's largest face, else :data:`ALIGNED_FACE_BOX` scaled to the
        image (``score`` NaN, ``model`` ``"aligned-prior"``)."""
        dets = self.detect(img)
        if dets:
            return max(dets, key=lambda d: (d.area, d.score))
        h, w = img.shape[:2]
        fx1, fy1, fx2, fy2 = ALIGNED_FACE_BOX
        return Detection((fx1 * w, fy1 * h, fx2 * w, fy2 * h), float("nan"), None, self.name, "aligned-prior")

    def embed_aligned(self, img: np.ndarray) -> np.ndarray:
        img = check_image(img)
        return self.embed(img, self.aligned_detection(img))

    def embed_aligned_batch(self, images: Sequence[np.ndarray]) -> np.ndarray:
        images = [check_image(im) for im in images]
        return self.embed_batch(images, [self.aligned_detection(im) for im in images])
