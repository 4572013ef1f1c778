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

Backends (:data:`FACE_BACKENDS`, ``celebref list backends``; other distributions add more through the entry-point
group ``celebref.face_backends``): ``"dlib"`` (HOG or CNN detector, dlib shape predictors, 128-d ResNet descriptor; offline, the
default for tests) and ``"insightface"`` (RetinaFace det_10g + ArcFace w600k_r50 from the buffalo_l pack via
onnxruntime; its model files are licensed for non-commercial research only). Conventions are documented in
:mod:`celebref.face.base`.
"""

from __future__ import annotations

import importlib.util
import logging
import threading

from ..errors import CelebrefError, ConfigError
from ..registry import Registry, load_target
from .base import Detection, FaceAnalysisError, FaceBackend

__all__ = ["AUTO_ORDER", "FACE_BACKENDS", "Detection", "FaceAnalysisError", "FaceBackend", "available_backends",
           "backend_status", "clear_cache", "get_backend"]

log = logging.getLogger("celebref.face")
_cache: dict[tuple, FaceBackend] = {}
_cache_lock = threading.Lock()

#: Face-analysis backends by name (entry-point group ``celebref.face_backends``). A backend is a
#: :class:`FaceBackend` subclass; its ``option_names`` lists the constructor options :func:`get_backend` accepts,
#: and an optional ``status()`` static method says whether it can run here (``"ok"`` or why not). The built-in
#: entries' ``status`` metadata names such a function without importing the backend.
FACE_BACKENDS = Registry("face backend", group="celebref.face_backends", extra_known=("auto",))
FACE_BACKENDS.register(
    "dlib", "celebref.face.dlib_backend:DlibBackend",
    description="dlib: HOG or CNN detector, 5/68-point shape predictors, 128-d ResNet descriptor (offline)",
    weights=("dlib-face-detector-cnn", "dlib-shape-predictor-5", "dlib-shape-predictor-68",
             "dlib-face-recognition-resnet"),
    status="celebref.face:_dlib_status")
FACE_BACKENDS.register(
    "insightface", "celebref.face.insightface_backend:InsightFaceBackend",
    description="insightface buffalo_l: RetinaFace det_10g + ArcFace w600k_r50 via onnxruntime (non-commercial files)",
    aliases=("arcface",), weights=("insightface-buffalo_l",), status="celebref.face:_insightface_status")

#: the backends ``"auto"`` tries, in order (plugin backends are used only when named)
AUTO_ORDER = ("insightface", "dlib")


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


def _status(name: str) -> str:
    entry = FACE_BACKENDS.entry(name)
    fn = entry.extra.get("status")
    try:
        fn = load_target(fn) if fn is not None else getattr(entry.load(), "status", None)
        return str(fn()) if callable(fn) else "ok"
    except Exception as exc:  # noqa: BLE001 - a broken plugin backend is reported, not raised
        return f"{type(exc).__name__}: {exc}"


def backend_status() -> dict[str, str]:
    """``{backend: "ok" | why it cannot run}`` for every registered backend (loads no model)."""
    return {name: _status(name) for name in FACE_BACKENDS.names()}


def available_backends() -> list[str]:
    """Names of the backends that can run here: those ``"auto"`` tries, in its order of preference, then any
    plugin backends (which ``"auto"`` never picks)."""
    status = backend_status()
    order = [n for n in AUTO_ORDER if n in status] + [n for n in status if n not in AUTO_ORDER]
    return [name for name in order if status[name] == "ok"]


def _location(name: str) -> str:
    """Where the backend's weight files resolve now (part of the instance cache key, so a changed
    ``CELEBREF_HOME`` or weight override gives a fresh backend)."""
    try:
        from .. import weights  # noqa: PLC0415

        return "|".join(str(weights.resolve(w)[0]) for w in FACE_BACKENDS.entry(name).weights)
    except Exception:  # noqa: BLE001
        return ""


def clear_cache() -> None:
    """Forget the shared backend instances (their models are loaded again on next use)."""
    with _cache_lock:
        _cache.clear()


def _accepted(name: str) -> tuple[str, ...] | None:
    return getattr(FACE_BACKENDS.get(name), "option_names", None)


def get_backend(name: str | None = None, **options) -> FaceBackend:
    """A face-analysis backend (one shared instance per name and options; models load lazily, thread-safely).

    ``name``: ``None`` or ``"auto"`` (insightface when onnxruntime and the buffalo_l files are present, else dlib;
    the choice and the reason are logged on the ``celebref.face`` logger and kept in ``backend.selection``),
    or a registered backend (``"dlib"``, ``"insightface"``, plugins; see ``celebref list backends``). ``options``
    go to the backend's constructor (e.g. ``detector="cnn"`` for dlib; with ``"auto"`` only the options the chosen
    backend declares are passed; an undeclared option for a named backend is a
    :class:`~celebref.errors.ConfigError`).
    """
    if name is None or name == "auto":
        status = backend_status()
        reasons = []
        for chosen in AUTO_ORDER:
            if status[chosen] != "ok":
                reasons.append(f"{chosen} unavailable: {status[chosen]}")
                continue
            try:
                accepted = _accepted(chosen)
                backend = get_backend(chosen, **{k: v for k, v in options.items() if accepted is None or k in accepted})
            except CelebrefError as exc:  # files present but unusable (bad hash, wrong options, ...)
                reasons.append(f"{chosen} unavailable: {exc}")
                continue
            why = "; ".join(reasons) if reasons else ("buffalo_l files present" if chosen == "insightface" else "")
            backend.selection = f"auto -> {chosen}" + (f" ({why})" if why else "")
            log.info("face analysis backend: %s", backend.selection)
            return backend
        raise FaceAnalysisError("no face-analysis backend can run: " + "; ".join(reasons))
    name = FACE_BACKENDS.resolve(name)
    accepted = _accepted(name)
    unknown = sorted(set(options) - set(accepted)) if accepted is not None else []
    if unknown:
        raise ConfigError(f"face backend {name!r} has no option {', '.join(unknown)} "
                          f"(options: {', '.join(sorted(accepted or ())) or 'none'})")
    key = (name, tuple(sorted((k, repr(v)) for k, v in options.items())), _location(name))
    with _cache_lock:
        if key not in _cache:
            _cache[key] = FACE_BACKENDS.get(name)(**options)
            _cache[key].selection = name
        return _cache[key]
