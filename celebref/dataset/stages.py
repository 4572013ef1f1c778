"""The per-file analysis stage (the only expensive one) and its worker-process plumbing.

``analyze_file`` turns one file into a JSON-ready record: decode (the shared reader, EXIF orientation applied) ->
detect faces (largest first; a photo whose long side exceeds ``detect_max_side`` is searched on a downscaled copy,
the boxes mapped back to the photo, and searched again at full size only when the copy shows no face; when none
is found in a small image, retry on an upscaled copy so that tiny faces are reported as too small rather than
missing) -> for each significant face (area >= ``significant_area`` x the
largest, at most ``max_faces``): 68 landmarks on the source, quality scores, FFHQ alignment to 512x512, 68
landmarks on the aligned face, identity embedding, perceptual hashes of the aligned face and its mirror image.
Thresholds are **not** part of the analysis (they are applied later), so changing one never re-embeds.
The record is cached by ``sha256(file) + settings`` (:mod:`celebref.dataset.cache`).

Downscaled detection ("detect small, refine at full size"): only the detector runs on the copy; the 68 landmarks
(from the mapped box), the alignment, the aligned landmarks and the embedding are computed on the full-size photo,
so the detector's cost (most of the time on multi-megapixel web photos) falls with the pixel count while the face
itself is analysed at full resolution. The copy is made with area averaging so that the long side is
``detect_max_side``; dlib's HOG detector finds faces of about 80 px and larger in it, i.e. faces of
``80 * long side / detect_max_side`` px in the photo (156 px on a 2000-px photo at 1024: an FFHQ crop of about
260 px, at the default ``min_face_size`` of 256). Smaller secondary faces of such photos may go unseen.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from typing import Callable, Iterator

import cv2
import numpy as np

from ..errors import ImageReadError
from ..imageio import read_image
from . import quality as Q
from .dedup import phash

ANALYSIS_VERSION = 1
#: the stages timed by :func:`analyze_image` (``timings=``): seconds spent in each
STAGES = ("decode", "detect", "landmarks", "align", "aligned_landmarks", "embed", "quality")


@dataclass(frozen=True)
class AnalysisSettings:
    """Settings that change what the analysis computes (part of every cache key)."""

    output_size: int = 512
    significant_area: float = 0.25
    max_faces: int = 6
    retry_below: int = 1024  # retry detection on an upscaled copy when the long side is below this ...
    retry_max_scale: int = 4  # ... by an integer factor of at most this
    detect_max_side: int = 1024  # detect on a copy downscaled to this long side (0: always at full size)

    def key(self, backend_info: dict) -> dict:
        key = {"version": ANALYSIS_VERSION, "backend": backend_info, "output_size": self.output_size,
               "significant_area": self.significant_area, "max_faces": self.max_faces,
               "retry_below": self.retry_below, "retry_max_scale": self.retry_max_scale}
        if self.detect_max_side:  # absent when off: caches of builds made before the option stay valid
            key["detect_max_side"] = self.detect_max_side
        return key


def backend_info(be) -> dict:
    return {"name": be.name, "models": dict(be.models)}


def _f(x) -> float:
    return float(x)


def _scale_det(det, s: float):
    from ..face import Detection

    box = tuple(float((v + 0.5) / s - 0.5) for v in det.box)
    pts = None if det.points5 is None else (np.asarray(det.points5, dtype=np.float64) + 0.5) / s - 0.5
    return Detection(box=box, score=float(det.score), points5=pts, backend=det.backend, model=det.model)


def _transform_points(matrix: np.ndarray, pts: np.ndarray) -> np.ndarray:
    m = np.asarray(matrix, dtype=np.float64)
    p = np.concatenate([pts, np.ones((len(pts), 1))], axis=1)
    if m.shape == (2, 3):
        return p @ m.T
    q = p @ m.T
    return q[:, :2] / q[:, 2:3]


def _aligned_landmarks(be, aligned: np.ndarray, lm_src: np.ndarray, matrix) -> tuple[np.ndarray, str]:
    lm = be.detect_landmarks68(aligned)
    if lm is not None:
        return np.asarray(lm, dtype=np.float64), "detected"
    return _transform_points(matrix, lm_src), "transformed"


def _detect_downscaled(img: np.ndarray, be, max_side: int) -> list:
    """Faces of ``img`` found on a copy whose long side is ``max_side`` (area averaging), boxes and points mapped
    back to ``img``'s pixel-index coordinates (per axis: ``(v + 0.5) * full / small - 0.5``)."""
    from ..face import Detection

    h, w = img.shape[:2]
    f = max_side / max(h, w)
    sw, sh = max(1, int(round(w * f))), max(1, int(round(h * f)))
    small = cv2.resize(img, (sw, sh), interpolation=cv2.INTER_AREA)
    k = np.array([w / sw, h / sh])
    out = []
    for d in be.detect(small):
        box = np.asarray(d.box, dtype=np.float64).reshape(2, 2)
        box = ((box + 0.5) * k - 0.5).ravel()
        pts = None if d.points5 is None else (np.asarray(d.points5, dtype=np.float64) + 0.5) * k - 0.5
        out.append(Detection(box=tuple(float(v) for v in box), score=float(d.score), points5=pts, backend=d.backend,
                             model=d.model))
    return out


