"""The DFDNet generator (``UNetDictFace(64)`` of the official code), our own implementation.

Input ``(B,3,512,512)`` RGB in ``[-1,1]`` plus, per image, a ``(4,4)`` int box array (rows
left_eye, right_eye, nose, mouth; ``[x1,y1,x2,y2]`` in 512 pixels, see :mod:`.parts`); output
``(B,3,512,512)`` in ``[-1,1]`` (tanh). The boxes stay on the host as Python ints, so the forward
never synchronises with the device (atom choices stay on the device as index tensors).

Stages (see ``shared/golden/dfdnet/README.md``):

1. VGG19 taps relu2_2 (256²), relu3_4 (128²), relu4_4 (64²), conv5_4 (32², pre-ReLU).
2. Per scale, per part (order LE, RE, NO, MO): crop, bilinear resize to the atom size, match against
   the dictionary (:func:`.dictionary.match_fast`, or the official formulation with
   ``matching="reference"``), resize the selected AdaIN-normalised atom back with legacy nearest,
   ``upd = attn(swap - crop) * swap + crop`` written into a clone of the tap (crops always come from
   the original tap; later parts overwrite earlier ones).
3. ``MSDilate`` on the *original* conv5_4; ``up0..up3`` styled by the updated conv5_4, relu4_4,
   relu3_4, relu2_2; ``up4`` -> tanh.

Spectral norm runs in evaluation mode (stored u, v; no power iteration).

Precision (:mod:`celebref.precision`): under a bf16/fp16 autocast the VGG taps and the atom matching
run as a float32 island (the golden's atom margins are ~1e-5 relative, far below a bf16 rounding
error, so a reduced-precision VGG or score would pick other atoms); the attention blocks, MSDilate
and the up blocks run in the reduced precision. In fp32 nothing changes.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from celebref.precision import fp32_island

from .dictionary import FEATURE_SIZES, PARTS, DictionarySet, match_fast, match_reference
from .layers import Blur, ShapeOnly, SNConv2d, attention_block, conv_pair
from .vgg import VGGFeatures

PART_PREFIX = {"left_eye": "le", "right_eye": "re", "nose": "no", "mouth": "mo"}
MATCHING_MODES = ("fast", "reference")


class MSDilateBlock(nn.Module):
    def __init__(self, channels: int = 512, dilations: Sequence[int] = (4, 3, 2, 1)):
        super().__init__()
        self.conv1 = conv_pair(channels, dilations[0])
        self.conv2 = conv_pair(channels, dilations[1])
        self.conv3 = conv_pair(channels, dilations[2])
        self.conv4 = conv_pair(channels, dilations[3])
        self.convi = SNConv2d(channels * 4, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cat = torch.cat([self.conv1(x), self.conv2(x), self.conv3(x), self.conv4(x)], 1)
        return self.convi(cat) + x


class StyledUpBlock(nn.Module):
    """Blur -> SNconv -> LReLU(0.2) twice; ``* scale(style) + sigmoid(shift(style))``; x2 bilinear
    upsample -> SNconv -> LReLU(0.2)."""

    def __init__(self, in_ch: int, out_ch: int):
        super().__init__()
        self.conv1 = nn.Sequential(Blur(in_ch), SNConv2d(in_ch, out_ch, 3, padding=1), nn.LeakyReLU(0.2))
        self.convup = nn.Sequential(
            nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
            SNConv2d(out_ch, out_ch, 3, padding=1),
            nn.LeakyReLU(0.2),
        )
        self.lrelu1 = nn.LeakyReLU(0.2)
        self.ScaleModel1 = nn.Sequential(SNConv2d(in_ch, out_ch, 3, padding=1), nn.LeakyReLU(0.2), SNConv2d(out_ch, out_ch, 3, padding=1))
        self.ShiftModel1 = nn.Sequential(SNConv2d(in_ch, out_ch, 3, padding=1), nn.LeakyReLU(0.2),
                                         SNConv2d(out_ch, out_ch, 3, padding=1), nn.Sigmoid())

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        out = self.lrelu1(self.conv1(x))
        shift = self.ShiftModel1(style)
        scale = self.ScaleModel1(style)
        return self.convup(out * scale + shift)


class UpResBlock(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.Model = nn.Sequential(nn.Conv2d(dim, dim, 3, 1, 1), nn.LeakyReLU(0.2), nn.Conv2d(dim, dim, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.Model(x)


def _to_rgb_shapes(ch: int) -> dict[str, tuple[int, ...]]:
    n = ch * 9
    return {"0.bias": (ch,), "0.weight_orig": (ch, ch, 3, 3), "0.weight_u": (ch,), "0.weight_v": (n,),
            "2.bias": (3,), "2.weight_orig": (3, ch, 3, 3), "2.weight_u": (3,), "2.weight_v": (n,)}


class DFDNetGenerator(nn.Module):
    """Official ``UNetDictFace(ngf=64)`` state-dict layout (386 keys); dictionaries are held beside
    the parameters (not in the state dict, as in the official code) and follow ``.to()``/``.double()``."""

    def __init__(self, dictionaries: DictionarySet | None = None, ngf: int = 64):
        super().__init__()
        channels = (128, 256, 512, 512)
        for prefix in ("le", "re", "no", "mo"):
            for f, ch in zip(FEATURE_SIZES, channels):
                self.add_module(f"{prefix}_{f}", attention_block(ch))
        self.VggExtract = VGGFeatures()
        self.MSDilate = MSDilateBlock(ngf * 8, (4, 3, 2, 1))
        self.up0 = StyledUpBlock(ngf * 8, ngf * 8)
        self.up1 = StyledUpBlock(ngf * 8, ngf * 4)
        self.up2 = StyledUpBlock(ngf * 4, ngf * 2)
        self.up3 = StyledUpBlock(ngf * 2, ngf)
        self.up4 = nn.Sequential(SNConv2d(ngf, ngf, 3, padding=1), nn.LeakyReLU(0.2), UpResBlock(ngf), UpResBlock(ngf),
                                 nn.Conv2d(ngf, 3, kernel_size=3, stride=1, padding=1), nn.Tanh())
        for j, ch in enumerate((ngf * 8, ngf * 4, ngf * 2, ngf)):
            self.add_module(f"to_rgb{j}", ShapeOnly(_to_rgb_shapes(ch)))  # never used by the forward
        self.dictionaries = dictionaries

    def _apply(self, fn, recurse=True):
        out = super()._apply(fn, recurse)
        if self.dictionaries is not None:
            self.dictionaries = self.dictionaries.apply(fn)
        return out

    # -- dictionary stage ---------------------------------------------------------------------
    def _match(self, feat: torch.Tensor, f: int, part: str, pj: int, boxes: list[np.ndarray], matching: str):
        """Crops of ``part`` on the tap ``feat`` (feature size ``f``) and their matches: ``(slices, crops,
        scores (B,K), index (B,), normalised selected atoms [B x (1,C,h,w)])``. Float32 island."""
        if self.dictionaries is None:
            raise RuntimeError("DFDNetGenerator has no dictionaries (pass a DictionarySet)")
        d = self.dictionaries[f][part]
        step = 512 // f
        slices, crops, resized = [], [], []
        for n in range(feat.shape[0]):
            x1, y1, x2, y2 = (int(v) // step for v in boxes[n][pj])
            sl = (slice(y1, y2), slice(x1, x2))
            crop = feat[n : n + 1, :, sl[0], sl[1]]
            slices.append(sl)
            crops.append(crop)
            resized.append(F.interpolate(crop, (d.side, d.side), mode="bilinear", align_corners=False))
        if matching == "fast":
            scores, index, normed = match_fast(torch.cat(resized, 0), d)
            normed_list = [normed[n : n + 1] for n in range(feat.shape[0])]
        else:
            outs = [match_reference(r, d.atoms) for r in resized]
            scores = torch.stack([o[0] for o in outs])
            index = torch.stack([o[1] for o in outs])
            normed_list = [o[2] for o in outs]
        return slices, crops, scores, index, normed_list

    def _swap_features(self, taps: list[torch.Tensor], boxes: list[np.ndarray], matching: str,
                       record: dict[str, Any] | None) -> list[torch.Tensor]:
        b = taps[0].shape[0]
        updated = []
        all_idx, all_scores = [], []
        for si, f in enumerate(FEATURE_SIZES):
            feat = taps[si]
            upd = feat.clone()
            scale_idx, scale_scores = [], []
            for pj, part in enumerate(PARTS):
                block = getattr(self, f"{PART_PREFIX[part]}_{f}")
                slices, crops, scores, index, normed_list = self._match(feat, f, part, pj, boxes, matching)
                for n in range(b):
                    crop = crops[n]
                    swap = F.interpolate(normed_list[n], (crop.shape[2], crop.shape[3]))  # legacy 'nearest'
                    att = block(swap - crop)
                    upd[n : n + 1, :, slices[n][0], slices[n][1]] = att * swap + crop
                scale_idx.append(index)
                scale_scores.append(scores)
            updated.append(upd)
            all_idx.append(torch.stack(scale_idx, 1))  # (B, parts)
            all_scores.append(scale_scores)
        if record is not None:
            record["selected_index"] = torch.stack(all_idx, 1)  # (B, scales, parts)
            record["scores"] = all_scores  # [scale][part] -> (B, K)
            record["updated_features"] = updated
            record["vgg_features"] = taps
        return updated

    def select_atoms(self, x: torch.Tensor, boxes: Sequence[np.ndarray] | np.ndarray, matching: str = "fast") -> torch.Tensor:
        """The atom choices only (VGG taps and matching, both float32 islands): ``(B, 4 scales, 4 parts)`` long,
        scales 256, 128, 64, 32, parts left_eye, right_eye, nose, mouth. Equal to ``record["selected_index"]``."""
        boxes = [np.asarray(bx, dtype=np.int64).reshape(4, 4) for bx in boxes]
        with fp32_island():
            taps = self.VggExtract(x.float())
        idx = [torch.stack([self._match(taps[si], f, part, pj, boxes, matching)[3] for pj, part in enumerate(PARTS)], 1)
               for si, f in enumerate(FEATURE_SIZES)]
        return torch.stack(idx, 1)

    def compile_static(self, **kwargs: Any) -> "DFDNetGenerator":
        """``torch.compile`` the static-shape sub-networks in place (VGG, MSDilate, up0..up4); the
        box-dependent dictionary stage stays eager. ``kwargs`` go to ``torch.compile``."""
        for m in (self.VggExtract, self.MSDilate, self.up0, self.up1, self.up2, self.up3, self.up4):
            m.compile(**kwargs)
        return self

    def forward(self, x: torch.Tensor, boxes: Sequence[np.ndarray] | np.ndarray, matching: str = "fast",
                record: dict[str, Any] | None = None, channels_last: bool = False) -> torch.Tensor:
        """``x``: ``(B,3,512,512)`` in ``[-1,1]``; ``boxes``: B arrays ``(4,4)`` of ints (host side).

        ``matching``: ``"fast"`` (precomputed atom statistics, one pass per dictionary) or
        ``"reference"`` (the official per-crop AdaIN of every atom). ``record``: optional dict that
        receives ``selected_index`` ``(B,4,4)`` (scales 256,128,64,32 x parts), raw ``scores``, and
        the tapped / updated features. ``channels_last``: run the large convolutions (VGG, MSDilate,
        up blocks) in NHWC memory layout (faster with oneDNN/cuDNN; other summation order, so not
        bit-identical to the official NCHW run: 7e-6 max abs on the golden output, same atom choices); the dictionary stage
        always runs on contiguous NCHW crops.
        """
        if matching not in MATCHING_MODES:
            raise ValueError(f"matching must be one of {MATCHING_MODES}, got {matching!r}")
        boxes = [np.asarray(bx, dtype=np.int64).reshape(4, 4) for bx in boxes]
        if len(boxes) != x.shape[0]:
            raise ValueError(f"got {len(boxes)} box sets for a batch of {x.shape[0]}")
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with fp32_island():
            taps = self.VggExtract(x.float())
        updated = self._swap_features([t.contiguous() for t in taps] if channels_last else taps, boxes, matching, record)
        if channels_last:
            updated = [u.contiguous(memory_format=torch.channels_last) for u in updated]
        fea = self.MSDilate(taps[3])
        fea = self.up0(fea, updated[3])
        fea = self.up1(fea, updated[2])
        fea = self.up2(fea, updated[1])
        fea = self.up3(fea, updated[0])
        return self.up4(fea)
