"""The contract every restoration method follows (DMDNet, DFDNet, GFPGAN, CodeFormer, classical
baselines, results produced elsewhere).

Input contract: aligned face crops (512x512 for every shipped method), RGB uint8 ``(H, W, 3)``
arrays (:mod:`celebref.imageio` conventions). Output: an RGB uint8 array of the same size per input,
or ``None`` with a status saying why. Methods convert to their own tensor range internally.

A method is constructed cheaply; :meth:`RestorationMethod.load` reads weights from the weight store
(:mod:`celebref.weights`) and may raise :class:`celebref.errors.WeightError`.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from celebref.errors import ConfigError
from celebref.params import build_params, describe_params, params_dict, params_from_defaults

# Per-image status vocabulary (recorded in restore/evaluate tables).
STATUS_OK = "ok"
STATUS_NO_FACE = "no_face"  # landmarks needed but no face was detected
STATUS_LANDMARKS_REJECTED = "landmarks_rejected"  # landmarks found but unusable (e.g. outside the crop)
STATUS_FALLBACK_INPUT = "fallback_input"  # policy 'input': the input was copied to the output
STATUS_FALLBACK_GENERIC = "fallback_generic"  # policy 'generic': restored without the landmark-dependent part
STATUS_SKIPPED = "skipped"  # policy 'skip': no output written
STATUS_ERROR = "error"  # unexpected failure for this image (message in `reason`)
STATUS_MISSING = "missing"  # external results: no file for this id

LANDMARK_POLICIES = ("skip", "input", "generic")


@dataclass
class ReferenceSet:
    """High-quality references of one identity (DMDNet specific restoration).

    ``key`` identifies the set (e.g. the identity id plus a hash of the reference paths): methods
    cache per-identity work (such as DMDNet's specific dictionary) under it.
    """

    key: str
    images: list[np.ndarray]
    landmarks: list[np.ndarray]


@dataclass
class RestoreItem:
    id: str
    image: np.ndarray  # RGB uint8 aligned LQ face, usually 512x512
    landmarks: np.ndarray | None = None  # (68, 2) float64 (x, y) on `image`; None -> method detects
    identity: str | None = None
    references: ReferenceSet | None = None
    native: np.ndarray | None = None  # the LQ at its native low resolution, when the test set has it
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class RestoreResult:
    id: str
    image: np.ndarray | None
    status: str = STATUS_OK
    reason: str = ""
    seconds: float = 0.0  # wall time attributed to this image (batch time / batch size)
    encoded: bytes | None = None  # PNG bytes that decode to exactly ``image`` (a result read from a file): written as is


class NonFiniteOutputError(ValueError):
    """A method's network produced NaN or infinite values for an image (the image gets ``STATUS_ERROR``)."""


def check_finite_output(values: Any) -> None:
    """Raise :class:`NonFiniteOutputError` when the float output ``values`` (a tensor or array of one image or a
    batch, before its conversion to uint8) holds NaN or inf: converted, they would pass for a black or garbage
    image restored "ok". Methods call it where they turn network output into images; a batch that fails is
    redone image by image, so only the images with non-finite values get the error."""
    a = values.detach().float().cpu().numpy() if hasattr(values, "detach") else np.asarray(values, dtype=np.float64)
    bad = int(a.size - np.isfinite(a).sum())
    if bad:
        raise NonFiniteOutputError(f"the network output has {bad} non-finite value(s) (NaN or inf) of {a.size}: "
                                   "the weights or the input made it overflow; no image written")


def as_rgb_uint8(img: np.ndarray) -> np.ndarray:
    """Check a method input: uint8 ``(H, W, 3)`` RGB (a 2-D grey image is repeated to 3 channels).
    Raises ValueError otherwise; each method then applies its own official resize."""
    a = np.asarray(img)
    if a.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image, got {a.dtype}")
    if a.ndim == 2:
        a = np.repeat(a[:, :, None], 3, axis=2)
    if a.ndim != 3 or a.shape[2] != 3:
        raise ValueError(f"expected an RGB image (H, W, 3), got shape {a.shape}")
    return a


class RestorationMethod:
    """Base class. Subclasses set the class attributes and implement :meth:`load` and :meth:`_restore`.

    Parameters (``NAME:key=value`` in a method spec) are the fields of the frozen dataclass :attr:`Params`
    (``None``: the method takes none). They are typed and validated by :func:`celebref.params.build_params`
    and kept as a plain dict in :attr:`params` (recorded in run files) and as the dataclass instance in
    :attr:`config`. ``param_defaults`` (a dict of name -> default) is a shorthand for a ``Params`` dataclass
    whose field types are those of the defaults.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    needs_references: ClassVar[bool] = False
    needs_landmarks: ClassVar[bool] = False
    weights: ClassVar[tuple[str, ...]] = ()  # weight-store names (celebref.weights)
    input_size: ClassVar[int | None] = 512  # None: any size
    Params: ClassVar[type | None] = None  # frozen dataclass of the NAME:key=value parameters
    param_defaults: ClassVar[dict[str, Any]] = {}  # shorthand for Params (see the class docstring)
    # precisions the method meets the contract in (celebref.precision); others are refused. Methods
    # without a network do not depend on it and accept every mode.
    precisions: ClassVar[tuple[str, ...]] = ("fp32", "tf32", "bf16", "fp16")

    def __init__(self, device: str = "cpu", precision: str = "fp32", landmark_policy: str = "skip", **params: Any):
        from celebref.device import resolve_device
        from celebref.precision import check_precision

        check_precision(precision, self.precisions, owner=f"method {self.name!r}")

        if landmark_policy not in LANDMARK_POLICIES:
            raise ConfigError(f"landmark_policy must be one of {', '.join(LANDMARK_POLICIES)}, got {landmark_policy!r}")
        cls = self.params_type()
        unknown = sorted(set(params) - {f.name for f in dataclasses.fields(cls)}) if cls is not None else sorted(params)
        if unknown:
            known = ", ".join(f"{p['name']} ({p['type']})" for p in describe_params(cls)) or "none"
            raise ConfigError(f"method {self.name!r} has no parameter {', '.join(repr(u) for u in unknown)} "
                              f"(parameters: {known})")
        self.config = build_params(cls, params, owner=f"method {self.name!r}") if cls is not None else None
        self.device = resolve_device(device)
        self.precision = precision
        self.landmark_policy = landmark_policy
        self.params: dict[str, Any] = params_dict(self.config)
        self.loaded = False

    @classmethod
    def params_type(cls) -> type | None:
        """The parameter dataclass: :attr:`Params`, else one made from ``param_defaults`` (``None``: no parameters)."""
        return cls.Params if cls.Params is not None else params_from_defaults(cls, cls.param_defaults)

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        """Every parameter with its default value."""
        p = cls.params_type()
        return params_dict(p()) if p is not None else {}

    def describe(self) -> dict[str, Any]:
        """The method's identity and parameters (from its params dataclass), JSON-ready."""
        return {"name": self.name, "label": self.label, "description": self.description,
                "params": dict(self.params), "parameters": describe_params(self.params_type()),
                "weights": list(self.weights)}

    # -- identity of the method for caching/resume --------------------------------------------
    @property
    def label(self) -> str:
        """Name with non-default parameters, e.g. ``codeformer:w=0.7`` (used for folder names and rows)."""
        defaults = self.defaults()
        extra = [f"{k}={v}" for k, v in self.params.items() if defaults.get(k) != v]
        return self.name + (":" + ",".join(extra) if extra else "")

    def weight_hashes(self) -> dict[str, str]:
        """sha256 of each weight file this method loaded (recorded in run.json; resume key)."""
        if not self.weights:
            return {}
        from celebref import weights as store

        return {w: store.file_sha256(w) for w in self.weights}

    # -- running ---------------------------------------------------------------------------------
    def load(self) -> None:
        self.loaded = True

    def restore(self, items: list[RestoreItem]) -> list[RestoreResult]:
        """Restore a batch; never raises for one bad image (that image gets ``STATUS_ERROR``)."""
        if not self.loaded:
            self.load()
        t0 = time.perf_counter()
        results = self._restore(items)
        per = (time.perf_counter() - t0) / max(len(items), 1)
        for r in results:
            if not r.seconds:
                r.seconds = per
        return results

    def _restore(self, items: list[RestoreItem]) -> list[RestoreResult]:
        raise NotImplementedError
