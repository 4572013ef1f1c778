"""Face analysis behind one interface: detection (boxes, scores, 5 points), 68-point landmarks (iBUG 300-W order),
identity embeddings (unit-norm vectors), batched variants, and FFHQ-style alignment (:mod:`celebref.face.align`).

::

    from celebref.face import get_backend
    be = get_backend(None)          # "auto": insightface when its buffalo_l files are present, else dlib
    dets = be.detect(img)           # list[Detection], highest score first
    lm = be.landmarks68(img, dets[0])
    emb = be.embed(img, dets[0])    # (D,) float32, unit norm
    be.distance(emb, other) < be.same_identity_threshold
    be.describe()                   # {"backend", "models", "same_identity_threshold"}: record it with outputs

Backends: ``"dlib"`` (HOG or CNN detector, dlib shape predictors, 128-d ResNet descriptor; offline, the
default for tests) and ``"insightface"`` (RetinaFace det_10g + ArcFace w600k_r50 from the buffalo_l pack via
onnxruntime; its model files are licensed for non-commercial research only). Conventions are documented in
:mod:`celebref.face.base`.
"""

from __future__ import annotations

import importlib.util
import inspect
import logging
import threading

from ..errors import CelebrefError, ConfigError, UnknownNameError
from .base import Detection, FaceAnalysisError, FaceBackend

__all__ = ["Detection", "FaceAnalysisError", "FaceBackend", "available_backends", "backend_status", "clear_cache",
           "get_backend"]

BACKENDS = ("dlib", "insightface")
log = logging.getLogger("celebref.face")
_cache: dict[tuple, FaceBackend] = {}
_cache_lock = threading.Lock()


def _insightface_status() -> str:
    if importlib.util.find_spec("onnxruntime") is None:
        return "onnxruntime is not installed (pip install 'celebref[insightface]')"
    from .insightface_backend import missing_files  # noqa: PLC0415

    missing = missing_files()
    return "ok" if not missing else "missing " + "; ".join(missing)


def _dlib_status() -> str:
    if importlib.util.find_spec("dlib") is None:
        return "dlib is not installed (pip install 'celebref[dlib]')"
    try:
        from .dlib_backend import MODEL_FILES, dlib_model_path  # noqa: PLC0415

        for role in MODEL_FILES:
            dlib_model_path(role)
    except FaceAnalysisError as exc:
        return str(exc)
    return "ok"


def backend_status() -> dict[str, str]:
    """``{backend: "ok" | why it cannot run}`` for every backend (loads no model)."""
    return {"dlib": _dlib_status(), "insightface": _insightface_status()}


def available_backends() -> list[str]:
    """Names of the backends that can run here, in preference order for ``"auto"``."""
    status = backend_status()
    return [name for name in ("insightface", "dlib") if status[name] == "ok"]


def _backend_class(name: str) -> type:
    if name == "dlib":
        from .dlib_backend import DlibBackend  # noqa: PLC0415

        return DlibBackend
    from .insightface_backend import InsightFaceBackend  # noqa: PLC0415

    return InsightFaceBackend


def _location(name: str) -> str:
    """Where the backend's files resolve now (part of the instance cache key, so a changed
    ``CELEBREF_HOME`` or weight override gives a fresh backend)."""
    if name != "insightface":
        return ""
    try:
        from .. import weights  # noqa: PLC0415

        return str(weights.resolve("insightface-buffalo_l")[0])
    except Exception:  # noqa: BLE001
        return ""


def clear_cache() -> None:
    """Forget the shared backend instances (their models are loaded again on next use)."""
    with _cache_lock:
        _cache.clear()


def _accepted_options(name: str) -> set[str]:
    params = inspect.signature(_backend_class(name).__init__).parameters
    return {k for k in params if k != "self"}


def get_backend(name: str | None = None, **options) -> FaceBackend:
    """A face-analysis backend (one shared instance per name and options; models load lazily, thread-safely).

    ``name``: ``None`` or ``"auto"`` (insightface when onnxruntime and the buffalo_l files are present, else dlib;
    the choice and the reason are logged on the ``celebref.face`` logger and kept in ``backend.selection``),
    ``"dlib"`` or ``"insightface"``. ``options`` go to the backend's constructor (e.g. ``detector="cnn"`` for dlib;
    with ``"auto"`` only the options the chosen backend accepts are passed; an unknown option for a named backend
    is a :class:`~celebref.errors.ConfigError`).
    """
    if name is None or name == "auto":
        status = backend_status()
        reasons = []
        for chosen in ("insightface", "dlib"):
            if status[chosen] != "ok":
                reasons.append(f"{chosen} unavailable: {status[chosen]}")
                continue
            try:
                accepted = _accepted_options(chosen)
                backend = get_backend(chosen, **{k: v for k, v in options.items() if k in accepted})
            except CelebrefError as exc:  # files present but unusable (bad hash, wrong options, ...)
                reasons.append(f"{chosen} unavailable: {exc}")
                continue
            why = "; ".join(reasons) if reasons else ("buffalo_l files present" if chosen == "insightface" else "")
            backend.selection = f"auto -> {chosen}" + (f" ({why})" if why else "")
            log.info("face analysis backend: %s", backend.selection)
            return backend
        raise FaceAnalysisError("no face-analysis backend can run: " + "; ".join(reasons))
    if name not in BACKENDS:
        raise UnknownNameError("face backend", name, list(BACKENDS) + ["auto"])
    unknown = sorted(set(options) - _accepted_options(name))
    if unknown:
        raise ConfigError(f"face backend {name!r} has no option {', '.join(unknown)} "
                          f"(options: {', '.join(sorted(_accepted_options(name)))})")
    key = (name, tuple(sorted((k, repr(v)) for k, v in options.items())), _location(name))
    with _cache_lock:
        if key not in _cache:
            _cache[key] = _backend_class(name)(**options)
            _cache[key].selection = name
        return _cache[key]
