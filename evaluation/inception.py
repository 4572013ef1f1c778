"""The FID Inception-v3 (pytorch-fid's ``fid_inception_v3``), written for this project without torchvision.

Module and parameter names follow the checkpoint ``pt_inception-2015-12-05-6726825d.pth`` (the TensorFlow
FID graph ported by pytorch-fid), so it loads directly. Architecture facts (from pytorch-fid/torchvision):

* ``BasicConv2d`` = conv (no bias) -> BatchNorm (eps **0.001**, running statistics) -> ReLU;
* stem: Conv2d_1a_3x3 (stride 2), Conv2d_2a_3x3, Conv2d_2b_3x3 (pad 1), maxpool 3/2, Conv2d_3b_1x1,
  Conv2d_4a_3x3, maxpool 3/2;
* Mixed_5b/5c/5d: Inception-A; Mixed_6a: B (grid reduction); Mixed_6b..6e: C (7x7 factorised); Mixed_7a: D;
  Mixed_7b, Mixed_7c: E. The FID variants differ from torchvision only in the pooling branch: A, C and 7b
  average-pool 3x3/1 pad 1 with ``count_include_pad=False``; 7c max-pools 3x3/1 pad 1;
* then global average pooling -> the 2048-d "pool3" feature.

Input pipeline (:meth:`FIDInception.forward`): float32 RGB in ``[0, 1]`` (uint8/255) -> bilinear resize to
299x299 (``align_corners=False``, no antialiasing) -> ``2x - 1`` -> network.
"""

from __future__ import annotations

from typing import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from celebref.errors import WeightError


class BasicConv2d(nn.Module):
    def __init__(self, cin: int, cout: int, kernel, stride: int = 1, padding=0):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


def _avg3(x: torch.Tensor) -> torch.Tensor:
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class BlockA(nn.Module):
    def __init__(self, cin: int, pool_features: int):
        super().__init__()
        self.branch1x1 = BasicConv2d(cin, 64, 1)
        self.branch5x5_1 = BasicConv2d(cin, 48, 1)
        self.branch5x5_2 = BasicConv2d(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, padding=1)
        self.branch_pool = BasicConv2d(cin, pool_features, 1)

    def forward(self, x):
        a = self.branch1x1(x)
        b = self.branch5x5_2(self.branch5x5_1(x))
        c = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        d = self.branch_pool(_avg3(x))
        return torch.cat([a, b, c, d], 1)


class BlockB(nn.Module):
    def __init__(self, cin: int):
        super().__init__()
        self.branch3x3 = BasicConv2d(cin, 384, 3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, stride=2)

    def forward(self, x):
        a = self.branch3x3(x)
        b = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([a, b, F.max_pool2d(x, kernel_size=3, stride=2)], 1)


