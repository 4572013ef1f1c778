"""The metric contract: one small class per metric, one uniform call on batched tensors.

Input convention (every metric)
-------------------------------
``pred`` and ``target`` are ``torch.uint8`` tensors of shape ``(N, 3, H, W)``, **RGB** channel order, exact
integer pixel values ``0..255`` (what :func:`celebref.imageio.read_image` gives, stacked and permuted to
NCHW). Integer input keeps every metric exact: each one converts to the float type and range its reference
implementation uses (BasicSR: float64 ``[0, 255]``; LPIPS: float32 ``[-1, 1]``; pytorch-fid: float32
``[0, 1]``), and documents that conversion in :meth:`Metric.describe`. ``target`` is ``None`` for
no-reference metrics (:attr:`Metric.needs_reference` is ``False``), except those with
:attr:`Metric.needs_input` (e.g. ``identity-input``), which take the method's LQ input there (same count,
possibly another size).

Per-image metrics return ``{column: torch.Tensor (N,) float64 on the CPU}`` from :meth:`Metric.compute`
(NaN marks an image the metric could not score, e.g. no face found; the reason is kept in
:attr:`Metric.last_failures`, ``{index in the batch: reason}``, and the evaluate runner records it in that row).

The stateful contract (what the evaluate runner calls, for every metric, on images held in memory)
-------------------------------------------------------------------------------------------------------
* :meth:`Metric.new_state` -- a fresh accumulator: ``None`` for per-image metrics; for a dataset-level metric
  (:attr:`Metric.dataset_level`, e.g. FID) an object with ``merge(other) -> self`` (default: a
  :class:`FeatureList` of :meth:`Metric.features`; FID: :class:`evaluation.moments.FeatureMoments`).
* :meth:`Metric.update` ``(state, pred, target)`` -- per-image values of a batch (per-image metrics: exactly
  :meth:`compute`); a dataset-level metric adds the batch to ``state`` and returns ``{}``.
* :meth:`Metric.merge` ``(state, other)`` -- ``other``'s images after ``state``'s (the runner merges per-batch
  states in input order, so the result does not depend on the engine or the number of workers).
* :meth:`Metric.compute_dataset` ``(state, reference)`` -- the dataset-level value; ``reference`` is the state
  of the ground-truth images (built with :meth:`update` too), a stored reference from
  :meth:`Metric.load_reference`, or ``None`` for a no-reference metric. (Not called ``compute``: that name is
  the per-image call.)

A dataset-level metric needs nothing else from the application: a plugin implements these (or just
:meth:`features` and :meth:`score`, which the defaults use).
"""

from __future__ import annotations

import os
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from celebref.device import resolve_device
from celebref.errors import ConfigError
from celebref.params import params_from_defaults


