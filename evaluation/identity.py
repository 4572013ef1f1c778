"""Identity preservation: cosine similarity and angle between the restored face's and the ground truth's
identity embeddings (:mod:`celebref.face`: insightface ArcFace ``w600k_r50`` when its files are present,
dlib's 128-d ResNet descriptor offline).

Conventions: embeddings are unit-norm; ``identity_cos = <e_pred, e_gt>`` in ``[-1, 1]`` (higher is better);
``identity_angle = degrees(arccos(cos))`` in ``[0, 180]`` (lower is better). Backends differ in scale: compare
numbers only with the same backend and model, which :meth:`Identity.describe` records. Display labels name
the backend (:meth:`FaceMetric.column_labels`): ``IDS(ArcFace)``/``Deg(ArcFace)`` for insightface's ArcFace, as
in the papers, and ``ID(dlib)``/``Deg(dlib)`` for the dlib descriptor, which is a different number. When
``backend="auto"`` falls back to dlib, :meth:`FaceMetric.load` prints one line saying so on stderr.

``mode="aligned"`` (default) treats both images as aligned face crops (:meth:`FaceBackend.embed_aligned`:
the detector's largest face, else the backend's aligned-face prior box); ``mode="detect"`` requires a
detected face in both images and scores NaN (a recorded failure, with its reason in ``last_failures``)
when there is none.
"""

from __future__ import annotations

import hashlib
import sys
from collections import OrderedDict

import numpy as np
import torch

from celebref.errors import CelebrefError, ConfigError, WeightError
from celebref.face.base import largest

from .base import Metric

_GT_CACHE_SIZE = 4096


def to_arrays(images: torch.Tensor) -> list[np.ndarray]:
    """uint8 ``(N, 3, H, W)`` -> list of RGB uint8 ``(H, W, 3)`` arrays (the face backends' input)."""
    return list(images.detach().to("cpu").permute(0, 2, 3, 1).contiguous().numpy())


def _digest(arr: np.ndarray) -> str:
    return hashlib.sha256(f"{arr.shape}|".encode() + arr.tobytes()).hexdigest()


class FaceMetric(Metric):
    """Shared backend handling for metrics built on :mod:`celebref.face`."""

    def __init__(self, device="cpu", **options):
        super().__init__(device, **options)
        self.backend = None
        self._gt_cache: OrderedDict[str, object] = OrderedDict()

    def _load(self) -> None:
        try:
            from celebref.face import get_backend
        except ImportError as e:  # pragma: no cover - the face package is part of celebref
            raise WeightError(f"{self.name}: face analysis is unavailable ({e})") from None
        name = self.options["backend"]
        try:
            self.backend = get_backend(None if name in (None, "auto") else name)
        except ConfigError:
            raise
        except CelebrefError as e:
            raise WeightError(f"{self.name}: no face-analysis backend can run: {e}") from None
        if name in (None, "auto") and self.backend.name == "dlib":
            why = (getattr(self.backend, "selection", "") or "").partition("(")[2].rstrip(")")
            why = why.splitlines()[0][:120] + ("..." if len(why) > 120 else "") if why else "insightface unavailable"
            labels = ", ".join(self.column_labels().values())
            print(f"{self.name}: fell back to the dlib face backend, columns labelled {labels}{self.fallback_note} "
                  f"({why})", file=sys.stderr)

    #: column -> display stem; the label is ``stem(backend tag)`` (default stem: the column name upper-cased)
    label_stems: dict[str, str] = {}
    #: said after the labels when ``backend="auto"`` falls back to dlib
    fallback_note: str = ""

    def backend_tag(self) -> str:
        """Short name of the embedding/landmark model behind the numbers (``dlib``, ``insightface``, or the
        requested backend option before :meth:`load`)."""
        return self.backend.name if self.backend is not None else str(self.options["backend"] or "auto")

    def column_labels(self) -> dict[str, str]:
        """Display label of each column, naming the backend, e.g. ``{"lmd": "LMD(dlib)"}``."""
        tag = self.backend_tag()
        return {c: f"{self.label_stems.get(c, c.upper())}({tag})" for c in self.columns}

    def _backend_info(self) -> dict:
        if self.backend is None:
            return {"backend": self.options["backend"], "models": "resolved at load()"}
        info = self.backend.describe()
        sel = getattr(self.backend, "selection", None)
        if sel:
            info["selection"] = sel
        return info

    def _cached_gt(self, arr: np.ndarray, fn):
        key = _digest(arr)
        if key in self._gt_cache:
            self._gt_cache.move_to_end(key)
            return self._gt_cache[key]
        value = fn(arr)
        self._gt_cache[key] = value
        if len(self._gt_cache) > _GT_CACHE_SIZE:
            self._gt_cache.popitem(last=False)
        return value