class BlockC(nn.Module):
    def __init__(self, cin: int, c7: int):
        super().__init__()
        self.branch1x1 = BasicConv2d(cin, 192, 1)
        self.branch7x7_1 = BasicConv2d(cin, c7, 1)
        self.branch7x7_2 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192, (7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(cin, c7, 1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, (1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(cin, 192, 1)

    def forward(self, x):
        a = self.branch1x1(x)
        b = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        c = self.branch7x7dbl_1(x)
        for layer in (self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4, self.branch7x7dbl_5):
            c = layer(c)
        d = self.branch_pool(_avg3(x))
        return torch.cat([a, b, c, d], 1)


class BlockD(nn.Module):
    def __init__(self, cin: int):
        super().__init__()
        self.branch3x3_1 = BasicConv2d(cin, 192, 1)
        self.branch3x3_2 = BasicConv2d(192, 320, 3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(cin, 192, 1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, 3, stride=2)

    def forward(self, x):
        a = self.branch3x3_2(self.branch3x3_1(x))
        b = self.branch7x7x3_4(self.branch7x7x3_3(self.branch7x7x3_2(self.branch7x7x3_1(x))))
        return torch.cat([a, b, F.max_pool2d(x, kernel_size=3, stride=2)], 1)


class BlockE(nn.Module):
    def __init__(self, cin: int, pool: str):
        super().__init__()
        self.pool = pool
        self.branch1x1 = BasicConv2d(cin, 320, 1)
        self.branch3x3_1 = BasicConv2d(cin, 384, 1)
        self.branch3x3_2a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(cin, 448, 1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(cin, 192, 1)

    def forward(self, x):
        a = self.branch1x1(x)
        b = self.branch3x3_1(x)
        b = torch.cat([self.branch3x3_2a(b), self.branch3x3_2b(b)], 1)
        c = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        c = torch.cat([self.branch3x3dbl_3a(c), self.branch3x3dbl_3b(c)], 1)
        p = _avg3(x) if self.pool == "avg" else F.max_pool2d(x, kernel_size=3, stride=1, padding=1)
        return torch.cat([a, b, c, self.branch_pool(p)], 1)


class FIDInception(nn.Module):
    """FID Inception-v3 returning the 2048-d pool3 features (float32 ``(N, 2048)``)."""

    INPUT_SIZE = 299

    def __init__(self):
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, 3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, 1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, 3)
        self.Mixed_5b = BlockA(192, 32)
        self.Mixed_5c = BlockA(256, 64)
        self.Mixed_5d = BlockA(288, 64)
        self.Mixed_6a = BlockB(288)
        self.Mixed_6b = BlockC(768, 128)
        self.Mixed_6c = BlockC(768, 160)
        self.Mixed_6d = BlockC(768, 160)
        self.Mixed_6e = BlockC(768, 192)
        self.Mixed_7a = BlockD(768)
        self.Mixed_7b = BlockE(1280, "avg")
        self.Mixed_7c = BlockE(2048, "max")
        self.fc = nn.Linear(2048, 1008)  # in the checkpoint; pool3 features never use it
        self.requires_grad_(False)
        self.eval()

    def blocks(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Outputs of pytorch-fid's four blocks (64x73x73, 192x35x35, 768x17x17, 2048x1x1 at 299 input)
        for a network input already resized and scaled to ``[-1, 1]``."""
        x = F.max_pool2d(self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x))), kernel_size=3, stride=2)
        b0 = x
        x = F.max_pool2d(self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x)), kernel_size=3, stride=2)
        b1 = x
        for name in ("Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e"):
            x = getattr(self, name)(x)
        b2 = x
        for name in ("Mixed_7a", "Mixed_7b", "Mixed_7c"):
            x = getattr(self, name)(x)
        return [b0, b1, b2, F.adaptive_avg_pool2d(x, (1, 1))]

    @staticmethod
    def preprocess(x01: torch.Tensor) -> torch.Tensor:
        """float32 RGB ``[0, 1]`` -> bilinear 299x299 (align_corners=False, no antialias) -> ``2x - 1``."""
        x = F.interpolate(x01, size=(FIDInception.INPUT_SIZE, FIDInception.INPUT_SIZE), mode="bilinear",
                          align_corners=False)
        return 2 * x - 1

    def forward(self, x01: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.preprocess(x01))[3].flatten(1)

    def load_checkpoint_state_dict(self, state: Mapping[str, torch.Tensor], source: str = "checkpoint") -> None:
        """Load a pytorch-fid checkpoint state dict; ``num_batches_tracked`` and ``fc.*`` may be absent."""
        own = self.state_dict()
        optional = lambda k: k.endswith("num_batches_tracked") or k.startswith("fc.")  # noqa: E731
        missing = [k for k in own if k not in state and not optional(k)]
        if missing:
            raise WeightError(f"{source}: not a pytorch-fid Inception checkpoint; missing {', '.join(missing[:4])}"
                              + (f" (+{len(missing) - 4} more)" if len(missing) > 4 else ""))
        bad = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
        if bad:
            raise WeightError(f"{source}: wrong shapes for {', '.join(bad[:4])}")
        merged = {k: (state[k] if k in state else own[k]).to(own[k].dtype) for k in own}
        self.load_state_dict(merged, strict=True)
