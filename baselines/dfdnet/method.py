"""The ``dfdnet`` restoration method.

Input contract: aligned 512x512 RGB uint8 faces (:mod:`celebref.imageio` convention; FFHQ-template
crops as made by :mod:`.align` or the dataset builder). Internally the official ``obtain_inputs``
recipe: an image that is not 512x512 is resized with PIL bicubic (``AddUpSample``; its landmarks
are scaled with it), ``ToTensor`` (``uint8 / 255`` in float32), ``(x - 0.5) / 0.5``. Output: the
official ``util.tensor2im``: clamp to ``[-1, 1]``, ``(x + 1) / 2 * 255`` in float32, truncated by
``astype(uint8)``.

Landmarks: ``RestoreItem.landmarks`` (68 (x, y) points on the given image) when present, else the
68-point detector of the face-analysis backend (``celebref.face.get_backend``; param
``face_backend``). Part boxes: :func:`baselines.dfdnet.parts.part_locations`; boxes whose crop
would be empty at some VGG scale (the official forward raises on those) are rejected per image.

Landmark-failure policy (``landmark_policy``): ``skip`` -> no output, status ``no_face`` (nothing
detected) or ``landmarks_rejected``; ``input`` -> the input is copied, status ``fallback_input``;
``generic`` -> DFDNet has no landmark-free mode (every scale swaps the four components), so it
behaves like ``input`` (status ``fallback_input``, the reason says so).

Params: ``matching`` (``fast``: precomputed atom statistics, the default; ``reference``: the official
per-crop formulation, same atom choices, for checks), ``channels_last`` (default true: NHWC layout for
the large convolutions, about 30% faster on CPU; 7e-6 max abs from the official float32 output on the
golden, same atom choices; ``dfdnet:channels_last=false`` gives the official NCHW run bit for bit),
``face_backend``. Spectral norm runs in
evaluation mode (see :class:`baselines.dfdnet.layers.SNConv2d`). The official script processes one
image per forward; here a batch of B images (each with its own boxes) runs in one forward.
"""

from __future__ import annotations

import traceback
from typing import Any, ClassVar

import numpy as np
import torch

from baselines.base import (
    STATUS_ERROR,
    STATUS_LANDMARKS_REJECTED,
    STATUS_NO_FACE,
    STATUS_OK,
    RestoreItem,
    RestoreResult,
    as_rgb_uint8,
    check_finite_output,
)
from baselines.landmark_method import LandmarkMethod, scale_landmarks
from baselines.params import DFDNetParams
from celebref.device import autocast

from .dictionary import DictionarySet
from .network import DFDNetGenerator
from .parts import PartLocationError, invalid_crops, part_locations

SIZE = 512


def as_rgb512(img: np.ndarray) -> np.ndarray:
    """RGB uint8 ``(H, W, 3)`` (or ``(H, W)`` grey) -> RGB uint8 ``(512, 512, 3)``; a not-512 image is
    resized with PIL bicubic (official ``AddUpSample``)."""
    a = as_rgb_uint8(img)
    if a.shape[:2] != (SIZE, SIZE):
        from PIL import Image

        a = np.asarray(Image.fromarray(a).resize((SIZE, SIZE), Image.BICUBIC))
    return a


def to_dfdnet_tensor(img: np.ndarray) -> torch.Tensor:
    """RGB uint8 image -> ``(1, 3, 512, 512)`` float32 in ``[-1, 1]``: :func:`as_rgb512`, then
    ``ToTensor`` (``/ 255`` in float32) and ``(x - 0.5) / 0.5``."""
    a = as_rgb512(img)
    t = torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1))).float().div(255)
    return t.sub_(0.5).div_(0.5).unsqueeze(0)


def from_dfdnet_tensor(t: torch.Tensor) -> np.ndarray:
    """``(3, H, W)`` or ``(1, 3, H, W)`` in ``[-1, 1]`` -> RGB uint8 ``(H, W, 3)`` (official
    ``tensor2im``: clamp, ``(x + 1) / 2 * 255`` in float32, truncation)."""
    if t.dim() == 4:
        t = t[0]
    check_finite_output(t)
    x = t.detach().cpu().float().clamp(-1, 1).numpy()
    y = (np.transpose(x, (1, 2, 0)) + np.float32(1)) / np.float32(2.0) * np.float32(255.0)
    return y.astype(np.uint8)


