"""``codeformer``: CodeFormer on aligned 512x512 faces, batched; fidelity weight ``w`` as a parameter.

``codeformer`` is ``w=0.5`` (the official default); ``codeformer:w=0.7`` selects another weight and is
recorded under that label. The numbers are those of the official
``inference_codeformer.py --has_aligned -w W`` with the official ``codeformer.pth`` (``params_ema``,
loaded unchanged with ``strict=True``): the forward is ``net(x, w=W, adain=True)``, fully deterministic.
Weights licence: NTU S-Lab License 1.0 (non-commercial), declared in the weight store.

Input/output: RGB uint8 aligned 512x512 faces (BasicSR conversions, :mod:`baselines.gfpgan.faces`).
Images of another size are per-image errors. Reduced precisions (fp16/bf16 on CUDA) can flip code choices.
"""

from __future__ import annotations

from typing import Any, ClassVar, Mapping

import numpy as np
import torch

from baselines.base import RestorationMethod, RestoreItem, RestoreResult
from baselines.gfpgan.faces import faces_to_tensor, restore_faces, tensor_to_faces
from baselines.gfpgan.method import load_network_weights
from celebref.device import autocast
from celebref.errors import ConfigError, WeightError

from .arch import CodeFormerNet

WEIGHT_NAME = "codeformer"


class CodeFormerMethod(RestorationMethod):
    name: ClassVar[str] = "codeformer"
    description: ClassVar[str] = "CodeFormer (sczhou), fidelity weight w in [0, 1] (0: codebook only, 1: most faithful)"
    weights: ClassVar[tuple[str, ...]] = (WEIGHT_NAME,)
    input_size: ClassVar[int | None] = 512
    param_defaults: ClassVar[dict[str, Any]] = {"w": 0.5}

    def __init__(self, device: str = "cpu", precision: str = "fp32", landmark_policy: str = "skip", **params: Any):
        super().__init__(device=device, precision=precision, landmark_policy=landmark_policy, **params)
        w = self.params["w"]
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not 0.0 <= float(w) <= 1.0:
            raise ConfigError(f"codeformer: w must be a number in [0, 1], got {w!r}")
        self.params["w"] = float(w)
        self.net: CodeFormerNet | None = None

    @classmethod
    def from_state_dict(cls, state_dict: Mapping[str, torch.Tensor], **kwargs: Any) -> "CodeFormerMethod":
        """A loaded method from an in-memory state dict (tests, conversions); ``kwargs`` as for the constructor."""
        m = cls(**kwargs)
        m._build(state_dict, "state dict")
        return m

    def _build(self, state_dict: Mapping[str, torch.Tensor], source: str) -> None:
        net = CodeFormerNet()
        load_network_weights(net, state_dict, source)
        self.net = net.eval().requires_grad_(False).to(self.device)
        self.loaded = True

    def load(self) -> None:
        from celebref import weights as store

        ckpt = store.load_torch_checkpoint(WEIGHT_NAME)
        if "params_ema" not in ckpt:
            raise WeightError(f"{WEIGHT_NAME}: checkpoint has no 'params_ema' (keys: {', '.join(map(str, list(ckpt)[:8]))})")
        self._build(ckpt["params_ema"], f"{WEIGHT_NAME} [params_ema]")

    def _forward(self, items: list[RestoreItem]) -> list[np.ndarray]:
        assert self.net is not None
        x = faces_to_tensor([it.image for it in items]).to(self.device)
        with torch.inference_mode(), autocast(self.device, self.precision):
            out = self.net(x, w=self.params["w"], adain_codes=True)
        return tensor_to_faces(out)

    def _restore(self, items: list[RestoreItem]) -> list[RestoreResult]:
        return restore_faces(items, self._forward)
