"""The per-file analysis stage (the only expensive one) and its worker-process plumbing.

``analyze_file`` turns one file into a JSON-ready record: decode (the shared reader, EXIF orientation applied) ->
detect faces (largest first; when none is found in a small image, retry on an upscaled copy so that tiny faces
are reported as too small rather than missing) -> for each significant face (area >= ``significant_area`` x the
largest, at most ``max_faces``): 68 landmarks on the source, quality scores, FFHQ alignment to 512x512, 68
landmarks on the aligned face, identity embedding, perceptual hashes of the aligned face and its mirror image.
Thresholds are **not** part of the analysis (they are applied later), so changing one never re-embeds.
The record is cached by ``sha256(file) + settings`` (:mod:`celebref.dataset.cache`).
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Callable, Iterator

import cv2
import numpy as np

from ..errors import ImageReadError
from ..imageio import read_image
from . import quality as Q
from .dedup import phash

ANALYSIS_VERSION = 1


@dataclass(frozen=True)
class AnalysisSettings:
    """Settings that change what the analysis computes (part of every cache key)."""

    output_size: int = 512
    significant_area: float = 0.25
    max_faces: int = 6
    retry_below: int = 1024  # retry detection on an upscaled copy when the long side is below this ...
    retry_max_scale: int = 4  # ... by an integer factor of at most this

    def key(self, backend_info: dict) -> dict:
        return {"version": ANALYSIS_VERSION, "backend": backend_info, "output_size": self.output_size,
                "significant_area": self.significant_area, "max_faces": self.max_faces,
                "retry_below": self.retry_below, "retry_max_scale": self.retry_max_scale}


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


def analyze_image(img: np.ndarray, be, settings: AnalysisSettings) -> dict:
    """Analysis record of a decoded RGB uint8 image (see the module docstring)."""
    from ..face.align import ffhq_align

    h, w = img.shape[:2]
    work, scale = img, 1.0
    dets = list(be.detect(img))
    if not dets and max(h, w) < settings.retry_below:
        s = min(settings.retry_max_scale, int(math.ceil(settings.retry_below / max(h, w))))
        if s > 1:
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
            lm_w = np.asarray(be.landmarks68(work, det), dtype=np.float64)
            lm = lm_w if scale == 1.0 else (lm_w + 0.5) / scale - 0.5
            al = ffhq_align(img, lm, output_size=settings.output_size)
            aligned = np.asarray(al.image)
            lm_al, how = _aligned_landmarks(be, aligned, lm, al.matrix)
            emb = np.asarray(be.embed(work, det), dtype=np.float32)
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


def analyze_file(path: str | os.PathLike, be, settings: AnalysisSettings) -> dict:
    """Analysis record of one file; an unreadable file gives ``{"status": "unreadable", "error": ...}``."""
    try:
        img = read_image(path)
    except ImageReadError as e:
        return {"status": "unreadable", "error": e.reason}
    try:
        return analyze_image(img, be, settings)
    except Exception as e:  # noqa: BLE001 - one bad file never stops a build
        return {"status": "error", "error": f"analysis failed ({type(e).__name__}: {e})"}


# --- worker processes -----------------------------------------------------------------------------

_BACKEND = None


def pool_context():
    """``spawn`` start method: forking a process whose OpenCV/dlib thread pools are running can deadlock the
    children, and spawned workers behave the same on every platform."""
    import multiprocessing

    return multiprocessing.get_context("spawn")


def _init_worker(backend_name: str | None) -> None:
    global _BACKEND
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    try:
        cv2.setNumThreads(1)
    except Exception:  # noqa: BLE001
        pass
    from ..face import get_backend

    _BACKEND = get_backend(backend_name)


def _work(task: tuple[str, str, AnalysisSettings]) -> tuple[str, dict]:
    sha, path, settings = task
    return sha, analyze_file(path, _BACKEND, settings)


def run_analysis(tasks: list[tuple[str, str]], settings: AnalysisSettings, backend_name: str, be, workers: int,
                 on_result: Callable[[str, dict], None]) -> Iterator[None]:
    """Analyse ``tasks`` (``(sha256, path)``, one per distinct content) with ``workers`` processes (1: in this
    process with ``be``), calling ``on_result(sha, record)`` in this process as each finishes (completion order;
    callers store results by sha, so the final outcome does not depend on it). Yields once per finished task."""
    if workers <= 1 or len(tasks) <= 1:
        for sha, path in tasks:
            on_result(sha, analyze_file(path, be, settings))
            yield None
        return
    with ProcessPoolExecutor(max_workers=workers, mp_context=pool_context(), initializer=_init_worker, initargs=(backend_name,)) as ex:
        futs = [ex.submit(_work, (sha, path, settings)) for sha, path in tasks]
        try:
            from concurrent.futures import as_completed

            for fut in as_completed(futs):
                sha, rec = fut.result()
                on_result(sha, rec)
                yield None
        except BaseException:
            for f in futs:
                f.cancel()
            raise
