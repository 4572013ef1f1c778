"""insightface face analysis through onnxruntime: RetinaFace ``det_10g`` detector and ArcFace ``w600k_r50``
recognition network from the ``buffalo_l`` pack (weight name ``insightface-buffalo_l``, a folder; its model files
are licensed for **non-commercial research only**). The ``insightface`` package itself is not needed: pre- and
post-processing are implemented here following insightface's ``RetinaFace`` and ``ArcFaceONNX`` model-zoo
classes (facts taken from them: input normalisation, strides, anchors, decoding, NMS, the ArcFace template).

* Detection: the image is resized (aspect kept, bilinear) to fit ``det_size`` (default 640x640), pasted at the
  top-left of a black canvas, normalised as ``(RGB - 127.5) / 128``; three stride levels (8, 16, 32) with two
  anchors per cell; boxes and 5 points decoded as distances from anchor centres times the stride; score
  threshold 0.5, greedy NMS at IoU 0.4 (areas counted with insightface's ``+1``).
* Embedding: the 5 points are mapped to the standard ArcFace 112x112 template by a least-squares similarity
  transform (Umeyama), the crop is warped bilinearly with a black border, normalised as ``(RGB - 127.5) / 127.5``
  and the 512-d output is L2-normalised. ``embedder="torch"`` runs the same network as a torch IResNet-50 fed
  from the ONNX file's initializers (:mod:`celebref.face.iresnet`) on ``device``; ``"auto"`` (default) does so
  when ``device`` is CUDA and keeps onnxruntime on the CPU (the two agree to ~1e-6 on unit embeddings,
  ``tests/test_arcface_torch.py``).
* 68 landmarks: buffalo_l has no 2D 68-point model in the iBUG layout that this module runs (it has 106-point
  ``2d106det`` and 3D ``1k3d68``), so :meth:`InsightFaceBackend.landmarks68` runs **dlib's** 68-point predictor on a
  HOG-like box derived from RetinaFace's 5 points (:func:`celebref.face.dlib_backend.box_from_points5`); the model
  is recorded as ``models["landmarks68"]``. This needs the dlib extra.

Distances are Euclidean between unit vectors, ``sqrt(2 - 2 cos)``. The default ``same_identity_threshold`` of 1.18
corresponds to cosine similarity 0.30, a value commonly used with w600k_r50; it has **not** been calibrated in
this project (no buffalo_l weights were available when it was written).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from .base import Detection, FaceAnalysisError, FaceBackend, LazyModel, check_image, l2_normalise

WEIGHT_NAME = "insightface-buffalo_l"
DETECTOR_FILE = "det_10g.onnx"
RECOGNITION_FILE = "w600k_r50.onnx"

#: ArcFace's 112x112 five-point template (eye on the image's left, other eye, nose tip, mouth corners)
ARCFACE_TEMPLATE = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
    dtype=np.float64,
)

# Mean 5 points of an FFHQ-aligned face, as fractions of the side (from the 76 aligned faces of celebref-mini,
# eye centres / nose tip / mouth corners of their 68-point files). Used by embed_aligned when RetinaFace finds
# no face in an aligned crop.
ALIGNED_POINTS5 = np.array(
    [[0.3729, 0.4687], [0.6208, 0.4701], [0.4988, 0.6301], [0.3932, 0.7363], [0.6037, 0.7393]], dtype=np.float64
)

_STRIDES = (8, 16, 32)
_NUM_ANCHORS = 2


def buffalo_dir() -> Path:
    """The extracted buffalo_l folder (raises :class:`celebref.errors.WeightError` with instructions if missing)."""
    from .. import weights  # noqa: PLC0415  (lazy: the weight store is optional for the dlib backend)

    return weights.weight_path(WEIGHT_NAME)


def missing_files() -> list[str]:
    """What is missing for this backend (empty when it can run): the pack's member files the weight store
    requires (all of buffalo_l's), at the location it resolves."""
    try:
        from .. import weights  # noqa: PLC0415

        path, _ = weights.resolve(WEIGHT_NAME)
        members = tuple(weights.get(WEIGHT_NAME).members) or (DETECTOR_FILE, RECOGNITION_FILE)
    except Exception as exc:  # noqa: BLE001 - any failure of the optional store means "not available"
        return [f"weight store unavailable ({exc})"]
    return [str(path / f) for f in members if not (path / f).is_file()]


# --- geometry (pure numpy; tested without weights) ----------------------------------------------------

def umeyama_similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity transform (rotation, uniform scale, translation; no reflection) mapping ``src``
    points onto ``dst`` points (Umeyama 1991). Returns the 2x3 matrix ``M`` with ``dst ~ M @ [x, y, 1]``."""
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 2 or len(src) < 2:
        raise FaceAnalysisError(f"need two matching (N>=2, 2) point sets, got {src.shape} and {dst.shape}")
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    cov = d.T @ s / len(src)
    u, sing, vt = np.linalg.svd(cov)
    sign = np.ones(2)
    if np.linalg.det(cov) < 0:
        sign[1] = -1.0
    rank = np.linalg.matrix_rank(cov)
    if rank == 0:
        raise FaceAnalysisError("degenerate points: all source points coincide")
    if rank == 1 and np.linalg.det(u) * np.linalg.det(vt) > 0:
        rot = u @ vt  # collinear points: the proper rotation, whatever det(cov) says
    elif rank == 1:
        rot = u @ np.diag([1.0, -1.0]) @ vt
    else:
        rot = u @ np.diag(sign) @ vt
    var_s = (s**2).sum() / len(src)
    scale = float((sing * sign).sum() / var_s)
    m = np.zeros((2, 3))
    m[:, :2] = scale * rot
    m[:, 2] = mu_d - scale * rot @ mu_s
    return m


def arcface_matrix(points5: np.ndarray, size: int = 112) -> np.ndarray:
    """2x3 matrix warping an image so ``points5`` land on the ArcFace template scaled to ``size`` (a multiple of 112)."""
    if size % 112:
        raise FaceAnalysisError(f"ArcFace crop size must be a multiple of 112, got {size}")
    return umeyama_similarity(np.asarray(points5, dtype=np.float64).reshape(5, 2), ARCFACE_TEMPLATE * (size / 112.0))


def arcface_crop(img: np.ndarray, points5: np.ndarray, size: int = 112) -> np.ndarray:
    """The ArcFace input crop: ``img`` (RGB uint8) warped bilinearly by :func:`arcface_matrix`, black outside."""
    return cv2.warpAffine(check_image(img), arcface_matrix(points5, size), (size, size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> list[int]:
    """Greedy non-maximum suppression (insightface's convention: areas and overlaps counted with ``+1``)."""
    x1, y1, x2, y2 = (boxes[:, i] for i in range(4))
    areas = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    while order.size:
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        w = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]) + 1)
        h = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]) + 1)
        inter = w * h
        overlap = inter / (areas[i] + areas[rest] - inter)
        order = rest[overlap <= iou]
    return keep


