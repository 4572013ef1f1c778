"""DMDNet feature encoder (E_lq / E_hq): three stride-2 stages, ROI crops, query heads."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn

from .geometry import PART_ROWS, PARTS, SCALE_DIV, SCALES, part_size, roi_crop
from .layers import QueryHead, conv_pair, dilate_res, down_pair


class FeatureEncoder(nn.Module):
    """E_lq / E_hq: three stride-2 stages giving the 256/128/64 maps, ROI crops, query heads."""

    def __init__(self, ngf: int = 64, key_scale: int = 4):
        super().__init__()
        self.conv1 = down_pair(3, ngf)
        self.conv2 = conv_pair(ngf, ngf)
        self.res1 = dilate_res(ngf, 5, 3)
        self.res2 = dilate_res(ngf, 5, 3)
        self.conv3 = down_pair(ngf, ngf * 2)
        self.conv4 = conv_pair(ngf * 2, ngf * 2)
        self.res3 = dilate_res(ngf * 2, 3, 1)
        self.res4 = dilate_res(ngf * 2, 3, 1)
        self.conv5 = down_pair(ngf * 2, ngf * 4)
        self.conv6 = conv_pair(ngf * 4, ngf * 4)
        self.res5 = dilate_res(ngf * 4, 1, 1)
        self.res6 = dilate_res(ngf * 4, 1, 1)
        chans = {256: ngf, 128: ngf * 2, 64: ngf * 4}
        for scale in SCALES:
            for part in PARTS:
                self.add_module(f"{part}_{scale}_Q", QueryHead(chans[scale], chans[scale] // key_scale))

    def trunk(self, img: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The convolutional stages: ``(f256, f128, f64)``. Static shapes (what ``compile_static`` compiles)."""
        f256 = self.res2(self.conv2(self.res1(self.conv1(img))))
        f128 = self.res4(self.conv4(self.res3(self.conv3(f256))))
        f64 = self.res6(self.conv6(self.res5(self.conv5(f128))))
        return f256, f128, f64

    def forward(self, img: torch.Tensor, boxes: np.ndarray, queries: bool = True) -> dict[str, torch.Tensor]:
        """``boxes``: host-side int32 ``(B, 4, 4)`` (:func:`.geometry.boxes_host`)."""
        f256, f128, f64 = self.trunk(img)
        feats = {256: f256, 128: f128, 64: f64}
        out: dict[str, torch.Tensor] = {"f256": f256, "f128": f128, "f64": f64}
        for scale in SCALES:
            for part in PARTS:
                crop = roi_crop(feats[scale], boxes[:, PART_ROWS[part]], SCALE_DIV[scale], part_size(part, scale))
                out[f"{part.lower()}{scale}"] = crop
                if queries:
                    out[f"{part.lower()}_{scale}_q"] = getattr(self, f"{part}_{scale}_Q")(crop)
        return out
