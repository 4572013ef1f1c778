"""Identity against a reference set: the cosine similarity of each face to the **closest** reference embedding of
the people who may appear (``identity-refs``; ``celebref evaluate --whole-photo --identity-refs DIR``). No ground
truth is needed (:attr:`needs_reference` is ``False``): the references are the ``refs`` option, a folder.

Conventions: ``refs`` holds face images (any layout, every image below it; aligned crops or photos: the largest
detected face of each file is embedded; files without a face are left out and listed in :meth:`describe`). Every
embedding is unit-norm (the face backend's, as the ``identity`` metric's). Per image:

* ``mode="aligned"`` (default): the image is an aligned face crop (``backend.embed_aligned``, as the ``identity``
  metric's default mode) and ``identity_ref_cos = max_r <e, r>`` in ``[-1, 1]`` (higher is better);
* ``mode="detect"``: every face detected in the image (e.g. a whole photo) is embedded, and the value is the mean
  over those faces of each one's closest-reference cosine; an image without a face scores NaN with the reason
  ``no face detected`` in :attr:`last_failures`.

Labels name the backend like the ``identity`` metric's (:func:`evaluation.identity.identity_labels`), with
``-ref``: ``ID-ref(dlib)``, ``IDS-ref(ArcFace)``; numbers of different backends are not comparable.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch

from celebref.errors import CelebrefError, ConfigError
from celebref.face.base import largest
from celebref.imageio import list_images, read_image

from .identity import FaceMetric, identity_labels, to_arrays

__all__ = ["IdentityToReferences", "ReferenceEmbeddings", "embed_largest_face"]


def embed_largest_face(backend, img: np.ndarray) -> np.ndarray | None:
    """The unit-norm embedding (float64) of the largest face detected in RGB uint8 ``img``; ``None`` when none."""
    det = largest(backend.detect(img))
    return None if det is None else np.asarray(backend.embed(img, det), dtype=np.float64)


class ReferenceEmbeddings:
    """The reference set's embeddings (``matrix``: ``(N, D)`` float64 unit rows), the files used and the files
    left out with why. :class:`~celebref.errors.ConfigError` when the folder is missing or holds no face."""

    def __init__(self, folder: str | Path, backend):
        folder = Path(folder)
        if not folder.is_dir():
            raise ConfigError(f"identity references {str(folder)!r} is not a folder of reference face images")
        self.folder, self.backend = folder, backend
        self.used: list[str] = []
        self.skipped: dict[str, str] = {}
        rows = []
        for path in list_images(folder):
            try:
                emb = embed_largest_face(backend, read_image(path))
                why = "" if emb is not None else "no face found"
            except (CelebrefError, OSError, ValueError) as exc:
                emb, why = None, str(exc)
            if emb is None:
                self.skipped[str(path)] = why
                continue
            rows.append(emb)
            self.used.append(str(path))
        if not rows:
            raise ConfigError(f"no face found in any image of the identity references {str(folder)!r} "
                              f"({len(self.skipped)} file(s) tried)")
        self.matrix = np.stack(rows).astype(np.float64)

    def closest(self, emb: np.ndarray) -> float:
        """Cosine similarity of the unit embedding ``emb`` to its closest reference, clipped to ``[-1, 1]``."""
        return float(np.clip(np.max(self.matrix @ np.asarray(emb, dtype=np.float64)), -1.0, 1.0))

    def digest(self) -> str:
        """sha256 (16 hex) of the reference matrix: two runs used the same references when these agree."""
        return hashlib.sha256(np.ascontiguousarray(self.matrix).tobytes()).hexdigest()[:16]


class IdentityToReferences(FaceMetric):
    """Options: ``refs`` (folder of reference faces; required), ``backend`` (``"auto"``, ``"dlib"``,
    ``"insightface"``), ``mode`` (``"aligned"`` or ``"detect"``)."""

    name = "identity-refs"
    columns = ("identity_ref_cos",)
    higher_is_better = {"identity_ref_cos": True}
    needs_reference = False
    weights = ()
    defaults = {"refs": None, "backend": "auto", "mode": "aligned"}

    def __init__(self, device="cpu", **options):
        super().__init__(device, **options)
        if self.options["mode"] not in ("aligned", "detect"):
            raise ConfigError(f"identity-refs mode must be 'aligned' or 'detect', got {self.options['mode']!r}")
        if self.options["refs"] is not None:
            self.options["refs"] = str(self.options["refs"])
        self.references: ReferenceEmbeddings | None = None
        self.loaded = False

    def _load(self) -> None:
        if not self.options["refs"]:
            raise ConfigError("metric identity-refs needs refs=<folder of reference face images> "
                              "(celebref evaluate --whole-photo --identity-refs DIR)")
        super()._load()
        self.references = ReferenceEmbeddings(self.options["refs"], self.backend)

    def column_labels(self) -> dict[str, str]:
        stem = identity_labels(self.backend_tag())["identity_cos"]
        name, _, tag = stem.partition("(")
        return {"identity_ref_cos": f"{name}-ref({tag}"}

    def _describe(self) -> dict:
        refs = self.references
        info = {"face": self._backend_info(), "mode": self.options["mode"], "labels": self.column_labels(),
                "columns_meaning": {"identity_ref_cos": "cosine of unit embeddings to the closest reference"}}
        if refs is not None:
            info["references"] = {"folder": str(refs.folder), "n_used": len(refs.used), "skipped": dict(refs.skipped),
                                  "sha256": refs.digest()}
        return info

    def _value(self, arr: np.ndarray) -> tuple[float, str]:
        refs = self.references
        assert refs is not None and self.backend is not None
        if self.options["mode"] == "aligned":
            return refs.closest(np.asarray(self.backend.embed_aligned(arr), np.float64)), ""
        dets = self.backend.detect(arr)
        if not dets:
            return float("nan"), "no face detected"
        return float(np.mean([refs.closest(np.asarray(self.backend.embed(arr, d), np.float64)) for d in dets])), ""

    def _compute(self, pred, target):
        out = np.full(pred.shape[0], np.nan)
        for i, arr in enumerate(to_arrays(pred)):
            try:
                out[i], why = self._value(arr)
            except CelebrefError as e:
                why = f"face analysis failed: {e}"
            if why:
                self.last_failures[i] = why
        return {"identity_ref_cos": torch.from_numpy(out)}