class DFDNetMethod(LandmarkMethod):
    """DFDNet (Li et al., ECCV 2020): VGG features swapped with multi-scale component dictionaries."""

    name: ClassVar[str] = "dfdnet"
    alignment: ClassVar[str] = "dfdnet"  # the official test_FaceDict.py template alignment (baselines.dfdnet.align)
    description: ClassVar[str] = "DFDNet (Li et al., ECCV 2020), multi-scale component dictionaries"
    needs_references: ClassVar[bool] = False
    weights: ClassVar[tuple[str, ...]] = ("dfdnet-generator", "dfdnet-dictionary")
    # celebref.precision contract; fp16 is refused until benchmarks/gpu_check.sh shows fp32 parity on a GPU
    precisions: ClassVar[tuple[str, ...]] = ("fp32", "tf32", "bf16")
    Params: ClassVar[type | None] = DFDNetParams  # its 'matching' values are network.MATCHING_MODES
    no_generic_reason: ClassVar[str] = "DFDNet has no landmark-free mode"

    net: DFDNetGenerator | None = None

    # -- construction ----------------------------------------------------------------------------
    @classmethod
    def from_network(cls, net: DFDNetGenerator, **kwargs: Any) -> "DFDNetMethod":
        """A loaded method around an existing generator with dictionaries (tests, benchmarks)."""
        if net.dictionaries is None:
            raise ValueError("the generator has no dictionaries")
        return super().from_network(net, **kwargs)  # type: ignore[return-value]

    @classmethod
    def from_state_dict(cls, state_dict: dict[str, torch.Tensor], dictionaries: DictionarySet, **kwargs: Any) -> "DFDNetMethod":
        net = DFDNetGenerator(dictionaries)
        net.load_state_dict(state_dict, strict=True)
        return cls.from_network(net, **kwargs)

    def load(self) -> None:
        from celebref import weights as store
        from celebref.errors import WeightError

        sd = store.unwrap_state_dict(store.load_torch_checkpoint("dfdnet-generator"))
        dictionaries = DictionarySet.load(store.weight_path("dfdnet-dictionary"))
        net = DFDNetGenerator(dictionaries)
        try:
            net.load_state_dict(sd, strict=True)
        except RuntimeError as e:
            raise WeightError("the 'dfdnet-generator' file does not match the official DFDNet layout: "
                              f"{str(e).splitlines()[0]}") from None
        del sd
        self.net = net.to(self.device).eval()
        self.loaded = True

    # -- landmarks -------------------------------------------------------------------------------
    def _boxes(self, img: np.ndarray, landmarks: np.ndarray | None, img512: np.ndarray) -> tuple[np.ndarray | None, str, str]:
        """``(boxes (4,4) int64, status, reason)``; boxes None on failure."""
        if landmarks is None:
            lm = self._detect(img512)
            if lm is None:
                return None, STATUS_NO_FACE, "no face detected for the 68-point landmarks"
        else:
            lm = scale_landmarks(landmarks, img.shape, SIZE)
        try:
            loc = part_locations(lm)
        except PartLocationError as e:
            return None, STATUS_LANDMARKS_REJECTED, str(e)
        bad = invalid_crops(loc)
        if bad:
            return None, STATUS_LANDMARKS_REJECTED, f"empty component crop(s) {', '.join(bad)} (boxes {loc.tolist()})"
        return loc, STATUS_OK, ""

    # -- running ---------------------------------------------------------------------------------
    def forward_tensors(self, x: torch.Tensor, boxes: list[np.ndarray], record: dict[str, Any] | None = None) -> torch.Tensor:
        """One batched forward on ``(B,3,512,512)`` ``[-1,1]`` inputs with host-side boxes."""
        assert self.net is not None
        with torch.inference_mode(), autocast(self.device, self.precision):
            return self.net(x.to(self.device), boxes, matching=self.params["matching"], record=record,
                            channels_last=bool(self.params["channels_last"]))

    def _run(self, batch: list[tuple[int, torch.Tensor, np.ndarray]]) -> list[np.ndarray]:
        x = torch.cat([t for _, t, _ in batch], 0)
        out = self.forward_tensors(x, [b for _, _, b in batch]).float().cpu()
        return [from_dfdnet_tensor(out[j]) for j in range(len(batch))]

    def _run_safely(self, batch: list[tuple[int, torch.Tensor, np.ndarray]], items: list[RestoreItem],
                    results: list[RestoreResult | None]) -> None:
        if not batch:
            return
        try:
            images = self._run(batch)
        except Exception:  # noqa: BLE001 - retry one by one: one image cannot fail the batch
            if len(batch) == 1:
                i = batch[0][0]
                results[i] = RestoreResult(items[i].id, None, STATUS_ERROR, traceback.format_exc(limit=1).strip().splitlines()[-1])
                return
            for entry in batch:
                self._run_safely([entry], items, results)
            return
        for (i, _, _), img in zip(batch, images):
            results[i] = RestoreResult(items[i].id, img, STATUS_OK, "")

    def _restore(self, items: list[RestoreItem]) -> list[RestoreResult]:
        results: list[RestoreResult | None] = [None] * len(items)
        batch = []
        for i, item in enumerate(items):
            try:
                img = np.asarray(item.image)
                img512 = as_rgb512(img)
                x = to_dfdnet_tensor(img512)
                boxes, status, reason = self._boxes(img, item.landmarks, img512)
            except Exception as e:  # noqa: BLE001 - a bad image gets a status, the batch goes on
                results[i] = RestoreResult(item.id, None, STATUS_ERROR, f"{type(e).__name__}: {e}")
                continue
            if boxes is None:
                results[i] = self._landmark_failure(item, status, reason)
                continue
            batch.append((i, x, boxes))
        self._run_safely(batch, items, results)
        return [r for r in results if r is not None]
