"""LPIPS v0.1 (Zhang et al. 2018) with the official conventions (``lpips`` package, richzhang/PerceptualSimilarity).

Pipeline, per image pair (``pred`` = the official ``in0``, ``target`` = ``in1``; the value is symmetric):

1. uint8 RGB -> ``x / 127.5 - 1`` computed in float64, then float32 (range ``[-1, 1]``; ``lpips.im2tensor``);
2. scaling layer (v0.1): ``(x - shift) / scale`` with ``shift = (-0.030, -0.088, -0.188)``,
   ``scale = (0.458, 0.448, 0.450)`` per RGB channel (ImageNet mean/std mapped to ``[-1, 1]``);
3. backbone (:mod:`evaluation.backbones`): 5 ReLU activations (AlexNet or VGG16, torchvision checkpoints);
4. per layer ``l``: unit-normalise each pixel's feature vector, ``f / (sqrt(sum_c f^2) + 1e-10)``; squared
   difference; the v0.1 linear layer (1x1 conv, no bias, non-negative weights ``w_l``); spatial mean;
5. ``LPIPS = sum_l d_l`` (lower is better). Full resolution, no resizing; float32 on the chosen device.

Weights: backbone ``alexnet`` / ``vgg16`` and linear layers ``lpips-alex-v0.1`` / ``lpips-vgg-v0.1`` from the
weight store (official ``.pth`` with keys ``lin{k}.model.1.weight``; an ``.npz`` with the same keys also loads).
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np
import torch
from torch import nn

from celebref.device import set_exact_math
from celebref.errors import WeightError

from .backbones import build_backbone
from .base import Metric

SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)
EPS = 1e-10
BACKBONE_WEIGHTS = {"alex": "alexnet", "vgg": "vgg16"}
LINEAR_WEIGHTS = {"alex": "lpips-alex-v0.1", "vgg": "lpips-vgg-v0.1"}


def to_lpips_input(images: torch.Tensor) -> torch.Tensor:
    """uint8 RGB ``(N, 3, H, W)`` -> float32 in ``[-1, 1]`` (``x/127.5 - 1`` in float64, then cast)."""
    return (images.to(torch.float64) / 127.5 - 1.0).to(torch.float32)


def normalize_channels(f: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    """Unit L2 norm over channels at every pixel, eps outside the square root (official ``normalize_tensor``)."""
    return f / (torch.sqrt(torch.sum(f * f, dim=1, keepdim=True)) + eps)


def load_linear_weights(source: str | Path | Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The v0.1 linear layers ``{"lin{k}.model.1.weight": (1, C, 1, 1) float32}`` from a weight-store name,
    a ``.pth``/``.npz`` path or a mapping."""
    if isinstance(source, Mapping):
        raw = dict(source)
    else:
        path = Path(source)
        if path.suffix.lower() == ".npz":
            with np.load(path) as z:
                raw = {k: torch.from_numpy(np.array(z[k])) for k in z.files}
        else:
            from celebref.weights import load_torch_checkpoint

            raw = load_torch_checkpoint(source if not path.exists() else path)
    out = {k: torch.as_tensor(v).to(torch.float32) for k, v in raw.items() if k.startswith("lin") and k.endswith(".weight")}
    if not out:
        raise WeightError(f"{source}: no LPIPS linear-layer weights (keys lin<k>.model.1.weight)")
    return out


