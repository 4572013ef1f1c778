"""DMDNet inference network (Li et al., "Learning Dual Memory Dictionaries for Blind Face
Restoration", TPAMI 2022), re-implemented for inference from the description of the official
``csxmli2016/DMDNet`` ``models/DMDNet.py``.

Conventions
-----------
* Images: float32 NCHW **RGB in [-1, 1]**, 512x512 (``x/255`` then ``(x-0.5)/0.5``).
* Component locations ``loc``: ``(B, 4, 4)`` rows ``LE, RE, NO, MO``, columns ``x1, y1, x2, y2`` in
  pixels of the 512 image (see :mod:`baselines.dmdnet.components`). Boxes are read on the host
  (``loc.int()``); pass them as a CPU tensor or numpy array so that the forward never has to wait
  for the device (a CUDA ``loc`` is copied to the host once, which synchronises).
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
"""

from __future__ import annotations

import math
from typing import Any, Sequence, Union

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

PARTS = ("LE", "RE", "MO")
PART_ROWS = {"LE": 0, "RE": 1, "NO": 2, "MO": 3}
SCALES = (256, 128, 64)
SCALE_DIV = {256: 2, 128: 4, 64: 8}  # feature-map stride for each scale
PART_SIZES_512 = {"LE": 80, "RE": 80, "MO": 110}  # official part_sizes (nose 50 unused)
NUM_SLOTS = 128

SpecificDictionary = tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], dict[str, torch.Tensor]]
SpArg = Union[None, dict[str, torch.Tensor], Sequence[dict[str, torch.Tensor]]]


def part_size(part: str, scale: int) -> int:
    """Side of the square ROI crop for ``part`` on the ``scale`` feature map (eyes 40/20/10, mouth 55/27/13)."""
    return PART_SIZES_512[part] // SCALE_DIV[scale]


class SNConv2d(nn.Module):
    """Conv2d with eval-mode spectral normalisation, state-dict compatible with
    ``torch.nn.utils.spectral_norm(nn.Conv2d(...))``: ``bias, weight_orig, weight_u, weight_v``.

    The effective weight is ``weight_orig / dot(u, W_mat @ v)`` with ``W_mat = weight_orig.reshape(out, -1)``
    and the stored ``u``, ``v``. There is no power iteration in any mode (this is an inference port).
    Zero padding.
    """

    def __init__(self, cin: int, cout: int, k: int = 3, stride: int = 1, padding: int = 1, dilation: int = 1):
        super().__init__()
        self.stride, self.padding, self.dilation = stride, padding, dilation
        # registration order gives the official state-dict order: bias, weight_orig, weight_u, weight_v
        self.bias = nn.Parameter(torch.zeros(cout))
        self.weight_orig = nn.Parameter(torch.zeros(cout, cin, k, k))
        self.register_buffer("weight_u", torch.zeros(cout))
        self.register_buffer("weight_v", torch.zeros(cin * k * k))

    def effective_weight(self) -> torch.Tensor:
        w = self.weight_orig
        with torch.autocast(w.device.type, enabled=False):  # sigma always in the weights' dtype
            sigma = torch.dot(self.weight_u, torch.mv(w.reshape(w.shape[0], -1), self.weight_v))
            return w / sigma

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.effective_weight(), self.bias, self.stride, self.padding, self.dilation)


def _lrelu() -> nn.LeakyReLU:
    return nn.LeakyReLU(0.2)


def _conv_pair(cin: int, cmid: int, dil1: int = 1, dil2: int = 1) -> nn.Sequential:
    """conv(cin->cmid) - lrelu - conv(cmid->cmid); indices 0 and 2 carry weights."""
    return nn.Sequential(SNConv2d(cin, cmid, padding=dil1, dilation=dil1), _lrelu(), SNConv2d(cmid, cmid, padding=dil2, dilation=dil2))


