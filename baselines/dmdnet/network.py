"""DMDNet inference network (Li et al., "Learning Dual Memory Dictionaries for Blind Face
Restoration", TPAMI 2022), re-implemented for inference from the description of the official
``csxmli2016/DMDNet`` ``models/DMDNet.py``.

Conventions
-----------
* Images: float32 NCHW **RGB in [-1, 1]**, 512x512 (``x/255`` then ``(x-0.5)/0.5``).
* Component locations ``loc``: ``(B, 4, 4)`` rows ``LE, RE, NO, MO``, columns ``x1, y1, x2, y2`` in
  pixels of the 512 image (see :mod:`baselines.dmdnet.components`). Boxes are read on the host
  (``loc.int()``, done with numpy: no host tensor is created); pass a numpy array so that the forward
  never has to wait for the device (a CUDA ``loc`` is copied to the host once, which synchronises).
* The ``state_dict()`` has exactly the keys, shapes and order of the official checkpoint
  (``DMDNet.pth``): the 18 generic memory banks first, then every spectral-normalised conv as
  ``bias, weight_orig, weight_u, weight_v``.

Behaviour reproduced (numerically, op for op): eval-mode spectral norm with the stored ``u, v``
(no power iteration, ever), ROI crops by floor-divided Python slicing then bilinear resize
(``align_corners=False``), the memory read as a softmax over slots with temperature
``sqrt(#slots)``, the raw (sigmoid-free) specific/generic mixing mask, AdaIN with the unbiased
variance plus ``1e-5``, the sigmoid-free attention, and paste-back onto clones in the order
LE, RE, MO.

Differences from the official code that do not change the numbers: the batch may mix
identities (``sp_*`` may be a list with one specific dictionary per image, each read with its
own temperature ``sqrt(N_refs)``); the generic memory read is computed once and shared by the
generic and the specific branch; the reference encoder skips its (unused) query heads;
``generic=False`` skips the generic decoder when only the specific output is wanted.

Modules: :mod:`.layers` (spectral-norm convs and blocks), :mod:`.geometry` (boxes, ROI crops),
:mod:`.encoder` (E_lq / E_hq), :mod:`.memory` (AdaIN, memory read), this module (the network).
Precision: the memory read's similarity and softmax are a float32 island (:mod:`.memory`).
Speed: :meth:`DMDNet.compile_static` compiles the static-shape sub-networks (encoder trunks,
MSDilate, up blocks); the box-dependent crops and paste-back stay eager.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .encoder import FeatureEncoder
from .geometry import (
    NUM_SLOTS,
    PART_ROWS,
    PART_SIZES_512,
    PARTS,
    SCALE_DIV,
    SCALES,
    SpArg,
    SpecificDictionary,
    box_slices,
    boxes_host,
    check_boxes,
    part_size,
    roi_crop,
)
from .layers import KeyValue, MaskAttention, MSDilateBlock, SNConv2d, StyledUpBlock, conv_pair, lrelu, up_res
from .memory import adain, mean_std, read_memory

__all__ = ["DMDNet", "FeatureEncoder", "SNConv2d", "SpecificDictionary", "SpArg", "check_boxes", "part_size", "roi_crop",
           "adain", "mean_std", "read_memory", "boxes_host", "box_slices", "PARTS", "PART_ROWS", "PART_SIZES_512",
           "SCALES", "SCALE_DIV", "NUM_SLOTS"]


class DMDNet(nn.Module):
    """DMDNet with the official parameter layout (``ngf=64``, 128 generic slots)."""

    def __init__(self, ngf: int = 64, banks_num: int = NUM_SLOTS, key_scale: int = 4):
        super().__init__()
        chans = {256: ngf, 128: ngf * 2, 64: ngf * 4}
        side = {(p, s): part_size(p, s) for p in PARTS for s in SCALES}
        # generic memory banks: registered first, so they lead the state dict (official order)
        for scale in SCALES:
            for kind in ("key", "value"):
                c = chans[scale] // key_scale if kind == "key" else chans[scale]
                for part in PARTS:
                    n = side[(part, scale)]
                    self.register_buffer(f"{part.lower()}_{scale}_mem_{kind}", torch.zeros(banks_num, c, n, n))
        self.E_lq = FeatureEncoder(ngf, key_scale)
        self.E_hq = FeatureEncoder(ngf, key_scale)
        for scale in SCALES:
            for part in PARTS:
                self.add_module(f"{part}_{scale}_KV", KeyValue(chans[scale], chans[scale] // key_scale, chans[scale]))
        for scale in SCALES:
            for part in PARTS:
                self.add_module(f"{part}_{scale}_Attention", conv_pair(chans[scale], chans[scale]))
        for scale in SCALES:
            for part in PARTS:
                self.add_module(f"{part}_{scale}_Mask", MaskAttention(chans[scale]))
        self.MSDilate = MSDilateBlock(ngf * 4)
        self.up1 = StyledUpBlock(ngf * 4, ngf * 2)
        self.up2 = StyledUpBlock(ngf * 2, ngf)
        self.up3 = StyledUpBlock(ngf, ngf)
        self.up4 = nn.Sequential(SNConv2d(ngf, ngf), lrelu(), up_res(ngf), up_res(ngf), SNConv2d(ngf, 3), nn.Tanh())

    def compile_static(self, **kwargs: Any) -> "DMDNet":
        """``torch.compile`` the static-shape sub-networks in place (encoder trunks, MSDilate, up1..up4).

        The box-dependent crops, memory reads and paste-back stay eager (their shapes vary per image).
        ``kwargs`` go to ``torch.compile`` (e.g. ``mode="max-autotune"``). State-dict keys are unchanged.
        """
        for enc in (self.E_lq, self.E_hq):
            enc.trunk = torch.compile(enc.trunk, **kwargs)  # type: ignore[method-assign]
        for m in (self.MSDilate, self.up1, self.up2, self.up3, self.up4):
            m.compile(**kwargs)
        return self

    # -- specific dictionary ---------------------------------------------------------------------
    def generate_specific_dictionary(self, ref_imgs: torch.Tensor, ref_locs: Any, chunk: int | None = None) -> SpecificDictionary:
        """Key/value dictionary of one identity from N >= 1 references.

        ``ref_imgs`` (N, 3, 512, 512) RGB in [-1, 1]; ``ref_locs`` (N, 4, 4) component boxes.
        Returns ``(mem256, mem128, mem64)``, dicts keyed ``'LE256Key'``, ``'LE256Value'``, ... as the
        official ``generate_specific_dictionary``; each tensor has N rows (the slots).
        ``chunk`` encodes the references in chunks of that many (lower peak memory); ``None`` encodes
        them all at once, as the official code does.
        """
        boxes = boxes_host(ref_locs)
        n = ref_imgs.shape[0]
        step = n if not chunk else max(1, int(chunk))
        chunks: list[dict[int, dict[str, torch.Tensor]]] = []
        for s0 in range(0, n, step):
            fs = self.E_hq(ref_imgs[s0 : s0 + step], boxes[s0 : s0 + step], queries=False)
            mem: dict[int, dict[str, torch.Tensor]] = {s: {} for s in SCALES}
            for scale in SCALES:
                for part in PARTS:
                    kv = getattr(self, f"{part}_{scale}_KV")
                    f = fs[f"{part.lower()}{scale}"]
                    mem[scale][f"{part}{scale}Key"] = kv.Key(f)
                    mem[scale][f"{part}{scale}Value"] = kv.Value(f)
            chunks.append(mem)
        if len(chunks) == 1:
            return chunks[0][256], chunks[0][128], chunks[0][64]
        merged = tuple({k: torch.cat([c[s][k] for c in chunks], 0) for k in chunks[0][s]} for s in SCALES)
        return merged  # type: ignore[return-value]

    # -- memory reads ----------------------------------------------------------------------------
    def _generic_reads(self, fs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        out = {}
        for scale in SCALES:
            for part in PARTS:
                p = part.lower()
                out[f"{p}{scale}"] = read_memory(
                    getattr(self, f"{p}_{scale}_mem_key"), getattr(self, f"{p}_{scale}_mem_value"), fs[f"{p}_{scale}_q"]
                )
        return out

    @staticmethod
    def _specific_read(sp_list: list[dict[str, torch.Tensor]], groups: list[list[int]], key: str, val: str, q: torch.Tensor) -> torch.Tensor:
        """Read each image's own dictionary; images sharing a dictionary are read in one call.

        Only slicing and concatenation (no device index tensors), so nothing waits for the device.
        """
        if len(groups) == 1:
            d = sp_list[0]
            return read_memory(d[key], d[val], q)
        rows: list[torch.Tensor | None] = [None] * q.shape[0]
        for g in groups:
            d = sp_list[g[0]]
            qq = torch.cat([q[i : i + 1] for i in g], 0) if len(g) > 1 else q[g[0] : g[0] + 1]
            r = read_memory(d[key], d[val], qq)
            for j, i in enumerate(g):
                rows[i] = r[j : j + 1]
        return torch.cat(rows, 0)  # type: ignore[arg-type]

    def _memory(self, fs: dict[str, torch.Tensor], gen: dict[str, torch.Tensor], sp: list | None) -> dict[str, torch.Tensor]:
        """Per part/scale memory (mixed with the specific read when ``sp`` is given), AdaIN-normalised."""
        groups: list[list[int]] = []
        sp_by_scale: dict[int, list] = {}
        if sp is not None:
            sp_by_scale = {256: sp[0], 128: sp[1], 64: sp[2]}
            ids: dict[tuple[int, int, int], int] = {}
            for i in range(len(sp[0])):
                ident = (id(sp[0][i]), id(sp[1][i]), id(sp[2][i]))
                if ident not in ids:
                    ids[ident] = len(groups)
                    groups.append([])
                groups[ids[ident]].append(i)
        out = {}
        for scale in SCALES:
            for part in PARTS:
                p = part.lower()
                f = fs[f"{p}{scale}"]
                mem = gen[f"{p}{scale}"]
                if sp is not None:
                    mem_s = self._specific_read(sp_by_scale[scale], groups, f"{part}{scale}Key", f"{part}{scale}Value", fs[f"{p}_{scale}_q"])
                    mask = getattr(self, f"{part}_{scale}_Mask")(f, mem_s, mem)
                    mem = mask * mem_s + (1 - mask) * mem
                out[f"{p}{scale}"] = adain(mem, f)
        return out

    # -- decoding --------------------------------------------------------------------------------
    def _reconstruct(self, fs: dict[str, torch.Tensor], boxes: np.ndarray, memnorm: dict[str, torch.Tensor]) -> torch.Tensor:
        ups = {s: fs[f"f{s}"].clone() for s in SCALES}
        finals = {}
        for scale in SCALES:
            for part in PARTS:
                p = part.lower()
                m, f = memnorm[f"{p}{scale}"], fs[f"{p}{scale}"]
                finals[(part, scale)] = getattr(self, f"{part}_{scale}_Attention")(m - f) * m + f
        for i in range(boxes.shape[0]):
            for scale in SCALES:
                div = SCALE_DIV[scale]
                for part in PARTS:
                    x1, y1, x2, y2 = box_slices(boxes[i, PART_ROWS[part]], div)
                    ups[scale][i : i + 1, :, y1:y2, x1:x2] = F.interpolate(
                        finals[(part, scale)][i : i + 1], (y2 - y1, x2 - x1), mode="bilinear", align_corners=False
                    )
        x = self.MSDilate(fs["f64"].clone())
        x = self.up1(x, ups[64])
        x = self.up2(x, ups[128])
        x = self.up3(x, ups[256])
        return self.up4(x)

    # -- forward ---------------------------------------------------------------------------------
    def forward(
        self,
        lq: torch.Tensor,
        loc: Any,
        sp_256: SpArg = None,
        sp_128: SpArg = None,
        sp_64: SpArg = None,
        generic: bool = True,
    ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Returns ``(generic_out, specific_out)``, each (B, 3, 512, 512) RGB in [-1, 1] (tanh).

        ``sp_*``: ``None`` (generic only; ``specific_out`` is ``None``), one specific dictionary for
        the whole batch (official), or a list with one dictionary per image (identities may mix;
        each image is read with its own dictionary's temperature). ``generic=False`` skips the
        generic decoder (``generic_out`` is then ``None``); it requires a specific dictionary.
        """
        boxes = boxes_host(loc)
        if boxes.shape[0] != lq.shape[0]:
            raise ValueError(f"{lq.shape[0]} images but {boxes.shape[0]} location sets")
        sp = None
        if sp_256 is not None and sp_128 is not None and sp_64 is not None:
            b = lq.shape[0]
            sp = [list(x) if isinstance(x, (list, tuple)) else [x] * b for x in (sp_256, sp_128, sp_64)]
            if any(len(x) != b for x in sp):
                raise ValueError(f"per-image specific dictionaries must number {b}")
        if sp is None and not generic:
            raise ValueError("generic=False needs a specific dictionary")
        fs = self.E_lq(lq, boxes)
        gen = self._generic_reads(fs)
        g_out = self._reconstruct(fs, boxes, self._memory(fs, gen, None)) if generic else None
        s_out = self._reconstruct(fs, boxes, self._memory(fs, gen, sp)) if sp is not None else None
        return g_out, s_out
