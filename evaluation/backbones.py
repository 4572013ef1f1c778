"""ImageNet feature extractors for LPIPS, written for this project (no torchvision needed).

The module layout reproduces torchvision's ``alexnet`` / ``vgg16`` ``features`` stacks, so their checkpoints
(``alexnet-owt-7be5be79.pth``, ``vgg16-397923af.pth``; keys ``features.<i>.weight|bias``) load directly;
``classifier.*`` keys are ignored (LPIPS never uses them).

* AlexNet: conv 11x11/4 p2 (64) - ReLU - maxpool 3/2 - conv 5x5 p2 (192) - ReLU - maxpool 3/2 - conv 3x3 p1
  (384) - ReLU - conv 3x3 p1 (256) - ReLU - conv 3x3 p1 (256) - ReLU. Taps (LPIPS): the ReLU outputs at
  ``features`` indices 1, 4, 7, 9, 11 (64, 192, 384, 256, 256 channels).
* VGG16: 13 convs 3x3 p1 with ReLUs, maxpool 2/2 between stages. Taps: relu1_2, relu2_2, relu3_3, relu4_3,
  relu5_3 = indices 3, 8, 15, 22, 29 (64, 128, 256, 512, 512 channels).

Inputs are whatever the caller prepares (LPIPS: its scaling layer's output); ReLUs are not in-place, so a
tapped activation is never modified by a later layer.
"""

from __future__ import annotations

from typing import Mapping

import torch
from torch import nn

from celebref.errors import WeightError

# ("C", out, kernel, stride, pad) | ("R",) | ("M", kernel, stride)
ALEXNET_LAYERS = [("C", 64, 11, 4, 2), ("R",), ("M", 3, 2), ("C", 192, 5, 1, 2), ("R",), ("M", 3, 2),
                  ("C", 384, 3, 1, 1), ("R",), ("C", 256, 3, 1, 1), ("R",), ("C", 256, 3, 1, 1), ("R",)]
ALEXNET_TAPS = (1, 4, 7, 9, 11)


def _vgg16_layers() -> list[tuple]:
    layers: list[tuple] = []
    for stage, (width, n) in enumerate([(64, 2), (128, 2), (256, 3), (512, 3), (512, 3)]):
        if stage:
            layers.append(("M", 2, 2))
        for _ in range(n):
            layers += [("C", width, 3, 1, 1), ("R",)]
    return layers


VGG16_LAYERS = _vgg16_layers()
VGG16_TAPS = (3, 8, 15, 22, 29)

ARCHITECTURES = {"alex": (ALEXNET_LAYERS, ALEXNET_TAPS), "vgg": (VGG16_LAYERS, VGG16_TAPS)}


class TappedFeatures(nn.Module):
    """A ``features`` stack (torchvision layout) returning the activations after the tap indices."""

    def __init__(self, layers: list[tuple], taps: tuple[int, ...], in_channels: int = 3):
        super().__init__()
        mods: list[nn.Module] = []
        c = in_channels
        for spec in layers[: max(taps) + 1]:
            if spec[0] == "C":
                _, out, k, s, p = spec
                mods.append(nn.Conv2d(c, out, k, stride=s, padding=p, bias=True))
                c = out
            elif spec[0] == "R":
                mods.append(nn.ReLU(inplace=False))
            else:
                mods.append(nn.MaxPool2d(kernel_size=spec[1], stride=spec[2]))
        self.features = nn.Sequential(*mods)
        self.taps = tuple(taps)
        channels, last = [], in_channels
        for i, m in enumerate(mods):
            last = m.out_channels if isinstance(m, nn.Conv2d) else last
            if i in self.taps:
                channels.append(last)
        self.channels = tuple(channels)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outs = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in self.taps:
                outs.append(x)
                if i == self.taps[-1]:
                    break
        return outs

    def load_torchvision_state_dict(self, state: Mapping[str, torch.Tensor], source: str = "checkpoint") -> None:
        """Load the ``features.*`` tensors of a torchvision-format state dict (other keys are ignored);
        raises :class:`WeightError` naming missing keys or wrong shapes."""
        own = self.state_dict()
        missing = [k for k in own if k not in state]
        if missing:
            raise WeightError(f"{source}: not a torchvision-format backbone checkpoint; missing {', '.join(missing[:4])}"
                              + (f" (+{len(missing) - 4} more)" if len(missing) > 4 else ""))
        bad = [f"{k} {tuple(state[k].shape)} != {tuple(v.shape)}" for k, v in own.items() if tuple(state[k].shape) != tuple(v.shape)]
        if bad:
            raise WeightError(f"{source}: wrong tensor shapes: {'; '.join(bad[:3])}")
        self.load_state_dict({k: state[k].to(torch.float32) for k in own}, strict=True)


def build_backbone(net: str) -> TappedFeatures:
    """``"alex"`` or ``"vgg"`` feature extractor with random (uninitialised) weights."""
    if net not in ARCHITECTURES:
        raise ValueError(f"unknown backbone {net!r} (choose from {', '.join(ARCHITECTURES)})")
    layers, taps = ARCHITECTURES[net]
    return TappedFeatures(layers, taps)