def anchor_centres(height: int, width: int, stride: int, num_anchors: int = _NUM_ANCHORS) -> np.ndarray:
    """``(height*width*num_anchors, 2)`` anchor centres ``(x, y) * stride``, row-major, anchors innermost."""
    ys, xs = np.mgrid[:height, :width]
    centres = np.stack([xs, ys], axis=-1).reshape(-1, 2).astype(np.float32) * stride
    return np.repeat(centres, num_anchors, axis=0)


def decode_retinaface(outputs: Sequence[np.ndarray], input_hw: tuple[int, int], threshold: float):
    """Decode det_10g's 9 outputs (scores, box distances, point distances for strides 8/16/32) into
    ``(boxes (N,4), scores (N,), points (N,5,2))`` in network-input pixels, unsorted, thresholded."""
    if len(outputs) != 9:
        raise FaceAnalysisError(f"expected RetinaFace with 9 outputs (3 strides x score/box/points), got {len(outputs)}")
    outs = [o[0] if o.ndim == 3 else o for o in outputs]
    boxes, scores, points = [], [], []
    for level, stride in enumerate(_STRIDES):
        score = outs[level].reshape(-1)
        dist = outs[level + 3].reshape(-1, 4) * stride
        kdist = outs[level + 6].reshape(-1, 10) * stride
        centres = anchor_centres(input_hw[0] // stride, input_hw[1] // stride, stride)
        if len(centres) != len(score):
            raise FaceAnalysisError(f"RetinaFace stride {stride}: {len(score)} scores for {len(centres)} anchors")
        keep = score >= threshold
        c = centres[keep]
        d = dist[keep]
        boxes.append(np.concatenate([c - d[:, :2], c + d[:, 2:]], axis=1))
        points.append(c[:, None, :] + kdist[keep].reshape(-1, 5, 2))
        scores.append(score[keep])
    return np.concatenate(boxes), np.concatenate(scores), np.concatenate(points)


def letterbox(img: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, float]:
    """Resize ``img`` (aspect kept) to fit ``size`` = (width, height), paste at the top-left of a black canvas;
    returns ``(canvas, scale)`` with ``scale`` = new height / old height."""
    h, w = img.shape[:2]
    tw, th = size
    if h / w > th / tw:
        nh, nw = th, int(th / (h / w))
    else:
        nw, nh = tw, int(tw * (h / w))
    nw, nh = max(nw, 1), max(nh, 1)
    canvas = np.zeros((th, tw, 3), dtype=np.uint8)
    canvas[:nh, :nw] = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_LINEAR)
    return canvas, nh / h


