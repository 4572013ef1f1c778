"""Landmark distance (LMD): mean Euclidean distance, in pixels at 512x512, between the 68 landmarks
(iBUG 300-W order) of the restored face and of the ground truth, both found by the face-analysis backend
(:mod:`celebref.face`; largest face). Coordinates of other image sizes are scaled to 512 per axis before
the distance. Lower is better. No face in either image -> NaN, with the reason in ``last_failures``.
"""

from __future__ import annotations

import numpy as np
import torch

from celebref.errors import CelebrefError

from .identity import FaceMetric, to_arrays


class LandmarkDistance(FaceMetric):
    """Options: ``backend`` (``"auto"``, ``"dlib"``, ``"insightface"``), ``size`` (reference size, 512)."""

    name = "lmd"
    columns = ("lmd",)
    higher_is_better = {"lmd": False}
    weights = ()
    defaults = {"backend": "auto", "size": 512}

    def __init__(self, device="cpu", **options):
        super().__init__(device, **options)
        self.loaded = False

    def _describe(self) -> dict:
        return {"face": self._backend_info(), "points": "68 (iBUG 300-W), largest face",
                "unit": f"pixels at {int(self.options['size'])}x{int(self.options['size'])}", "reduction": "mean over points"}

    def _landmarks(self, arr: np.ndarray) -> np.ndarray | None:
        assert self.backend is not None
        lm = self.backend.detect_landmarks68(arr)
        return None if lm is None else np.asarray(lm, np.float64)

    def _compute(self, pred, target):
        preds, gts = to_arrays(pred), to_arrays(target)
        out = np.full(len(preds), np.nan)
        size = float(self.options["size"])
        for i, (p, g) in enumerate(zip(preds, gts)):
            try:
                lg = self._cached_gt(g, self._landmarks)
                lp = self._landmarks(p)
            except CelebrefError as e:
                self.last_failures[i] = f"landmark detection failed: {e}"
                continue
            if lg is None or lp is None:
                self.last_failures[i] = "no face found in the " + ("ground truth" if lg is None else "restored image")
                continue
            h, w = p.shape[:2]
            scale = np.array([size / w, size / h])
            out[i] = float(np.mean(np.linalg.norm((lp - lg) * scale, axis=1)))
        return {"lmd": torch.from_numpy(out)}
