"""VGG19 feature extractor of DFDNet (``VGGFeat``), with the official checkpoint layout.

Layout: ``RGB_mean``/``RGB_std`` (parameters, loaded from the checkpoint, not hard-coded),
``model.features.{i}`` (torchvision's VGG19 ``features`` indices), ``model.classifier.{0,3,6}``
(never used; shape-only), and ``features.{block}.{i}``: the *same* modules re-listed in four blocks
``[0:8] [8:17] [17:26] [26:35]`` (so both key families are in the state dict, sharing storage).

Taps (a consequence of torchvision's in-place ReLUs in the official code: the first ReLU of each
following block overwrites the stored block output): relu2_2, relu3_4, relu4_4 (post-ReLU) and
conv5_4 (**pre**-ReLU).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .layers import ShapeOnly

# torchvision vgg19 'E' configuration; 'M' = max-pool 2x2 stride 2
_CFG = [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"]
BLOCK_BOUNDS = (0, 8, 17, 26, 35)
TAP_NAMES = ("relu2_2", "relu3_4", "relu4_4", "conv5_4")


def _vgg19_features() -> nn.Sequential:
    layers: list[nn.Module] = []
    c_in = 3
    for v in _CFG:
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += [nn.Conv2d(c_in, int(v), kernel_size=3, padding=1), nn.ReLU(inplace=False)]
            c_in = int(v)
    return nn.Sequential(*layers)


class _VGG19Body(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = _vgg19_features()
        self.classifier = ShapeOnly({
            "0.weight": (4096, 512 * 7 * 7), "0.bias": (4096,),
            "3.weight": (4096, 4096), "3.bias": (4096,),
            "6.weight": (1000, 4096), "6.bias": (1000,),
        })


class VGGFeatures(nn.Module):
    """Input ``(B,3,H,W)`` RGB in ``[-1,1]``; returns the four taps (see module docstring)."""

    def __init__(self) -> None:
        super().__init__()
        self.RGB_mean = nn.Parameter(torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1), requires_grad=False)
        self.RGB_std = nn.Parameter(torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1), requires_grad=False)
        self.model = _VGG19Body()
        blocks = []
        for a, b in zip(BLOCK_BOUNDS[:-1], BLOCK_BOUNDS[1:]):
            seq = nn.Sequential()
            for j in range(a, b):
                seq.add_module(str(j), self.model.features[j])
            blocks.append(seq)
        self.features = nn.ModuleList(blocks)
        for p in self.parameters():
            p.requires_grad_(False)

    def preprocess(self, x: torch.Tensor) -> torch.Tensor:
        x = (x + 1) / 2
        x = (x - self.RGB_mean) / self.RGB_std
        if x.shape[3] < 224:
            x = F.interpolate(x, size=(224, 224), mode="bilinear", align_corners=False)
        return x

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.preprocess(x)
        taps = []
        for i, block in enumerate(self.features):
            x = block(x)
            # the official in-place ReLU at the head of the next block rectifies this tap too
            taps.append(F.relu(x) if i < len(self.features) - 1 else x)
        return taps