class Metric:
    """Base class. Subclasses set the class attributes and implement :meth:`_compute` (per image) or
    :meth:`features` + :meth:`score` (dataset level).

    Attributes
    ----------
    name: canonical registry name (e.g. ``"psnr"``, ``"lpips-vgg"``).
    columns: output column names, in order (e.g. ``("identity_cos", "identity_angle")``).
    higher_is_better: ``{column: bool}``.
    needs_reference: whether :meth:`compute` needs ``target``.
    needs_input: whether :meth:`compute`'s second argument is the method's **LQ input** instead of the ground
        truth (no-reference metrics that compare the output with what the method was given, e.g.
        ``identity-input``); the runner passes the LQ image, which may differ in size from ``pred``.
    dataset_level: ``True`` for metrics of a whole image set (FID), computed with features/score.
    weights: names of the weight-store entries (:mod:`celebref.weights`) :meth:`load` reads.
    """

    name: str = ""
    columns: tuple[str, ...] = ()
    higher_is_better: dict[str, bool] = {}
    needs_reference: bool = True
    needs_input: bool = False
    dataset_level: bool = False
    weights: tuple[str, ...] = ()
    #: option name -> default; the subclass's ``__init__`` accepts exactly these (plus device/profile)
    defaults: Mapping[str, Any] = {}

    @classmethod
    def params_type(cls) -> type | None:
        """The options as a frozen dataclass (fields typed by their defaults; ``None``: no options), for
        descriptions such as ``celebref list metrics``."""
        return params_from_defaults(cls, cls.defaults)

    def __init__(self, device: str | torch.device | None = "cpu", **options: Any):
        unknown = sorted(set(options) - set(self.defaults))
        if unknown:
            known = ", ".join(sorted(self.defaults)) or "none"
            raise ConfigError(f"metric {self.name!r} has no option {', '.join(unknown)} (options: {known})")
        self.device = resolve_device(device)
        self.options: dict[str, Any] = {**self.defaults, **options}
        self.loaded = not self.weights
        self.last_failures: dict[int, str] = {}

    # --- lifecycle -----------------------------------------------------------------------------
    def load(self) -> "Metric":
        """Read the weights (through :mod:`celebref.weights`); raises ``WeightError`` when missing.
        Metrics without weights do nothing. Returns ``self``."""
        if not self.loaded:
            self._load()
            self.loaded = True
        return self

    def _load(self) -> None:  # pragma: no cover - overridden by metrics with weights
        pass

    def _ensure_loaded(self) -> None:
        if not self.loaded:
            self.load()

    # --- description ---------------------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        """Every convention that changes the numbers (recorded with results, e.g. in ``run.json``)."""
        return {
            "name": self.name,
            "columns": list(self.columns),
            "higher_is_better": dict(self.higher_is_better),
            "needs_reference": self.needs_reference,
            **({"needs_input": True} if self.needs_input else {}),  # absent when False: cache keys unchanged
            "dataset_level": self.dataset_level,
            "weights": list(self.weights),
            "input": "uint8 RGB NCHW, 0..255",
            "options": {k: _jsonable(v) for k, v in sorted(self.options.items())},
            **self._describe(),
        }

    def _describe(self) -> dict[str, Any]:
        return {}

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in sorted(self.options.items()))
        return f"{type(self).__name__}({opts}, device={str(self.device)!r})"

    # --- computing -----------------------------------------------------------------------------
    def compute(self, pred: torch.Tensor, target: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Per-image values ``{column: (N,) float64 CPU tensor}`` for a batch (see the module docstring)."""
        if self.dataset_level:
            raise ConfigError(f"metric {self.name!r} is dataset-level: use features() and score()")
        check_images(pred, "pred")
        if self.needs_reference:
            if target is None:
                raise ConfigError(f"metric {self.name!r} needs a reference image (target)")
            check_images(target, "target")
            if tuple(target.shape) != tuple(pred.shape):
                raise ConfigError(f"{self.name}: pred and target shapes differ: {tuple(pred.shape)} vs {tuple(target.shape)}")
        elif self.needs_input:  # the second argument is the LQ input: same count, any size
            if target is None:
                raise ConfigError(f"metric {self.name!r} needs the LQ input as its second argument")
            check_images(target, "lq")
            if len(target) != len(pred):
                raise ConfigError(f"{self.name}: {len(pred)} restored images but {len(target)} LQ inputs")
        self._ensure_loaded()
        self.last_failures = {}
        with torch.no_grad():
            out = self._compute(pred, target)
        return {c: out[c].detach().to("cpu", torch.float64).reshape(-1) for c in self.columns}

    def _compute(self, pred: torch.Tensor, target: torch.Tensor | None) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    # --- stateful contract (see the module docstring) ---------------------------------------------
    def new_state(self) -> Any:
        """A fresh accumulator: ``None`` for a per-image metric, a :class:`FeatureList` by default for a
        dataset-level one (override with any object that has ``merge(other) -> self``)."""
        return FeatureList() if self.dataset_level else None

    def update(self, state: Any, pred: torch.Tensor, target: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Per-image values of a batch (uint8 RGB NCHW, as :meth:`compute`); a dataset-level metric adds the
        batch's contribution to ``state`` (:meth:`update_state`) and returns ``{}``."""
        if not self.dataset_level:
            return self.compute(pred, target)
        check_images(pred, "images")
        self._ensure_loaded()
        with torch.no_grad():
            self.update_state(state, pred)
        return {}

    def update_state(self, state: Any, images: torch.Tensor) -> None:
        """Dataset level: add uint8 RGB ``(N, 3, H, W)`` images to ``state`` (default: their :meth:`features`)."""
        state.add(np.asarray(self.features(images)))

    def merge(self, state: Any, other: Any) -> Any:
        """``other``'s images after ``state``'s; returns the merged state (default: ``state.merge(other)``)."""
        return state.merge(other)

    def compute_dataset(self, state: Any, reference: Any) -> float:
        """The dataset-level value of ``state`` against ``reference`` (a state of the ground truth, a stored
        reference, or ``None``); default: :meth:`score` of the concatenated features."""
        ref = reference.array() if isinstance(reference, FeatureList) else reference
        return float(self.score(state.array(), ref))

    def load_reference(self, path: str | os.PathLike) -> Any:
        """A stored reference (e.g. FID statistics) to use instead of the ground truth's state."""
        raise ConfigError(f"metric {self.name!r} cannot use a stored reference file ({path})")

    # --- dataset level (dataset_level = True) ----------------------------------------------------
    def features(self, images: torch.Tensor) -> Any:
        """Per-image features of uint8 RGB ``(N, 3, H, W)`` images, to be pooled by :meth:`score`."""
        raise NotImplementedError(f"metric {self.name!r} is not dataset-level (it has no features())")

    def features_for_paths(self, paths: Sequence[str | os.PathLike], chunk: int = 64) -> Any:
        """:meth:`features` of image files (RGB, read with :func:`celebref.imageio.read_image`), ``chunk`` files
        at a time (images must share one size within a chunk); features are concatenated along axis 0."""
        from celebref.imageio import read_image

        out = []
        for i in range(0, len(paths), chunk):
            arrs = [read_image(p) for p in paths[i:i + chunk]]
            out.append(np.asarray(self.features(torch.from_numpy(np.stack(arrs)).permute(0, 3, 1, 2).contiguous())))
        if not out:
            raise ConfigError(f"metric {self.name!r}: no images to compute features of")
        return np.concatenate(out, axis=0)

    def score(self, pred_features: Any, reference: Any) -> float:
        """One value for a whole set from its :meth:`features` and a reference (features of the ground truth,
        or whatever else the metric accepts, e.g. stored statistics)."""
        raise NotImplementedError(f"metric {self.name!r} is not dataset-level (it has no score())")


class FeatureList:
    """The default dataset-level state: per-image feature rows in order (``merge`` appends)."""

    def __init__(self) -> None:
        self.parts: list[np.ndarray] = []

    def add(self, features: np.ndarray) -> None:
        self.parts.append(np.asarray(features))

    def merge(self, other: "FeatureList") -> "FeatureList":
        self.parts.extend(other.parts)
        return self

    @property
    def n(self) -> int:
        return int(sum(len(p) for p in self.parts))

    def array(self) -> np.ndarray:
        if not self.parts:
            raise ConfigError("no images were added to this dataset-level metric")
        return np.concatenate(self.parts, axis=0)


def check_images(x: Any, what: str = "images") -> None:
    """Raise :class:`ConfigError` unless ``x`` is a ``uint8`` tensor ``(N, 3, H, W)``."""
    if not isinstance(x, torch.Tensor):
        raise ConfigError(f"{what} must be a torch.Tensor (uint8, N x 3 x H x W, RGB), got {type(x).__name__}")
    if x.dtype != torch.uint8:
        raise ConfigError(f"{what} must be uint8 0..255 (exact pixels), got {x.dtype}")
    if x.ndim != 4 or x.shape[1] != 3:
        raise ConfigError(f"{what} must have shape (N, 3, H, W) RGB, got {tuple(x.shape)}")


def _jsonable(v: Any) -> Any:
    if isinstance(v, (str, int, float, bool)) or v is None:
        return v
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    return str(v)