def identity_labels(tag: str) -> dict[str, str]:
    """Display labels of the identity columns for face backend ``tag``: ``IDS(ArcFace)``/``Deg(ArcFace)`` with
    insightface (the papers' ArcFace identity score and angle), ``ID(<tag>)``/``Deg(<tag>)`` otherwise (e.g. dlib's
    descriptor: not the papers' IDS, a different model and scale)."""
    if tag == "insightface":
        return {"identity_cos": "IDS(ArcFace)", "identity_angle": "Deg(ArcFace)"}
    return {"identity_cos": f"ID({tag})", "identity_angle": f"Deg({tag})"}


class Identity(FaceMetric):
    """Options: ``backend`` (``"auto"``, ``"dlib"``, ``"insightface"``), ``mode`` (``"aligned"`` or ``"detect"``)."""

    name = "identity"
    columns = ("identity_cos", "identity_angle")
    higher_is_better = {"identity_cos": True, "identity_angle": False}
    weights = ()
    defaults = {"backend": "auto", "mode": "aligned"}
    label_stems = {"identity_cos": "ID", "identity_angle": "Deg"}
    fallback_note = ", not the papers' ArcFace IDS/Deg"

    def __init__(self, device="cpu", **options):
        super().__init__(device, **options)
        if self.options["mode"] not in ("aligned", "detect"):
            raise ConfigError(f"identity mode must be 'aligned' or 'detect', got {self.options['mode']!r}")
        self.loaded = False

    def column_labels(self) -> dict[str, str]:
        """The columns' labels for this metric's backend (:func:`identity_labels`)."""
        return identity_labels(self.backend_tag())

    def _describe(self) -> dict:
        return {"face": self._backend_info(), "mode": self.options["mode"], "labels": self.column_labels(),
                "columns_meaning": {"identity_cos": "cosine of unit embeddings", "identity_angle": "arccos in degrees"}}

    def _embed(self, arr: np.ndarray) -> np.ndarray | None:
        assert self.backend is not None
        if self.options["mode"] == "aligned":
            return np.asarray(self.backend.embed_aligned(arr), np.float64)
        det = largest(self.backend.detect(arr))
        return None if det is None else np.asarray(self.backend.embed(arr, det), np.float64)

    def _compute(self, pred, target):
        preds, gts = to_arrays(pred), to_arrays(target)
        cos = np.full(len(preds), np.nan)
        for i, (p, g) in enumerate(zip(preds, gts)):
            try:
                eg = self._cached_gt(g, self._embed)
                ep = self._embed(p)
            except CelebrefError as e:
                self.last_failures[i] = f"face analysis failed: {e}"
                continue
            if eg is None or ep is None:
                self.last_failures[i] = "no face detected in the " + ("ground truth" if eg is None else "restored image")
                continue
            cos[i] = float(np.clip(np.dot(ep / np.linalg.norm(ep), eg / np.linalg.norm(eg)), -1.0, 1.0))
        angle = np.degrees(np.arccos(cos))
        return {"identity_cos": torch.from_numpy(cos), "identity_angle": torch.from_numpy(angle)}
