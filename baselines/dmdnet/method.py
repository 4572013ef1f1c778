"""The ``dmdnet`` (generic) and ``dmdnet-specific`` restoration methods.

Input contract: aligned 512x512 RGB uint8 faces (:mod:`celebref.imageio` convention). Internally
each image goes through the official ``read_img_tensor`` recipe: grey -> RGB, an image smaller than
512 is resized to 512x512 with ``cv2.INTER_AREA`` (its landmarks scaled with it), ``x / 255`` in
float64, cast to float32, then ``(x - 0.5) / 0.5``. The output is the official save conversion:
``y * 0.5 + 0.5`` (float32), ``np.clip(., 0, 1) * 255``, then rounded half-to-even to uint8 as
``cv2.imwrite`` does for a float image; RGB order kept (the official script writes BGR files).

Landmarks: ``RestoreItem.landmarks`` when given, else the 68-point detector of the face-analysis
backend (``celebref.face.get_backend``; param ``face_backend``). Component boxes come from
:func:`baselines.dmdnet.components.component_locations`. Boxes on which the official forward would
fail (empty or out-of-image crops) are rejected per image instead of aborting the batch.

Landmark-failure policy (``landmark_policy``) for the **LQ** image:
``skip`` -> no output, status ``no_face`` (nothing detected) or ``landmarks_rejected``;
``input`` -> the input is copied, status ``fallback_input``; ``generic`` -> DMDNet cannot run at all
without the LQ component boxes, so it behaves like ``input`` (status ``fallback_input``, the reason
says so). For ``dmdnet-specific``, when the **references** are missing or fewer than 2 of them have
usable landmarks: ``skip`` -> no output (``landmarks_rejected``, or ``skipped`` when the item has no
references at all), ``input`` -> copy
(``fallback_input``), ``generic`` -> generic DMDNet output (``fallback_generic``).

Specific dictionaries are built once per :attr:`ReferenceSet.key` and kept in a bounded LRU cache
(param ``dict_cache`` entries); :attr:`DMDNetSpecific.dictionary_builds` counts builds. The official
script rebuilds the dictionary for every input line. A batch may mix identities.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, ClassVar

import numpy as np
import torch

from baselines.base import (
    STATUS_ERROR,
    STATUS_FALLBACK_GENERIC,
    STATUS_FALLBACK_INPUT,
    STATUS_LANDMARKS_REJECTED,
    STATUS_NO_FACE,
    STATUS_OK,
    STATUS_SKIPPED,
    ReferenceSet,
    RestoreItem,
    RestoreResult,
    as_rgb_uint8,
    check_finite_output,
)
from baselines.landmark_method import LandmarkMethod, scale_landmarks
from baselines.params import DMDNetParams, DMDNetSpecificParams
from celebref.device import autocast

from .components import component_locations
from .network import DMDNet, SpecificDictionary, check_boxes

SIZE = 512
MIN_REFERENCES = 2


def to_dmdnet_tensor(img: np.ndarray) -> torch.Tensor:
    """RGB uint8 HxWx3 (or HxW grey) -> (1, 3, H, W) float32 RGB in [-1, 1], official recipe.

    Images smaller than 512 in either side are first resized to 512x512 with ``cv2.INTER_AREA``.
    """
    import cv2

    a = as_rgb_uint8(img)
    if a.shape[0] < SIZE or a.shape[1] < SIZE:
        a = cv2.resize(a, (SIZE, SIZE), interpolation=cv2.INTER_AREA)
    t = torch.from_numpy(a.transpose((2, 0, 1)) / 255.0).float()
    t.sub_(0.5).div_(0.5)
    return t.unsqueeze(0)


def from_dmdnet_tensor(t: torch.Tensor) -> np.ndarray:
    """(3, H, W) or (1, 3, H, W) tensor in [-1, 1] -> RGB uint8 HxWx3, as the official save.

    ``t * 0.5 + 0.5`` in float32, clip to [0, 1], ``* 255`` in float32, then round half to even
    (OpenCV's ``saturate_cast<uchar>``, which ``cv2.imwrite`` applies to float images).
    """
    if t.dim() == 4:
        t = t[0]
    check_finite_output(t)
    y = t.detach().float() * 0.5 + 0.5
    y = np.clip(y.permute(1, 2, 0).cpu().numpy(), 0, 1) * 255.0
    return np.rint(y).astype(np.uint8)


class _Prepared:
    __slots__ = ("index", "tensor", "loc")

    def __init__(self, index: int, tensor: torch.Tensor, loc: np.ndarray):
        self.index, self.tensor, self.loc = index, tensor, loc


class DMDNetGeneric(LandmarkMethod):
    """DMDNet generic restoration (no references): the generic memory dictionaries only."""

    name: ClassVar[str] = "dmdnet"
    alignment: ClassVar[str] = "ffhq68"  # FFHQ dataset alignment from 68 landmarks (CelebRef-HQ)
    description: ClassVar[str] = "DMDNet (Li et al., TPAMI 2022), generic restoration"
    needs_references: ClassVar[bool] = False
    weights: ClassVar[tuple[str, ...]] = ("dmdnet",)
    # celebref.precision contract; fp16 is refused until benchmarks/gpu_check.sh shows fp32 parity on a GPU
    precisions: ClassVar[tuple[str, ...]] = ("fp32", "tf32", "bf16")
    Params: ClassVar[type | None] = DMDNetParams
    no_generic_reason: ClassVar[str] = "DMDNet needs the LQ component boxes"

    net: DMDNet | None = None

    # -- construction ----------------------------------------------------------------------------
    @classmethod
    def from_state_dict(cls, state_dict: dict[str, torch.Tensor], **kwargs: Any) -> "DMDNetGeneric":
        net = DMDNet()
        net.load_state_dict(state_dict, strict=True)
        return cls.from_network(net, **kwargs)

    def load(self) -> None:
        from celebref import weights as store

        sd = store.unwrap_state_dict(store.load_torch_checkpoint("dmdnet"))
        net = DMDNet()
        try:
            net.load_state_dict(sd, strict=True)
        except RuntimeError as e:
            from celebref.errors import WeightError

            raise WeightError(f"the 'dmdnet' weight file does not match the official DMDNet layout: {str(e).splitlines()[0]}") from None
        self.net = net.to(self.device).eval()
        self.loaded = True

    # -- landmarks -------------------------------------------------------------------------------
    def _locations(self, img: np.ndarray, landmarks: np.ndarray | None) -> tuple[np.ndarray | None, str, str]:
        """``(loc, status, reason)``: loc (4, 4) float32, or None with a failure status."""
        if landmarks is None:
            landmarks = self._detect(img)
            if landmarks is None:
                return None, STATUS_NO_FACE, "no face detected for the 68-point landmarks"
        lm = np.asarray(landmarks)
        if lm.shape != (68, 2) or not np.all(np.isfinite(lm)):
            return None, STATUS_LANDMARKS_REJECTED, f"landmarks must be 68 finite (x, y) points, got shape {lm.shape}"
        if img.shape[0] < SIZE or img.shape[1] < SIZE:  # they follow the official upscale of a small image
            lm = scale_landmarks(lm, img.shape, SIZE)
        loc = component_locations(lm)
        why = check_boxes(loc[None])[0]
        if why:
            return None, STATUS_LANDMARKS_REJECTED, why
        return loc, STATUS_OK, ""

    # -- running ---------------------------------------------------------------------------------
    def _prepare(self, items: list[RestoreItem], results: list[RestoreResult | None]) -> list[_Prepared]:
        prepared = []
        for i, item in enumerate(items):
            try:
                tensor = to_dmdnet_tensor(item.image)
                if tensor.shape[-2:] != (SIZE, SIZE):
                    raise ValueError(f"DMDNet takes {SIZE}x{SIZE} aligned faces, got {tuple(np.shape(item.image))}")
                loc, status, reason = self._locations(np.asarray(item.image), item.landmarks)
            except Exception as e:  # noqa: BLE001 - one bad image never stops the batch
                results[i] = RestoreResult(item.id, None, STATUS_ERROR, f"{type(e).__name__}: {e}")
                continue
            if loc is None:
                results[i] = self._landmark_failure(item, status, reason)
                continue
            prepared.append(_Prepared(i, tensor, loc))
        return prepared

    def _run(self, batch: list[_Prepared], dictionaries: list[SpecificDictionary] | None) -> list[np.ndarray]:
        """One batched forward; returns uint8 images (specific output when ``dictionaries`` is given)."""
        assert self.net is not None
        lq = torch.cat([p.tensor for p in batch], 0).to(self.device)
        loc = np.stack([p.loc for p in batch])  # host-side boxes: no device sync in the forward
        with torch.inference_mode(), autocast(self.device, self.precision):
            if dictionaries is None:
                out, _ = self.net(lq, loc)
            else:
                sp = [[d[k] for d in dictionaries] for k in range(3)]
                _, out = self.net(lq, loc, sp[0], sp[1], sp[2], generic=False)
        assert out is not None
        out = out.float().cpu()
        return [from_dmdnet_tensor(out[j]) for j in range(len(batch))]

    def _run_safely(self, batch: list[_Prepared], dictionaries: list[SpecificDictionary] | None,
                    items: list[RestoreItem], results: list[RestoreResult | None], status: str, reasons: list[str]) -> None:
        if not batch:
            return
        try:
            images = self._run(batch, dictionaries)
        except Exception:  # noqa: BLE001 - retry one by one so that one image cannot fail the batch
            if len(batch) == 1:
                p = batch[0]
                import traceback

                results[p.index] = RestoreResult(items[p.index].id, None, STATUS_ERROR, traceback.format_exc(limit=1).strip().splitlines()[-1])
                return
            for j, p in enumerate(batch):
                self._run_safely([p], None if dictionaries is None else [dictionaries[j]], items, results, status, [reasons[j]])
            return
        for p, img, why in zip(batch, images, reasons):
            results[p.index] = RestoreResult(items[p.index].id, img, status, why)

    def _restore(self, items: list[RestoreItem]) -> list[RestoreResult]:
        results: list[RestoreResult | None] = [None] * len(items)
        prepared = self._prepare(items, results)
        self._run_safely(prepared, None, items, results, STATUS_OK, [""] * len(prepared))
        return [r for r in results if r is not None]


class DMDNetSpecific(DMDNetGeneric):
    """DMDNet specific restoration: generic memory mixed with a dictionary built from >= 2
    high-quality references of the same identity (``RestoreItem.references``).

    Params: ``dict_cache`` (identities whose dictionaries stay cached, LRU), ``ref_chunk`` (encode
    the references that many at a time to bound memory; 0 = all at once, as the official code),
    ``face_backend`` (landmark detector for items/references without landmarks). Only the specific
    output is decoded (the official forward also decodes the generic one, which is discarded here).
    """

    name: ClassVar[str] = "dmdnet-specific"
    description: ClassVar[str] = "DMDNet (Li et al., TPAMI 2022), specific restoration with identity references"
    needs_references: ClassVar[bool] = True
    Params: ClassVar[type | None] = DMDNetSpecificParams

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._cache: OrderedDict[str, tuple[SpecificDictionary | None, str]] = OrderedDict()
        self.dictionary_builds = 0

    def _build(self, refs: ReferenceSet) -> tuple[SpecificDictionary | None, str]:
        """The identity's dictionary, or ``(None, reason)`` when fewer than 2 references are usable."""
        assert self.net is not None
        tensors, locs, dropped = [], [], []
        lms = list(refs.landmarks) if refs.landmarks is not None else []
        for j, img in enumerate(refs.images):
            try:
                lm = lms[j] if j < len(lms) else None
                loc, _, why = self._locations(np.asarray(img), lm)
                if loc is None:
                    dropped.append(f"ref {j}: {why}")
                    continue
                t = to_dmdnet_tensor(img)
                if t.shape[-2:] != (SIZE, SIZE):
                    dropped.append(f"ref {j}: not {SIZE}x{SIZE}")
                    continue
            except Exception as e:  # noqa: BLE001
                dropped.append(f"ref {j}: {type(e).__name__}: {e}")
                continue
            tensors.append(t)
            locs.append(loc)
        if len(tensors) < MIN_REFERENCES:
            return None, f"{len(tensors)} usable reference(s) for {refs.key!r}, need >= {MIN_REFERENCES}" + (f" ({'; '.join(dropped)})" if dropped else "")
        with torch.inference_mode(), autocast(self.device, self.precision):
            d = self.net.generate_specific_dictionary(torch.cat(tensors, 0).to(self.device), np.stack(locs), chunk=int(self.params["ref_chunk"]) or None)
        self.dictionary_builds += 1
        return d, ("; ".join(dropped) if dropped else "")

    def dictionary(self, refs: ReferenceSet) -> tuple[SpecificDictionary | None, str]:
        """Cached per ``refs.key`` (LRU, at most ``dict_cache`` identities)."""
        if refs.key in self._cache:
            self._cache.move_to_end(refs.key)
            return self._cache[refs.key]
        entry = self._build(refs)
        self._cache[refs.key] = entry
        while len(self._cache) > max(1, int(self.params["dict_cache"])):
            self._cache.popitem(last=False)
        return entry

    def _restore(self, items: list[RestoreItem]) -> list[RestoreResult]:
        results: list[RestoreResult | None] = [None] * len(items)
        prepared = self._prepare(items, results)
        spec_batch, spec_dicts, spec_notes = [], [], []
        gen_batch, gen_notes = [], []
        for p in prepared:
            item = items[p.index]
            missing = item.references is None or not item.references.images
            try:
                if missing:
                    d, why = None, "no references given"
                else:
                    d, why = self.dictionary(item.references)  # type: ignore[arg-type]
            except Exception as e:  # noqa: BLE001
                d, why = None, f"building the specific dictionary failed: {type(e).__name__}: {e}"
            if d is not None:
                spec_batch.append(p)
                spec_dicts.append(d)
                spec_notes.append(why)
            elif self.landmark_policy == "generic":
                gen_batch.append(p)
                gen_notes.append(why)
            elif self.landmark_policy == "input":
                results[p.index] = RestoreResult(item.id, np.array(item.image, copy=True), STATUS_FALLBACK_INPUT, why)
            else:
                results[p.index] = RestoreResult(item.id, None, STATUS_SKIPPED if missing else STATUS_LANDMARKS_REJECTED, why)
        self._run_safely(spec_batch, spec_dicts, items, results, STATUS_OK, spec_notes)
        self._run_safely(gen_batch, None, items, results, STATUS_FALLBACK_GENERIC, gen_notes)
        return [r for r in results if r is not None]
