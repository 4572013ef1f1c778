"""The ``asffnet`` restoration method: ASFFNet-512's test-time pipeline (csxmli2016/ASFFNet512 ``main_test.py``).

Input contract: an aligned 512x512 RGB uint8 LQ face (:mod:`celebref.imageio` convention) with >= 2 HQ references
of the same identity and their 68-point landmarks (``RestoreItem.references``: a test set's ``SpecificLists.txt`` /
ASFFNet ``TestLists.txt`` line ``LQ<TAB>RefDir<TAB>RefLandmarkDir``, or a degrade output's ``refs/``).

Per image, as the official script:

1. images through the official ``read_img_tensor`` recipe (the same as DMDNet's: grey -> RGB, smaller than 512 ->
   ``cv2.INTER_AREA`` to 512x512 with the landmarks scaled along, ``x / 255``, ``(x - 0.5) / 0.5``, float32 RGB);
2. the LQ's 68 landmarks: ``RestoreItem.landmarks`` when given, else our face backend (param ``face_backend``;
   the official code runs face_alignment's FAN on the LQ -- see the README/docs for how far dlib's points are);
3. the guiding reference: :func:`baselines.asffnet.selection.select_reference` (param ``selection``) among the
   usable references (landmarks of shape (68, 2), finite; param ``max_references`` keeps the first N);
4. the landmark mask (:func:`baselines.asffnet.warp.landmark_mask`) and the network forward
   (:class:`baselines.asffnet.network.ASFFNet`: MLS warp of the reference features inside);
5. output: ``y * 0.5 + 0.5``, clip to [0, 1], ``* 255``, rounded half to even (``cv2.imwrite`` of the float image).

Every ok row's ``reason`` records the choice: ``reference J/N (score S); LQ landmarks: SOURCE`` with J the 1-based
position in the reference set (sorted file names) and SOURCE ``given`` or the backend that found them.

Landmark-failure policy for the LQ (``landmark_policy``): ``skip`` -> no output (``no_face`` /
``landmarks_rejected``); ``input`` and ``generic`` -> the input is copied (``fallback_input``: ASFFNet has no
reference-free mode). Fewer than 2 usable references: ``skip`` -> no output (``skipped`` without references,
``landmarks_rejected`` otherwise), ``input``/``generic`` -> the input is copied (``fallback_input``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch

from baselines.base import (
    STATUS_ERROR,
    STATUS_FALLBACK_INPUT,
    STATUS_LANDMARKS_REJECTED,
    STATUS_NO_FACE,
    STATUS_OK,
    STATUS_SKIPPED,
    RestoreItem,
    RestoreResult,
    as_rgb_uint8,
)
from baselines.dmdnet.method import from_dmdnet_tensor, to_dmdnet_tensor
from baselines.landmark_method import LandmarkMethod, scale_landmarks
from celebref.device import autocast

from .network import ASFFNet
from .params import ASFFNetParams
from .selection import select_reference
from .warp import landmark_mask

__all__ = ["ASFFNetMethod", "MIN_REFERENCES", "SIZE", "to_tensor", "from_tensor"]

SIZE = 512
MIN_REFERENCES = 2  # the official script skips an identity with fewer than 2 reference files
to_tensor = to_dmdnet_tensor  # the official read_img_tensor recipe (identical to DMDNet's)
from_tensor = from_dmdnet_tensor  # the official save conversion


def _check_landmarks(lm: Any) -> tuple[np.ndarray | None, str]:
    a = np.asarray(lm, dtype=np.float64) if lm is not None else None
    if a is None or a.shape != (68, 2) or not np.all(np.isfinite(a)):
        return None, f"landmarks must be 68 finite (x, y) points, got {'none' if a is None else f'shape {a.shape}'}"
    return a, ""


def _landmarks_512(img: np.ndarray, lm: np.ndarray) -> np.ndarray:
    """The landmarks on the image as the network sees it (scaled when the official recipe upsizes it); raises
    ValueError for an image that is not RGB/grey uint8 or does not become 512x512 (checked without converting it)."""
    shape = as_rgb_uint8(img).shape
    if min(shape[:2]) >= SIZE and shape[:2] != (SIZE, SIZE):
        raise ValueError(f"ASFFNet takes {SIZE}x{SIZE} aligned faces, got {tuple(np.shape(img))}")
    return scale_landmarks(lm, shape, SIZE) if shape[:2] != (SIZE, SIZE) else lm


@dataclass
class _Prepared:
    index: int
    lq: torch.Tensor
    lq_lm: np.ndarray
    ref: torch.Tensor
    ref_lm: np.ndarray
    note: str


class ASFFNetMethod(LandmarkMethod):
    """ASFFNet-512 specific restoration (see the module docstring)."""

    name: ClassVar[str] = "asffnet"
    alignment: ClassVar[str] = "ffhq68"  # CelebRef-HQ / FFHQ alignment from 68 landmarks, 512x512
    description: ClassVar[str] = "ASFFNet-512 (Li et al., CVPR 2020), specific restoration guided by the best-matching reference"
    needs_references: ClassVar[bool] = True
    weights: ClassVar[tuple[str, ...]] = ("asffnet",)
    precisions: ClassVar[tuple[str, ...]] = ("fp32", "tf32")  # the warp grid is float64 -> float32 by design
    Params: ClassVar[type | None] = ASFFNetParams
    no_generic_reason: ClassVar[str] = "ASFFNet has no reference-free mode"

    net: ASFFNet | None = None

    @classmethod
    def from_state_dict(cls, state_dict: dict[str, torch.Tensor], **kwargs: Any) -> "ASFFNetMethod":
        net = ASFFNet()
        net.load_state_dict(state_dict, strict=True)
        return cls.from_network(net, **kwargs)

    def load(self) -> None:
        from celebref import weights as store

        from ..aligned_method import load_network_weights

        net = ASFFNet()  # a layout mismatch is a WeightError naming the missing/unexpected/misshapen keys
        load_network_weights(net, store.unwrap_state_dict(store.load_torch_checkpoint("asffnet")), "the 'asffnet' weight file")
        self.net = net.to(self.device).eval()
        self.loaded = True

    # -- per-image preparation -------------------------------------------------------------------
    def _lq_landmarks(self, item: RestoreItem) -> tuple[np.ndarray | None, str, str]:
        """``(landmarks, source, failure reason)``; source ``given`` or the backend's name."""
        if item.landmarks is not None:
            lm, why = _check_landmarks(item.landmarks)
            return lm, "given", why
        found = self._detect(np.asarray(item.image))
        from celebref.face import get_backend

        name = self.params.get("face_backend") or "auto"
        source = getattr(get_backend(None if name == "auto" else name), "name", name)
        if found is None:
            return None, source, "no face detected for the 68-point landmarks"
        lm, why = _check_landmarks(found)
        return lm, source, why

    def _references(self, item: RestoreItem) -> tuple[list[tuple[int, np.ndarray, np.ndarray]], str]:
        """Usable references as ``(position, image, landmarks)`` (position in the reference set), and the notes on
        those left out."""
        refs = item.references
        if refs is None or not refs.images:
            return [], "no references given"
        n = len(refs.images) if not self.params["max_references"] else min(len(refs.images), int(self.params["max_references"]))
        lms = list(refs.landmarks or [])
        usable, dropped = [], []
        for j in range(n):
            lm, why = _check_landmarks(lms[j] if j < len(lms) else None)
            if lm is None:
                dropped.append(f"ref {j + 1}: {why}")
                continue
            usable.append((j, refs.images[j], lm))
        return usable, "; ".join(dropped)

    def _prepare(self, item: RestoreItem, i: int) -> _Prepared | RestoreResult:
        lm, source, why = self._lq_landmarks(item)
        if lm is None:
            status = STATUS_NO_FACE if why.startswith("no face") else STATUS_LANDMARKS_REJECTED
            return self._landmark_failure(item, status, why)
        lq_lm = _landmarks_512(item.image, lm)
        usable, dropped = self._references(item)
        candidates, ref_lms = [], {}
        for j, img, rlm in usable:
            try:
                ref_lms[j] = _landmarks_512(img, rlm)
                candidates.append(j)
            except Exception as e:  # noqa: BLE001 - one bad reference is left out, not fatal
                dropped = "; ".join(filter(None, [dropped, f"ref {j + 1}: {type(e).__name__}: {e}"]))
        if len(candidates) < MIN_REFERENCES:
            missing = item.references is None or not item.references.images
            why = f"{len(candidates)} usable reference(s), need >= {MIN_REFERENCES}" + (f" ({dropped})" if dropped else "")
            if self.landmark_policy == "skip":
                return RestoreResult(item.id, None, STATUS_SKIPPED if missing else STATUS_LANDMARKS_REJECTED, why)
            return RestoreResult(item.id, np.array(item.image, copy=True), STATUS_FALLBACK_INPUT,
                                 f"{why} (policy {self.landmark_policy!r}: {self.no_generic_reason}, so the input is copied)")
        k, scores = select_reference(lq_lm, [ref_lms[j] for j in candidates], self.params["selection"])
        j = candidates[k]
        total = len(item.references.images) if item.references is not None else 0
        note = f"reference {j + 1}/{total} (score {scores[k]:.4f}); LQ landmarks: {source}"
        if dropped:
            note += f"; left out: {dropped}"
        assert item.references is not None  # there are >= 2 candidates
        # only the chosen reference is converted, as the official script reads only that one
        return _Prepared(i, to_tensor(item.image), lq_lm, to_tensor(item.references.images[j]), ref_lms[j], note)

    # -- running ---------------------------------------------------------------------------------
    def _forward(self, batch: list[_Prepared]) -> list[np.ndarray]:
        assert self.net is not None
        dev = self.device
        lq = torch.cat([p.lq for p in batch]).to(dev)
        ref = torch.cat([p.ref for p in batch]).to(dev)
        mask = torch.from_numpy(np.concatenate([landmark_mask(p.lq_lm, SIZE) for p in batch])).to(dev)
        lq_lm = np.stack([p.lq_lm for p in batch])
        ref_lm = np.stack([p.ref_lm for p in batch])
        with torch.inference_mode(), autocast(dev, self.precision):
            out = self.net(lq, ref, mask, lq_lm, ref_lm).float().cpu()
        return [from_tensor(out[b]) for b in range(len(batch))]

    def _run_safely(self, batch: list[_Prepared], items: list[RestoreItem], results: list[RestoreResult | None]) -> None:
        if not batch:
            return
        try:
            images = self._forward(batch)
        except Exception as e:  # noqa: BLE001 - retry one by one so that one image cannot fail the batch
            if len(batch) == 1:
                p = batch[0]
                results[p.index] = RestoreResult(items[p.index].id, None, STATUS_ERROR, f"{type(e).__name__}: {e}")
                return
            for p in batch:
                self._run_safely([p], items, results)
            return
        for p, img in zip(batch, images):
            results[p.index] = RestoreResult(items[p.index].id, img, STATUS_OK, p.note)

    def _restore(self, items: list[RestoreItem]) -> list[RestoreResult]:
        results: list[RestoreResult | None] = [None] * len(items)
        batch = []
        for i, item in enumerate(items):
            try:
                got = self._prepare(item, i)
            except Exception as e:  # noqa: BLE001 - one bad image never stops the batch
                got = RestoreResult(item.id, None, STATUS_ERROR, f"{type(e).__name__}: {e}")
            if isinstance(got, RestoreResult):
                results[i] = got
            else:
                batch.append(got)
        self._run_safely(batch, items, results)
        return [r for r in results if r is not None]