class _Timer:
    """Adds the seconds of each ``with timer("stage"):`` block to ``timings[stage]`` (no-op without a dict)."""

    def __init__(self, timings: dict | None):
        self.timings = timings
        self.stage = ""
        self.t0 = 0.0

    def __call__(self, stage: str) -> "_Timer":
        self.stage = stage
        return self

    def __enter__(self) -> None:
        if self.timings is not None:
            self.t0 = time.perf_counter()

    def __exit__(self, *exc) -> None:
        if self.timings is not None:
            self.timings[self.stage] = self.timings.get(self.stage, 0.0) + time.perf_counter() - self.t0


def analyze_image(img: np.ndarray, be, settings: AnalysisSettings, timings: dict | None = None) -> dict:
    """Analysis record of a decoded RGB uint8 image (see the module docstring). ``timings``: a dict to which the
    seconds spent in each of :data:`STAGES` are added (benchmarks)."""
    from ..face.align import ffhq_align

    timer = _Timer(timings)
    h, w = img.shape[:2]
    work, scale = img, 1.0
    with timer("detect"):
        dets = []
        if settings.detect_max_side and max(h, w) > settings.detect_max_side:
            dets = _detect_downscaled(img, be, settings.detect_max_side)
        if not dets:
            dets = list(be.detect(img))
    if not dets and max(h, w) < settings.retry_below:
        s = min(settings.retry_max_scale, int(math.ceil(settings.retry_below / max(h, w))))
        if s > 1:
            with timer("detect"):
                work = cv2.resize(img, (w * s, h * s), interpolation=cv2.INTER_LINEAR)
                scale = float(s)
                dets = list(be.detect(work))
    dets.sort(key=lambda d: (-d.area, -d.score, d.box))
    faces = []
    largest = dets[0].area if dets else 0.0
    for k, det in enumerate(dets):
        d_src = det if scale == 1.0 else _scale_det(det, scale)
        rec = {"box": [_f(v) for v in d_src.box], "score": _f(det.score), "detect_scale": scale,
               "significant": bool(k < settings.max_faces and det.area >= settings.significant_area * largest)}
        if rec["significant"]:
            with timer("landmarks"):
                lm_w = np.asarray(be.landmarks68(work, det), dtype=np.float64)
                lm = lm_w if scale == 1.0 else (lm_w + 0.5) / scale - 0.5
            with timer("align"):
                al = ffhq_align(img, lm, output_size=settings.output_size)
                aligned = np.asarray(al.image)
            with timer("aligned_landmarks"):
                lm_al, how = _aligned_landmarks(be, aligned, lm, al.matrix)
            with timer("embed"):
                emb = np.asarray(be.embed(work, det), dtype=np.float32)
            with timer("quality"):
                size = Q.quad_size(al.quad)
                blur = Q.blur_variance(aligned)
                rec.update({
                    "landmarks_source": lm.round(3).tolist(),
                    "quad": np.asarray(al.quad, dtype=np.float64).reshape(4, 2).round(3).tolist(),
                    "face_size": round(size, 3),
                    "outside_fraction": round(Q.outside_fraction(al.quad, w, h), 5),
                    "padded": bool(getattr(al, "padded", False)),
                    "blur_var": round(blur, 4),
                    "yaw": round(Q.yaw_degrees(lm), 3),
                    "quality": round(Q.quality_score(size, blur), 6),
                    "landmarks_aligned": lm_al.round(3).tolist(),
                    "landmarks_aligned_from": how,
                    "embedding": [float(v) for v in emb],
                    "phash": phash(aligned),
                    "phash_mirror": phash(aligned[:, ::-1]),
                })
        faces.append(rec)
    return {"status": "ok", "width": int(w), "height": int(h), "faces": faces}