def _blob(images: Sequence[np.ndarray], mean: float, std: float) -> np.ndarray:
    arr = np.stack(images).astype(np.float32)
    return np.ascontiguousarray(((arr - mean) / std).transpose(0, 3, 1, 2))


# --- backend ---------------------------------------------------------------------------------------------

class InsightFaceBackend(FaceBackend):
    """RetinaFace + ArcFace from buffalo_l via onnxruntime. ``device``: ``None``/``"auto"``/``"cpu"``/``"cuda"``
    (CUDA through onnxruntime's CUDA provider when it is installed). ``root``: the buffalo_l folder (default: the
    weight store's ``insightface-buffalo_l``). ``embedder``: who runs ArcFace: ``"onnxruntime"``, ``"torch"``
    (:class:`celebref.face.iresnet.ArcFaceTorch` on ``device``) or ``"auto"`` (torch on CUDA, else onnxruntime)."""

    name = "insightface"
    option_names = ("det_size", "det_thresh", "nms_thresh", "device", "root", "embedder")
    embedding_dim = 512
    same_identity_threshold = 1.18  # cosine 0.30; not calibrated here (see module docstring)

    def __init__(self, det_size: tuple[int, int] = (640, 640), det_thresh: float = 0.5, nms_thresh: float = 0.4,
                 device: str | None = None, root: str | Path | None = None, embedder: str = "auto"):
        try:
            import onnxruntime  # noqa: F401, PLC0415
        except ImportError as exc:
            raise FaceAnalysisError("the insightface backend needs onnxruntime: pip install 'celebref[insightface]'") from exc
        self.root = Path(root) if root is not None else buffalo_dir()
        for f in (DETECTOR_FILE, RECOGNITION_FILE):
            if not (self.root / f).is_file():
                raise FaceAnalysisError(
                    f"insightface model file {f} not found in {self.root}: run 'celebref weights fetch {WEIGHT_NAME}' "
                    "or put the extracted buffalo_l files there"
                )
        self.det_size = (int(det_size[0]), int(det_size[1]))
        if self.det_size[0] % 32 or self.det_size[1] % 32:
            raise FaceAnalysisError(f"det_size must be multiples of 32, got {self.det_size}")
        self.det_thresh, self.nms_thresh = float(det_thresh), float(nms_thresh)
        self.device = device
        if embedder not in ("auto", "onnxruntime", "torch"):
            raise FaceAnalysisError(f"embedder must be 'auto', 'onnxruntime' or 'torch', got {embedder!r}")
        from ..device import resolve_device  # noqa: PLC0415

        if embedder == "auto":
            embedder = "torch" if resolve_device(device).type == "cuda" else "onnxruntime"
        self.embedder = embedder
        self._lock = threading.Lock()
        self._det = LazyModel(lambda: self._session(self.root / DETECTOR_FILE))
        self._rec = LazyModel(self._recognition)
        self._dlib = None
        self._models: dict[str, str] | None = None

    def _session(self, path: Path):
        import onnxruntime as ort  # noqa: PLC0415

        from ..device import resolve_device  # noqa: PLC0415

        providers = ["CPUExecutionProvider"]
        if resolve_device(self.device).type == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        options = ort.SessionOptions()
        return ort.InferenceSession(str(path), sess_options=options, providers=providers)

    def _recognition(self):
        if self.embedder == "torch":
            from ..device import resolve_device  # noqa: PLC0415
            from .iresnet import ArcFaceTorch  # noqa: PLC0415

            return ArcFaceTorch(self.root / RECOGNITION_FILE, resolve_device(self.device))
        return self._session(self.root / RECOGNITION_FILE)

    @property
    def models(self) -> dict[str, str]:
        if self._models is None:
            from .dlib_backend import model_id  # noqa: PLC0415

            self._models = {
                "detector": f"{model_id(self.root / DETECTOR_FILE)};det_size={self.det_size[0]}x{self.det_size[1]}",
                "embedding": f"{model_id(self.root / RECOGNITION_FILE)};runtime={self.embedder}",
                "landmarks68": "dlib:shape_predictor_68_face_landmarks.dat on a box from RetinaFace's 5 points",
            }
        return dict(self._models)

    # --- detection ---------------------------------------------------------------------------------
    def detect(self, img: np.ndarray) -> list[Detection]:
        img = check_image(img)
        canvas, scale = letterbox(img, self.det_size)
        sess = self._det.get()
        with self._lock:
            outs = sess.run(None, {sess.get_inputs()[0].name: _blob([canvas], 127.5, 128.0)})
        boxes, scores, points = decode_retinaface(outs, (self.det_size[1], self.det_size[0]), self.det_thresh)
        if not len(scores):
            return []
        boxes, points = boxes / scale, points / scale
        order = np.argsort(-scores, kind="stable")
        boxes, scores, points = boxes[order], scores[order], points[order]
        keep = nms(boxes, scores, self.nms_thresh)
        return [
            Detection(tuple(float(v) for v in boxes[i]), float(scores[i]), points[i].astype(np.float64),
                      self.name, DETECTOR_FILE)
            for i in keep
        ]

    # --- landmarks (dlib predictor on a HOG-like box) ---------------------------------------------------
    def landmarks68(self, img: np.ndarray, det: Detection) -> np.ndarray:
        if self._dlib is None:
            from .dlib_backend import DlibBackend  # noqa: PLC0415

            self._dlib = DlibBackend()
        box = det.box
        if det.points5 is not None:
            from .dlib_backend import box_from_points5  # noqa: PLC0415

            box = box_from_points5(det.points5)
        return self._dlib.landmarks68(img, Detection(box, det.score, det.points5, self.name, det.model))

    # --- embedding -------------------------------------------------------------------------------------
    def _points5(self, det: Detection) -> np.ndarray:
        if det.points5 is None:
            raise FaceAnalysisError("the insightface embedding needs a detection with 5 points")
        return np.asarray(det.points5, dtype=np.float64)

    def embed_batch(self, images: Sequence[np.ndarray], dets: Sequence[Detection]) -> np.ndarray:
        if len(images) != len(dets):
            raise FaceAnalysisError(f"got {len(images)} images but {len(dets)} detections")
        if not images:
            return np.zeros((0, self.embedding_dim), np.float32)
        crops = [arcface_crop(img, self._points5(d)) for img, d in zip(images, dets)]
        return self.embed_crops(crops)

    def embed_crops(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        """Unit-norm embeddings of 112x112 RGB uint8 ArcFace crops (:func:`arcface_crop`), through onnxruntime
        or the torch network (``embedder``)."""
        rec = self._rec.get()
        if self.embedder == "torch":
            with self._lock:
                return rec.embed_crops(crops)
        sess = rec
        with self._lock:
            out = sess.run(None, {sess.get_inputs()[0].name: _blob(crops, 127.5, 127.5)})[0]
        return l2_normalise(np.asarray(out, dtype=np.float64).reshape(len(crops), -1))

    def embed(self, img: np.ndarray, det: Detection) -> np.ndarray:
        return self.embed_batch([img], [det])[0]

    def aligned_detection(self, img: np.ndarray) -> Detection:
        """The face of an aligned crop: RetinaFace's largest face, else the mean FFHQ-aligned 5 points
        (:data:`ALIGNED_POINTS5`) scaled to the image (``score`` NaN, ``model`` ``"aligned-prior"``)."""
        img = check_image(img)
        dets = self.detect(img)
        if dets:
            return max(dets, key=lambda d: (d.area, d.score))
        h, w = img.shape[:2]
        p5 = ALIGNED_POINTS5 * np.array([w, h], dtype=np.float64)
        return Detection((0.0, 0.0, float(w - 1), float(h - 1)), float("nan"), p5, self.name, "aligned-prior")

    def embed_aligned(self, img: np.ndarray) -> np.ndarray:
        return self.embed(img, self.aligned_detection(img))

    def embed_aligned_batch(self, images: Sequence[np.ndarray]) -> np.ndarray:
        return self.embed_batch(images, [self.aligned_detection(im) for im in images])