class LPIPSNet(nn.Module):
    """The LPIPS network: scaling layer, backbone, normalisation, linear layers, spatial mean."""

    def __init__(self, net: str = "alex"):
        super().__init__()
        self.net_name = net
        self.backbone = build_backbone(net)
        self.register_buffer("shift", torch.tensor(SHIFT, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(SCALE, dtype=torch.float32).view(1, 3, 1, 1))
        self.lins = nn.ParameterList([nn.Parameter(torch.zeros(1, c, 1, 1), requires_grad=False)
                                      for c in self.backbone.channels])
        self.requires_grad_(False)
        self.eval()

    def load_linear(self, state: Mapping[str, torch.Tensor], source: str = "linear layers") -> None:
        for k, p in enumerate(self.lins):
            key = f"lin{k}.model.1.weight"
            if key not in state:
                raise WeightError(f"{source}: missing {key}")
            if tuple(state[key].shape) != tuple(p.shape):
                raise WeightError(f"{source}: {key} has shape {tuple(state[key].shape)}, expected {tuple(p.shape)}")
            p.data.copy_(state[key].to(torch.float32))

    def per_layer(self, in0: torch.Tensor, in1: torch.Tensor) -> torch.Tensor:
        """``(N, L)`` per-layer distances of float32 inputs in ``[-1, 1]``."""
        n = in0.shape[0]
        x = torch.cat([in0, in1], dim=0)
        feats = self.backbone((x - self.shift) / self.scale)
        out = []
        for f, w in zip(feats, self.lins):
            f0, f1 = normalize_channels(f[:n]), normalize_channels(f[n:])
            d = torch.nn.functional.conv2d((f0 - f1) ** 2, w)
            out.append(d.mean(dim=(2, 3)).reshape(n))
        return torch.stack(out, dim=1)


class LPIPS(Metric):
    """LPIPS v0.1 with an AlexNet (``lpips``) or VGG16 (``lpips-vgg``) backbone. Options:
    ``max_batch`` (pairs per forward pass; bounds memory, does not change values)."""

    name = "lpips"
    net = "alex"
    columns = ("lpips",)
    higher_is_better = {"lpips": False}
    weights = ("alexnet", "lpips-alex-v0.1")
    defaults = {"max_batch": 4}

    def __init__(self, device="cpu", **options):
        super().__init__(device, **options)
        self.model: LPIPSNet | None = None

    def _load(self) -> None:
        from celebref.weights import load_torch_checkpoint, unwrap_state_dict, weight_path

        model = LPIPSNet(self.net)
        bb_name, lin_name = self.weights
        model.backbone.load_torchvision_state_dict(unwrap_state_dict(load_torch_checkpoint(bb_name)), source=bb_name)
        model.load_linear(load_linear_weights(weight_path(lin_name)), source=lin_name)
        self.set_model(model)

    def set_model(self, model: LPIPSNet) -> "LPIPS":
        """Use an already-built network (e.g. with test weights) instead of the weight store."""
        if model.net_name != self.net:
            raise ValueError(f"{self.name} needs a {self.net!r} backbone, got {model.net_name!r}")
        self.model = model.to(self.device).eval()
        self.loaded = True
        if self.device.type == "cuda":
            set_exact_math()  # no TF32: float32 parity with the reference
        return self

    def _describe(self) -> dict:
        return {"reference": "lpips==0.1.4 LPIPS(net=%r, version='0.1')" % self.net, "version": "0.1",
                "backbone": {"alex": "AlexNet (torchvision alexnet-owt-7be5be79)", "vgg": "VGG16 (torchvision vgg16-397923af)"}[self.net],
                "input_range": "[-1, 1] (x/127.5-1), RGB, then scaling layer", "resize": "none (full resolution)",
                "precision": "float32", "spatial": "mean"}

    def per_layer(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """``(N, 5)`` float64 per-layer distances (their sum is the LPIPS value)."""
        self._ensure_loaded()
        assert self.model is not None
        step = max(int(self.options["max_batch"]), 1)
        outs = []
        with torch.no_grad():
            for i in range(0, pred.shape[0], step):
                p = to_lpips_input(pred[i:i + step].to(self.device))
                t = to_lpips_input(target[i:i + step].to(self.device))
                outs.append(self.model.per_layer(p, t).to("cpu", torch.float64))
        return torch.cat(outs, dim=0)

    def _compute(self, pred, target):
        layers = self.per_layer(pred, target)
        # the official value is the float32 running sum of the layers
        total = layers.to(torch.float32)[:, 0].clone()
        for k in range(1, layers.shape[1]):
            total = total + layers.to(torch.float32)[:, k]
        return {self.columns[0]: total.to(torch.float64)}


class LPIPSVGG(LPIPS):
    name = "lpips-vgg"
    net = "vgg"
    columns = ("lpips_vgg",)
    higher_is_better = {"lpips_vgg": False}
    weights = ("vgg16", "lpips-vgg-v0.1")