def analyze_file(path: str | os.PathLike, be, settings: AnalysisSettings, timings: dict | None = None) -> dict:
    """Analysis record of one file; an unreadable file gives ``{"status": "unreadable", "error": ...}``.
    ``timings``: see :func:`analyze_image` (plus ``decode``)."""
    try:
        with _Timer(timings)("decode"):
            img = read_image(path)
    except ImageReadError as e:
        return {"status": "unreadable", "error": e.reason}
    try:
        return analyze_image(img, be, settings, timings)
    except Exception as e:  # noqa: BLE001 - one bad file never stops a build
        return {"status": "error", "error": f"analysis failed ({type(e).__name__}: {e})"}


# --- running it through the execution seam ------------------------------------------------------------

_BACKEND = None


def use_backend(be) -> None:
    """Use ``be`` as this process's backend for the engine functions (when the engine runs inline)."""
    global _BACKEND
    _BACKEND = be


def worker_backend():
    """The face backend of this process (set by :func:`init_worker` or :func:`use_backend`)."""
    return _BACKEND


def init_worker(backend_name: str | None) -> None:
    """Engine initializer: load the face backend once per worker process (in this process, the one given to
    :func:`run_analysis` is used as is). One OpenCV thread per worker: the workers are the parallelism."""
    global _BACKEND
    import multiprocessing

    if multiprocessing.parent_process() is None and _BACKEND is not None:
        return
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    try:
        cv2.setNumThreads(1)
    except Exception:  # noqa: BLE001
        pass
    from ..face import get_backend

    _BACKEND = get_backend(backend_name)


def analyze_batch(tasks: list[tuple[str, AnalysisSettings]]) -> list[dict]:
    """Engine function: the analysis record of each ``(path, settings)`` with this process's backend."""
    return [analyze_file(path, _BACKEND, settings) for path, settings in tasks]


def run_analysis(tasks: list[tuple[str, str]], settings: AnalysisSettings, backend_name: str, be, engine,
                 on_result: Callable[[str, dict], None]) -> Iterator[None]:
    """Analyse ``tasks`` (``(sha256, path)``, one per distinct content) through the execution ``engine`` (a
    :class:`celebref.engine.Engine`; when it runs inline, in this process with ``be``), calling
    ``on_result(sha, record)`` in this process in input order. Yields once per finished task. A worker that dies
    or an analysis that raises gives an ``error`` record (not cached)."""
    use_backend(be)
    items = [(path, settings) for _, path in tasks]
    for res in engine.map(analyze_batch, items, keys=[sha for sha, _ in tasks], batch_size=1, desc="analyse",
                          unit="file", initializer=init_worker, initargs=(backend_name,)):
        rec = res.value if res.ok else {"status": "error", "error": f"analysis failed ({res.error})"}
        on_result(res.key, rec)
        yield None