def _down_pair(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(SNConv2d(cin, cout, stride=2), _lrelu(), SNConv2d(cout, cout))


class _Residual(nn.Module):
    """``x + body(x)``; the body is stored under ``attr`` (``Res`` or ``Model``)."""

    def __init__(self, attr: str, body: nn.Module):
        super().__init__()
        self._attr = attr
        self.add_module(attr, body)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + getattr(self, self._attr)(x)


def _dilate_res(dim: int, d1: int, d2: int) -> _Residual:
    return _Residual("Res", _conv_pair(dim, dim, d1, d2))


def _up_res(dim: int) -> _Residual:
    return _Residual("Model", _conv_pair(dim, dim))


class _QueryHead(nn.Module):
    def __init__(self, cin: int, cq: int):
        super().__init__()
        self.Query = _conv_pair(cin, cq)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.Query(x)


class _KeyValue(nn.Module):
    def __init__(self, cin: int, ck: int, cv: int):
        super().__init__()
        self.Key = _conv_pair(cin, ck)
        self.Value = _conv_pair(cin, cv)


class _MaskAttention(nn.Module):
    """Mixing mask from (feature, specific read, generic read): a raw conv output (no sigmoid)."""

    def __init__(self, dim: int):
        super().__init__()
        third = dim // 3
        self.conv1 = _conv_pair(dim, third)
        self.conv2 = _conv_pair(dim, third)
        self.conv3 = _conv_pair(dim, third)
        self.convCat = nn.Sequential(SNConv2d(third * 3, dim), _lrelu(), SNConv2d(dim, dim))

    def forward(self, f: torch.Tensor, mem_s: torch.Tensor, mem_g: torch.Tensor) -> torch.Tensor:
        return self.convCat(torch.cat([self.conv1(f), self.conv2(mem_s), self.conv3(mem_g)], dim=1))


class _MSDilate(nn.Module):
    def __init__(self, dim: int, dilations: Sequence[int] = (4, 3, 2, 1)):
        super().__init__()
        for i, d in enumerate(dilations, 1):
            self.add_module(f"conv{i}", _conv_pair(dim, dim, d, d))
        self.convi = SNConv2d(dim * 4, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cat = torch.cat([self.conv1(x), self.conv2(x), self.conv3(x), self.conv4(x)], 1)
        return self.convi(cat) + x


class _StyledUp(nn.Module):
    """``lrelu(conv-lrelu-conv(x)) * Scale(style) + Shift(style)``, then bilinear x2, conv, lrelu, conv."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv1 = _conv_pair(cin, cout)
        self.convup = nn.Sequential(
            nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False), SNConv2d(cout, cout), _lrelu(), SNConv2d(cout, cout)
        )
        self.lrelu1 = _lrelu()
        self.ScaleModel1 = _conv_pair(cin, cout)
        self.ShiftModel1 = _conv_pair(cin, cout)

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        out = self.lrelu1(self.conv1(x))
        shift = self.ShiftModel1(style)
        scale = self.ScaleModel1(style)
        out = out * scale + shift
        return self.convup(out)


def _boxes_host(loc: Any) -> np.ndarray:
    """``(B, 4, 4)`` int32 boxes on the host, as the official ``locs.int().cpu().numpy()``."""
    if isinstance(loc, torch.Tensor):
        return loc.detach().int().cpu().numpy()
    arr = np.asarray(loc)
    return torch.from_numpy(np.ascontiguousarray(arr)).int().numpy() if arr.dtype.kind == "f" else arr.astype(np.int32)


def _slices(box: np.ndarray, div: int) -> tuple[int, int, int, int]:
    x1, y1, x2, y2 = (int(v) for v in (box // div))  # floor division, as numpy on int32
    return x1, y1, x2, y2


def check_boxes(loc: Any, size: int = 512) -> list[str]:
    """Reasons why the official forward would fail for each image (``''`` when it runs).

    The official code crops ``feat[y1//s:y2//s, x1//s:x2//s]`` with Python slicing and pastes a
    part resized to ``(y2//s - y1//s, x2//s - x1//s)`` into the same slice; an empty crop, or a
    slice whose length differs from that size (negative or out-of-range coordinates), raises
    there. Such images are reported instead of crashing the batch.
    """
    boxes = _boxes_host(loc)
    out = []
    for b in boxes:
        reason = ""
        for part in PARTS:
            for scale in SCALES:
                div = SCALE_DIV[scale]
                n = size // div
                x1, y1, x2, y2 = _slices(b[PART_ROWS[part]], div)
                hy, hx = len(range(n)[y1:y2]), len(range(n)[x1:x2])
                if hy <= 0 or hx <= 0 or hy != y2 - y1 or hx != x2 - x1:
                    reason = f"{part} box {b[PART_ROWS[part]].tolist()} is empty or outside the {size}x{size} image at scale 1/{div}"
                    break
            if reason:
                break
        out.append(reason)
    return out


class FeatureEncoder(nn.Module):
    """E_lq / E_hq: three stride-2 stages giving the 256/128/64 maps, ROI crops, query heads."""

    def __init__(self, ngf: int = 64, key_scale: int = 4):
        super().__init__()
        self.conv1 = _down_pair(3, ngf)
        self.conv2 = _conv_pair(ngf, ngf)
        self.res1 = _dilate_res(ngf, 5, 3)
        self.res2 = _dilate_res(ngf, 5, 3)
        self.conv3 = _down_pair(ngf, ngf * 2)
        self.conv4 = _conv_pair(ngf * 2, ngf * 2)
        self.res3 = _dilate_res(ngf * 2, 3, 1)
        self.res4 = _dilate_res(ngf * 2, 3, 1)
        self.conv5 = _down_pair(ngf * 2, ngf * 4)
        self.conv6 = _conv_pair(ngf * 4, ngf * 4)
        self.res5 = _dilate_res(ngf * 4, 1, 1)
        self.res6 = _dilate_res(ngf * 4, 1, 1)
        chans = {256: ngf, 128: ngf * 2, 64: ngf * 4}
        for scale in SCALES:
            for part in PARTS:
                self.add_module(f"{part}_{scale}_Q", _QueryHead(chans[scale], chans[scale] // key_scale))

    def forward(self, img: torch.Tensor, boxes: np.ndarray, queries: bool = True) -> dict[str, torch.Tensor]:
        f256 = self.res2(self.conv2(self.res1(self.conv1(img))))
        f128 = self.res4(self.conv4(self.res3(self.conv3(f256))))
        f64 = self.res6(self.conv6(self.res5(self.conv5(f128))))
        feats = {256: f256, 128: f128, 64: f64}
        out: dict[str, torch.Tensor] = {"f256": f256, "f128": f128, "f64": f64}
        for scale in SCALES:
            for part in PARTS:
                crop = roi_crop(feats[scale], boxes[:, PART_ROWS[part]], SCALE_DIV[scale], part_size(part, scale))
                out[f"{part.lower()}{scale}"] = crop
                if queries:
                    out[f"{part.lower()}_{scale}_q"] = getattr(self, f"{part}_{scale}_Q")(crop)
        return out


def roi_crop(feat: torch.Tensor, boxes: np.ndarray, div: int, size: int) -> torch.Tensor:
    """Per image: ``feat[i, :, y1//div:y2//div, x1//div:x2//div]`` resized bilinearly to ``size`` x ``size``."""
    crops = []
    for i in range(feat.shape[0]):
        x1, y1, x2, y2 = _slices(boxes[i], div)
        crops.append(F.interpolate(feat[i : i + 1, :, y1:y2, x1:x2], (size, size), mode="bilinear", align_corners=False))
    return torch.cat(crops, 0)


def _mean_std(feat: torch.Tensor, eps: float = 1e-5) -> tuple[torch.Tensor, torch.Tensor]:
    n, c = feat.shape[:2]
    flat = feat.reshape(n, c, -1)
    std = (flat.var(dim=2) + eps).sqrt().view(n, c, 1, 1)
    mean = flat.mean(dim=2).view(n, c, 1, 1)
    return mean, std


def adain(content: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
    """Give ``content`` the per-channel spatial mean/std of ``style`` (unbiased variance + 1e-5)."""
    s_mean, s_std = _mean_std(style)
    c_mean, c_std = _mean_std(content)
    size = content.shape
    normalized = (content - c_mean.expand(size)) / c_std.expand(size)
    return normalized * s_std.expand(size) + s_mean.expand(size)


def read_memory(key: torch.Tensor, value: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Soft memory read: ``softmax(<q, key_s> / sqrt(S))`` over the S slots, weighted sum of values.

    ``q`` (B, C, h, w), ``key`` (S, C, h, w), ``value`` (S, Cv, h, w) -> (B, Cv, h, w).
    """
    sim = F.conv2d(q, key)  # (B, S, 1, 1): full dot product over C x h x w
    score = F.softmax(sim / math.sqrt(sim.size(1)), dim=1)
    b = score.shape[0]
    s = value.shape[0]
    out = torch.bmm(score.reshape(b, 1, s), value.reshape(1, s, -1).expand(b, s, -1))
    return out.reshape(b, *value.shape[1:])


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
                self.add_module(f"{part}_{scale}_KV", _KeyValue(chans[scale], chans[scale] // key_scale, chans[scale]))
        for scale in SCALES:
            for part in PARTS:
                self.add_module(f"{part}_{scale}_Attention", _conv_pair(chans[scale], chans[scale]))
        for scale in SCALES:
            for part in PARTS:
                self.add_module(f"{part}_{scale}_Mask", _MaskAttention(chans[scale]))
        self.MSDilate = _MSDilate(ngf * 4)
        self.up1 = _StyledUp(ngf * 4, ngf * 2)
        self.up2 = _StyledUp(ngf * 2, ngf)
        self.up3 = _StyledUp(ngf, ngf)
        self.up4 = nn.Sequential(SNConv2d(ngf, ngf), _lrelu(), _up_res(ngf), _up_res(ngf), SNConv2d(ngf, 3), nn.Tanh())

    # -- specific dictionary ---------------------------------------------------------------------
    def generate_specific_dictionary(self, ref_imgs: torch.Tensor, ref_locs: Any, chunk: int | None = None) -> SpecificDictionary:
        """Key/value dictionary of one identity from N >= 1 references.

        ``ref_imgs`` (N, 3, 512, 512) RGB in [-1, 1]; ``ref_locs`` (N, 4, 4) component boxes.
        Returns ``(mem256, mem128, mem64)``, dicts keyed ``'LE256Key'``, ``'LE256Value'``, ... as the
        official ``generate_specific_dictionary``; each tensor has N rows (the slots).
        ``chunk`` encodes the references in chunks of that many (lower peak memory); ``None`` encodes
        them all at once, as the official code does.
        """
        boxes = _boxes_host(ref_locs)
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
                    x1, y1, x2, y2 = _slices(boxes[i, PART_ROWS[part]], div)
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
        boxes = _boxes_host(loc)
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
